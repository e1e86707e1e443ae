"""The backend registry: adding a backend is one new file (its class and its spec) plus one line
here, or one `register(SPEC)` call.

Specs are plain data (backends/spec.py): naming a backend costs nothing; its module (and its SDK)
is imported on first use only.
"""
from __future__ import annotations

import importlib
import threading

from .spec import ANTHROPIC, LOCAL, OLLAMA, OPENAI, BackendSpec, is_cloud_model, is_loopback  # noqa: F401

REGISTRY: dict[str, BackendSpec] = {
    "ollama": OLLAMA,
    "anthropic": ANTHROPIC,
    "local": LOCAL,
    "openai": OPENAI,
}


def register(spec: BackendSpec) -> None:
    """Add (or replace) a backend: after this, routing, %models and %infer_health know it."""
    REGISTRY[spec.name] = spec


def spec(name: str) -> BackendSpec:
    return REGISTRY[name]


def fallback_order() -> list[BackendSpec]:
    """The backends routing may move to on its own, in order (an explicitly chosen one never moves)."""
    return sorted((s for s in REGISTRY.values() if s.fallback_rank is not None), key=lambda s: s.fallback_rank)


def offering(capability: str) -> list[BackendSpec]:
    """The backends that can do this, in fallback order first."""
    ranked = fallback_order()
    return [s for s in ranked + [s for s in REGISTRY.values() if s not in ranked] if s.supports(capability)]


def model_owner(model: str) -> str:
    """The backend a model name means: `claude-*` Claude, `*.gguf` the embedded model, else Ollama."""
    claimed = [s.name for s in REGISTRY.values() if s.claims(model)]
    return claimed[0] if claimed else next(s.name for s in REGISTRY.values() if s.claims_the_rest)


def keeps_data_local(name: str, settings, model: str | None = None) -> bool:
    """May a private prompt go to this backend (and model)? Only to a server on this machine:
    Ollama or an OpenAI-compatible server at a loopback address (and not an Ollama cloud model),
    or the embedded model. Claude never."""
    return REGISTRY[name].keeps_data_local(model, settings)


def forwarded_host(name: str, settings, model: str | None) -> str | None:
    """The remote host a server on this machine forwards this model to, if it says it does (an
    Ollama model made FROM a cloud model, whatever its name: /api/show `remote_host`); else None."""
    if not model or not REGISTRY[name].cloud_models:
        return None
    return get_backend(name, settings).forwarded_host(model)


def not_installed(settings) -> frozenset[str]:
    """Backends that cannot run here at all (no llama-server for the embedded model)."""
    return frozenset(s.name for s in REGISTRY.values() if not s.installed(settings))


_instances: dict[tuple, object] = {}
_lock = threading.Lock()


def get_backend(name: str, settings):
    """The backend instance for these settings (one per distinct configuration, reused so that
    HTTP connections and model lists are cached across cells)."""
    described = REGISTRY[name]
    module_name, _, class_name = described.target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    key = (name, cls, *(getattr(settings, setting) for setting in described.settings))
    with _lock:
        backend = _instances.get(key)
        if backend is None:
            backend = _instances[key] = cls(settings)
        return backend
