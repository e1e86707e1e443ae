"""The backend registry: adding a backend is one new file plus one line here.

Entries are import paths so that naming a backend costs nothing; the module (and its SDK) is
imported on first use only.
"""
from __future__ import annotations

import importlib
import threading

REGISTRY: dict[str, str] = {
    "ollama": "inference_magics.backends.ollama:OllamaBackend",
    "anthropic": "inference_magics.backends.anthropic:AnthropicBackend",
}

#: backends whose requests never leave this machine (a private prompt may go to these only)
LOCAL_BACKENDS = frozenset({"ollama"})

_instances: dict[tuple, object] = {}
_lock = threading.Lock()


def get_backend(name: str, settings):
    """The backend instance for these settings (one per distinct configuration, reused so that
    HTTP connections and model lists are cached across cells)."""
    module_name, _, class_name = REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    key = (name, cls.config_key(settings))
    with _lock:
        backend = _instances.get(key)
        if backend is None:
            backend = _instances[key] = cls(settings)
        return backend
