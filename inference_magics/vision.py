"""Can this model see images (and read PDFs)? The backend's spec says whether it can at all
(`vision`, `documents`); a backend that can `describe` its models (Ollama's /api/show
`capabilities`, v0.6.4+) is asked about the model. Where nothing can tell (an OpenAI-compatible
server), the request goes and the server decides.
"""
from __future__ import annotations

from .errors import ConfigError, InferenceError

MAX_PROBED = 12  # models asked about when looking for one that has vision


def supports_vision(backend: str, model: str, settings, ask_server: bool = True) -> bool | None:
    """True, False, or None when nobody can tell (then the server decides). ask_server=False: the
    spec alone (no request, e.g. before a replayed answer)."""
    from .backends import get_backend, spec

    described = spec(backend)
    if not described.supports("vision", model):
        return False
    if not described.supports("describe"):
        return True
    if not ask_server:
        return None
    capabilities = get_backend(backend, settings).capabilities(model)
    return None if capabilities is None else "vision" in capabilities


def check(backend: str, model: str, attachments, settings, ask_server: bool = True) -> None:
    """Raise ConfigError (one line, naming a model that can) when this model cannot take these attachments."""
    from .backends import offering, spec

    if not attachments:
        return
    pdfs = [a for a in attachments if not a.is_image]
    if pdfs and not spec(backend).supports("documents", model):
        readers = " or ".join(s.label for s in offering("documents")) or "no backend here"
        raise ConfigError(f"{pdfs[0].describe()} is a PDF: only {readers} reads PDFs (as a document block), and this "
                          f"request goes to {spec(backend).label} ({model}) — use --model sonnet, or convert the pages "
                          "you need to images.")
    if supports_vision(backend, model, settings, ask_server) is False:
        raise ConfigError(f"{model} ({backend}) cannot see images — {vision_hint(settings)}.")


def vision_hint(settings) -> str:
    """What to use instead: a model from %models that has vision, where one can be found."""
    found = _vision_model_here(settings)
    if found:
        return f"use --model {found} (it has vision, on this machine)"
    if settings.privacy != "local-only" and settings.has_anthropic_key:
        return "use --model sonnet (Claude sees images), or pull a vision model on Ollama (e.g. `ollama pull gemma3:4b`)"
    return "pull a vision model on Ollama (e.g. `ollama pull gemma3:4b` or `ollama pull llava`) and name it with --model"


def _vision_model_here(settings) -> str | None:
    """A listed model, on a backend that keeps data on this machine, whose server says it has vision."""
    from .backends import get_backend, keeps_data_local, offering

    for described in offering("describe"):
        if not described.supports("vision") or not keeps_data_local(described.name, settings):
            continue
        try:
            backend = get_backend(described.name, settings)
            chats = [m.name for m in backend.list_models() if m.kind == "chat"]
            for name in chats[:MAX_PROBED]:
                capabilities = backend.capabilities(name)
                if capabilities and "vision" in capabilities:
                    return name
        except InferenceError:
            continue
    return None
