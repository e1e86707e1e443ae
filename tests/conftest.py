"""Shared fixtures: loopback peers (one server each per session, reset per test), a clean
settings environment per test, and a real ipykernel driven through jupyter_client."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from inference_magics import backends, settings
from tests.peers import AnthropicPeer, OllamaPeer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ollama_server():
    with OllamaPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def claude_server():
    with AnthropicPeer() as peer:
        yield peer


@pytest.fixture
def ollama_peer(ollama_server):
    ollama_server.reset()
    yield ollama_server
    ollama_server.reset()


@pytest.fixture
def claude_peer(claude_server):
    claude_server.reset()
    yield claude_server
    claude_server.reset()


def peer_environment(ollama_url: str, claude: AnthropicPeer) -> dict[str, str]:
    return {
        "OLLAMA_BASE_URL": ollama_url,
        "ANTHROPIC_BASE_URL": claude.url,
        "ANTHROPIC_API_KEY": claude.api_key,
        "ANTHROPIC_MAX_RETRIES": "2",
    }


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch, tmp_path):
    """No variable, .env file or override from the developer's machine leaks into a test."""
    for var in settings.VARS:
        for name in var.env:
            monkeypatch.delenv(name, raising=False)
    for name in ("PAI_DIR", "OLLAMA_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings.clear_overrides()
    backends._instances.clear()
    yield
    settings.clear_overrides()
    backends._instances.clear()


@pytest.fixture
def peers(monkeypatch, ollama_peer, claude_peer):
    """Both peers reachable, with a key: the environment a fully configured user has."""
    for name, value in peer_environment(ollama_peer.url, claude_peer).items():
        monkeypatch.setenv(name, value)
    return ollama_peer, claude_peer


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
