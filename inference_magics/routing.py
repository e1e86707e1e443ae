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
from .backends import REGISTRY, fallback_order, keeps_data_local, model_owner, spec
from .backends.spec import FAMILIES
from .errors import ConfigError, PrivacyError, redact
from .privacy import classify

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
    return model_owner(model)


def detect_task(prompt: str) -> str:
    return "code" if _CODE_SHAPES.search(prompt) or _CODE_WORDS.search(prompt) else "general"


def model_for(backend: str, task: str, settings) -> str:
    described = spec(backend)
    model = described.default_model(task, settings)
    return canonical_model(model) if described.canonical_models else model


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
        policy.check(prompt, chosen, chosen_model, settings, how=how, ask_server=False)  # the send checks it all again
        return Route(chosen, chosen_model, f"you chose {how}", task, private=finding is not None, explicit=True)

    reasoner = next((s for s in REGISTRY.values() if "complex" in s.routed_for), None)
    if finding or keep_local:
        # the default backend if it is on this machine, else the first that can be (a local server)
        chosen = settings.default_backend if keeps_data_local(settings.default_backend, settings) else \
            next(s.name for s in fallback_order() if s.locality != "never")
        reason = f"private prompt ({finding.detail}) stays on this machine" if finding else keep_local
    elif settings.enable_routing and (match := _COMPLEX.search(prompt)) and reasoner and reasoner.has_key(settings):
        chosen, reason = reasoner.name, f"complex reasoning ({match.group(0).lower()!r}) goes to {reasoner.label}"
    elif settings.enable_routing and match and reasoner:
        chosen = settings.default_backend
        reason = (f"complex reasoning ({match.group(0).lower()!r}) but no {reasoner.key_setting.upper()}, so the "
                  "default backend")
    else:
        chosen, reason = settings.default_backend, "default backend (INFERENCE_DEFAULT_BACKEND)"
    if task == "code" and "code" in spec(chosen).models:
        reason += "; a code task, so the code model"
    route = Route(chosen, model_for(chosen, task, settings), reason, task, private=bool(finding or keep_local))
    if route.private and not keeps_data_local(route.backend, settings, route.model):
        # the local server is elsewhere (another host, a cloud model): only the embedded model is on this machine
        there, embedded = spec(route.backend), next(s for s in fallback_order() if s.locality == "always")
        if embedded.name in unavailable:
            raise PrivacyError(f"this prompt must stay on this machine ({reason}), but {there.label} at "
                               f"{there.base_url(settings)} with {route.model} is not on it — point "
                               f"{(there.url_setting or '').upper()} at localhost, use a local model, or install the "
                               "embedded one (pip install -e '.[local]').")
        route = replace(route, backend=embedded.name, model=model_for(embedded.name, task, settings),
                        reason=f"{reason}; {there.label} with {route.model} at {redact(there.base_url(settings))} is not on "
                               f"this machine, so {embedded.label}")
    return _fall_back(route, settings, unavailable)


def _fall_back(route: Route, settings, unavailable: frozenset[str]) -> Route:
    """Move off an unreachable (or not installed) backend where privacy and configuration allow it.
    Only backends with a fallback rank are moved to (an OpenAI-compatible server is only ever chosen
    explicitly)."""
    if route.backend not in unavailable:
        return route
    for other in fallback_order():
        if other.name in unavailable or other.name == route.backend:
            continue
        if route.private and not other.keeps_data_local(model_for(other.name, route.task, settings), settings):
            continue  # never the cloud for a private prompt
        if not other.has_key(settings):
            continue
        return replace(route, backend=other.name, model=model_for(other.name, route.task, settings),
                       reason=f"{route.reason}; {spec(route.backend).label} is unreachable, so {other.label}")
    return route
