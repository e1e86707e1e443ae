"""Credentials in a configured URL (user:password@, a token before @, a ?key= query) and secrets a
server echoes back never show: not in error lines, health details, route reasons, repr(settings),
nor the history."""
from __future__ import annotations

import pytest

import inference_magics as im
from inference_magics import settings
from inference_magics.errors import ConfigError, InferenceError
from tests.conftest import closed_port

TOKEN = "Tk7Qz2Lm9Xv4Wp8R"  # a token used as the URL's user
PASSWORD = "Pw3Hn8Gx1Vd6Jc2M"
QUERY_KEY = "Qk5Bc4Ds9Fh2Lz7N"
GHP = "ghp_" + "R8sT2uV4wX6yZ8aB0cD2eF4gH6iJ8kL0mN2p"
AKIA = "AKIAZ7Q4XJ2MB5KT9PLW"


def _clean(text: str, *secrets: str) -> None:
    for secret in secrets or (TOKEN, PASSWORD, QUERY_KEY):
        assert secret not in text, text


@pytest.mark.parametrize("url", [f"http://user:{PASSWORD}@127.0.0.1:11434", f"http://127.0.0.1:11434?api_key={QUERY_KEY}"])
def test_a_bad_port_never_echoes_what_follows_it(monkeypatch, url):
    monkeypatch.setenv("OLLAMA_BASE_URL", url)
    with pytest.raises(ConfigError) as err:
        settings.load()
    _clean(err.value.message)


@pytest.mark.parametrize("url", [f"http://{TOKEN}@127.0.0.1:{{port}}", f"http://127.0.0.1:{{port}}/?api_key={QUERY_KEY}"])
def test_an_ollama_url_with_credentials_is_masked_in_errors_health_and_repr(monkeypatch, url):
    monkeypatch.setenv("OLLAMA_BASE_URL", url.format(port=closed_port()))
    _clean(repr(settings.load()))
    _clean(repr(im.health()))
    with pytest.raises(InferenceError) as err:
        im.infer("hello", backend="ollama")
    _clean(err.value.message)
    _clean(repr(im.recall()) if hasattr(im, "recall") else "")


@pytest.mark.parametrize("url", [f"http://{TOKEN}@127.0.0.1:{{port}}/v1", f"http://127.0.0.1:{{port}}/v1?api_key={QUERY_KEY}"])
def test_an_openai_url_with_credentials_is_masked(monkeypatch, url):
    monkeypatch.setenv("OPENAI_BASE_URL", url.format(port=closed_port()))
    _clean(repr(im.health()))
    with pytest.raises(InferenceError) as err:
        im.infer("hello", backend="openai")
    _clean(err.value.message)


def test_an_anthropic_url_with_a_password_is_masked(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-peer-test-key")
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "0")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}")
    _clean(repr(im.health()))
    with pytest.raises(InferenceError) as err:
        im.infer("hello", model="claude-haiku-4-5")
    _clean(err.value.message)


def test_a_route_reason_never_names_the_credentials(monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://{TOKEN}@10.255.255.1:11434")  # elsewhere: private prompts cannot go
    try:
        route = im.route("this is confidential, summarise it")
    except InferenceError as err:  # the embedded model is not installed here
        _clean(err.message)
    else:
        _clean(route.reason)


def test_a_secret_a_server_echoes_in_its_error_is_redacted(monkeypatch, ollama_peer):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(fault="error_mid_stream", error_text=f"proxy echo: Authorization: Bearer {GHP} id={AKIA}")
    with pytest.raises(InferenceError) as err:
        im.infer("hello", backend="ollama")
    _clean(err.value.message, GHP, AKIA)
    assert "[redacted: a GitHub token]" in err.value.message


def test_the_config_listing_masks_url_credentials(monkeypatch, shell, capsys):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://{TOKEN}@127.0.0.1:11434")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://user:{PASSWORD}@127.0.0.1:9")
    shell.run_line_magic("config", "InferenceMagics")
    listing = capsys.readouterr().out
    assert "InferenceMagics.ollama_base_url" in listing
    _clean(listing)


def test_the_http_clients_log_lines_never_carry_the_credentials(monkeypatch, caplog, openai_peer, claude_peer):
    """Once a user turns logging on, httpx (INFO) and the Anthropic SDK (DEBUG) log each request's
    URL: a configured URL's user:password@ or ?key= is masked in those lines."""
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url.replace("http://", f"http://{TOKEN}@"))
    im.infer("hello", backend="openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-peer-test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_peer.url.replace("http://", f"http://user:{PASSWORD}@"))
    with pytest.raises(im.AuthenticationFailed):  # httpx sends the userinfo as Basic auth, which the peer refuses
        im.infer("hello", model="claude-haiku-4-5")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logged and "/v1/messages" in logged  # the lines are there, masked
    _clean(logged)
