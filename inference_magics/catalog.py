"""What is available where: every configured backend's models in one list, with the defaults
marked, and a backend that is down reported instead of failing the listing (llm #423)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import policy, routing, settings as settings_module
from .backends import REGISTRY, get_backend, spec
from .backends.spec import FIRST_LISTED
from .errors import ConfigError, InferenceError, PrivacyError, redact


class ModelList(list):
    """A list of ModelInfo; `.unavailable` maps each backend that could not be listed to why."""

    def __init__(self, items=(), unavailable=None):
        super().__init__(items)
        self.unavailable: dict[str, str] = dict(unavailable or {})


def listed_backends(settings) -> list[str]:
    """Each backend its spec lists: Ollama and Claude always (a missing key is worth showing); the
    embedded model when installed; an OpenAI-compatible server when one is configured."""
    names = [s.name for s in REGISTRY.values() if s.is_listed(settings, settings_module.configured)]
    return [name for name in names if _may_ask(name, settings)]  # local-only: not even a listing to the cloud


def _may_ask(name: str, settings) -> bool:
    """A listing or health check carries no prompt: only INFERENCE_PRIVACY=local-only stops it."""
    try:
        policy.check("", name, None, settings, how="a model listing")
    except PrivacyError:
        return False
    return True


ROLES = {"general": "default", "chat": "chat", "code": "code", "embed": "embeddings"}


def _roles(name: str, settings) -> dict[str, list[str]]:
    """Model name (as the backend lists it) -> the tasks it is the configured default for."""
    described, roles = spec(name), {}
    for task in described.models:
        model = routing.model_for(name, task, settings)
        if described.supports("resolve"):
            model = get_backend(name, settings).resolve(model)
        roles.setdefault(described.listed_name(model), []).append(ROLES.get(task, task))
    return roles


def models(backend: str | None = None) -> ModelList:
    """Every model of every listed backend (or of one backend), queried concurrently."""
    settings = settings_module.load()
    if backend is not None and backend not in REGISTRY:
        raise ConfigError(f"unknown backend {backend!r} — use one of: {', '.join(REGISTRY)}.")
    names = [backend] if backend else listed_backends(settings)
    for name in names:
        policy.check("", name, None, settings, how="a model listing")
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        jobs = {name: pool.submit(get_backend(name, settings).list_models) for name in names}
    listing = ModelList()
    for name, job in jobs.items():
        try:
            found = job.result()
        except InferenceError as exc:
            listing.unavailable[name] = exc.message
            continue
        roles = _roles(name, settings)
        for position, info in enumerate(found):
            tasks = roles.get(info.name, [])
            if position == 0 and FIRST_LISTED in roles:
                tasks = roles[FIRST_LISTED]  # no default model set: the server's first model is the one used
            listing.append(replace(info, default_for=", ".join(tasks)) if tasks else info)
    return listing


def health() -> dict:
    """Each listed backend's Health(ok, detail, latency_s), checked concurrently: a down backend
    costs at most the connect timeout."""
    settings = settings_module.load()
    names = listed_backends(settings)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        checks = {name: pool.submit(get_backend(name, settings).health) for name in names}
    # a detail names the server's URL, which may carry user:password@ or ?key= (registered secrets)
    return {name: replace(check.result(), detail=redact(check.result().detail)) for name, check in checks.items()}
