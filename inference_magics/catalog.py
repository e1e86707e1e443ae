"""What is available where: every configured backend's models in one list, with the defaults
marked, and a backend that is down reported instead of failing the listing (llm #423)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import policy, routing, settings as settings_module
from .backends import REGISTRY, get_backend, local_backend_installed
from .errors import ConfigError, InferenceError, PrivacyError


class ModelList(list):
    """A list of ModelInfo; `.unavailable` maps each backend that could not be listed to why."""

    def __init__(self, items=(), unavailable=None):
        super().__init__(items)
        self.unavailable: dict[str, str] = dict(unavailable or {})


def listed_backends(settings) -> list[str]:
    """Ollama and Claude always (a missing key is worth showing); the embedded model when installed;
    an OpenAI-compatible server when one is configured."""
    names = ["ollama", "anthropic"]
    if local_backend_installed(settings):
        names.append("local")
    if settings.default_backend == "openai" or settings_module.configured("openai_base_url"):
        names.append("openai")
    return [name for name in names if _may_ask(name, settings)]  # local-only: not even a listing to the cloud


def _may_ask(name: str, settings) -> bool:
    """A listing or health check carries no prompt: only INFERENCE_PRIVACY=local-only stops it."""
    try:
        policy.check("", name, None, settings, how="a model listing")
    except PrivacyError:
        return False
    return True


def _roles(settings) -> dict[str, dict[str, list[str]]]:
    """backend -> model name -> the tasks it is the configured default for."""
    roles: dict[str, dict[str, list[str]]] = {name: {} for name in REGISTRY}
    for task, model in (("default", settings.ollama_default_model), ("chat", settings.ollama_chat_model),
                        ("code", settings.ollama_code_model), ("embeddings", settings.ollama_embed_model)):
        roles["ollama"].setdefault(model if ":" in model else f"{model}:latest", []).append(task)
    roles["local"][routing.model_for("local", "general", settings)] = ["default"]
    roles["local"][routing.model_for("local", "embed", settings)] = ["embeddings"]
    if settings.openai_default_model:
        roles["openai"][settings.openai_default_model] = ["default"]
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
    roles = _roles(settings)
    anthropic_default = None
    for name, job in jobs.items():
        try:
            found = job.result()
        except InferenceError as exc:
            listing.unavailable[name] = exc.message
            continue
        if name == "anthropic":
            anthropic_default = get_backend(name, settings).resolve(
                routing.canonical_model(settings.anthropic_default_model))
        for position, info in enumerate(found):
            tasks = roles[name].get(info.name, [])
            if name == "anthropic" and info.name == anthropic_default:
                tasks = ["default"]
            if name == "openai" and not settings.openai_default_model and position == 0:
                tasks = ["default"]  # the server's first model is the one used
            listing.append(replace(info, default_for=", ".join(tasks)) if tasks else info)
    return listing


def health() -> dict:
    """Each listed backend's Health(ok, detail, latency_s), checked concurrently: a down backend
    costs at most the connect timeout."""
    settings = settings_module.load()
    names = listed_backends(settings)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        checks = {name: pool.submit(get_backend(name, settings).health) for name in names}
    return {name: check.result() for name, check in checks.items()}
