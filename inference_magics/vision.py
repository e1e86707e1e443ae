"""Can this model see images (and read PDFs)? One small function until backend specs carry a
`vision` capability (then this becomes `spec.supports("vision", model)`).

- Claude: every current model takes images and PDF document blocks.
- Ollama: /api/show `capabilities` contains "vision" (server v0.6.4+; an older server says nothing,
  so the request goes and the server decides).
- The embedded model (Gemma 3 270M) is text only.
- An OpenAI-compatible server does not say: the request goes and the server decides.
"""
from __future__ import annotations

from .errors import ConfigError, InferenceError

MAX_PROBED = 12  # Ollama models asked about when looking for one that has vision


def supports_vision(backend: str, model: str, settings) -> bool | None:
    """True, False, or None when the backend cannot tell (then the server decides)."""
    if backend == "anthropic":
        return True
    if backend == "local":
        return False
    if backend == "ollama":
        from .backends import get_backend

        capabilities = get_backend("ollama", settings).capabilities(model)
        return None if capabilities is None else "vision" in capabilities
    return None


def check(backend: str, model: str, attachments, settings) -> None:
    """Raise ConfigError (one line, naming a model that can) when this model cannot take these attachments."""
    if not attachments:
        return
    pdfs = [a for a in attachments if not a.is_image]
    if pdfs and backend != "anthropic":
        raise ConfigError(f"{pdfs[0].describe()} is a PDF: only Claude reads PDFs (as a document block), and this "
                          f"request goes to {backend} ({model}) — use --model sonnet, or convert the pages you need to "
                          "images.")
    if supports_vision(backend, model, settings) is False:
        raise ConfigError(f"{model} ({backend}) cannot see images — {vision_hint(settings)}.")


def vision_hint(settings) -> str:
    """What to use instead: a model from %models that has vision, where one can be found."""
    from .backends import keeps_data_local

    found = _ollama_vision_model(settings)
    if found:
        return f"use --model {found} (it has vision, on this machine)"
    if settings.privacy != "local-only" and settings.has_anthropic_key:
        return "use --model sonnet (Claude sees images), or pull a vision model on Ollama (e.g. `ollama pull gemma3:4b`)"
    where = "" if keeps_data_local("ollama", settings) else f" at {settings.ollama_base_url}"
    return f"pull a vision model on Ollama{where} (e.g. `ollama pull gemma3:4b` or `ollama pull llava`) and name it with --model"


def _ollama_vision_model(settings) -> str | None:
    from .backends import get_backend, keeps_data_local

    if settings.privacy == "local-only" and not keeps_data_local("ollama", settings):
        return None
    try:
        backend = get_backend("ollama", settings)
        chats = [m.name for m in backend.list_models() if m.kind == "chat"]
        for name in chats[:MAX_PROBED]:
            capabilities = backend.capabilities(name)
            if capabilities and "vision" in capabilities:
                return name
    except InferenceError:
        return None
    return None
