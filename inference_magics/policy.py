"""The one privacy policy: may this text go to this destination (backend + model + base URL)?

Every path that sends text calls `check` right before it sends: a cell's prompt with its system
prompt and chat history, a `--map` row, an experiment column, a workflow chunk, an embedding
input, a Message Batch row — and, with empty text, a request that carries no prompt at all (a
model listing, a batch poll), which only INFERENCE_PRIVACY=local-only stops. Routing uses it too,
so what `--explain` promises and what the send does are the same decision.

A destination on this machine (the embedded model; Ollama or an OpenAI-compatible server at a
loopback address, reached without a proxy, and not an Ollama `*-cloud` model) may get anything.
Anywhere else gets nothing under local-only, and never text the detector finds private.
"""
from __future__ import annotations

from .backends import REGISTRY, forwarded_host, keeps_data_local
from .errors import PrivacyError
from .privacy import classify

ON_THIS_MACHINE = "run it on this machine (--backend ollama or --backend local)"


def outgoing_text(prompt: str | None, system: str | None = None, messages=()) -> str:
    """Everything a request would carry, for the detector: system, every earlier turn, the prompt.
    A turn's content may be a list of blocks (text, tool results, images): every text in it counts."""
    parts = [system or ""]
    for message in messages or ():
        if isinstance(message, dict):  # its text, the calls it asked for, and the images it carries (Ollama's)
            parts += _strings(message.get("content", "")) + _strings(message.get("tool_calls"))
            parts += [_file_text(image) for image in message.get("images") or () if isinstance(image, str)]
        else:
            parts += _strings(message)
    parts.append(prompt or "")
    return "\n".join(p for p in parts if p)


# block fields that name or encode rather than say something (a source's `data` is read apart)
_NOT_TEXT = frozenset({"type", "role", "id", "tool_use_id", "media_type", "data", "cache_control", "name"})


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        found = [s for key, item in value.items() if key not in _NOT_TEXT for s in _strings(item)]
        data = value.get("data")
        if isinstance(data, str) and data:  # a document's or an image's source: the text, or a file in base64
            found.append(_file_text(data) if value.get("type") == "base64" else data)
        return found
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return [] if value is None else [str(value)]


def _file_text(data: str) -> str:
    """The text a base64 file (an image or a PDF in a turn) holds, judged as an attachment's is."""
    import base64
    import binascii

    from .attachments import Attachment, scannable_text, sniff

    try:
        raw = base64.b64decode(data)
    except (ValueError, binascii.Error):
        return data  # not base64: what it says
    return scannable_text([Attachment(raw, sniff(raw) or "")])


def check(text: str, backend: str, model: str | None, settings, *, what: str = "this prompt",
          how: str | None = None, ask_server: bool = True) -> None:
    """Raise PrivacyError (one line naming what was found, never its value) when `text` may not
    go to `backend` with `model` under these settings; return quietly when it may.

    `what` names the text in the message ("row 3", "text 0"); `how` says how the destination was
    chosen ("model claude-haiku-4-5"), when the user chose it. A local server may forward a model
    whatever its name (an Ollama alias of a cloud model): when the text could not go off this
    machine, the server is asked (once per model) unless `ask_server` is False (routing stays pure)."""
    where = f"{backend} ({how or _destination(backend, model)})"
    finding = None
    if keeps_data_local(backend, settings, model):
        if not (ask_server and REGISTRY[backend].cloud_models):
            return  # a server that forwards no model (the embedded one, an OpenAI-compatible one here)
        if settings.privacy != "local-only":
            finding = classify(text, keywords=settings.enable_routing) if text else None
            if finding is None:
                return
        remote = forwarded_host(backend, settings, model)
        if remote is None:
            return
        where = f"{backend} ({how or _destination(backend, model)}, which the server forwards to {remote})"
    if settings.privacy == "local-only":
        raise PrivacyError(f"INFERENCE_PRIVACY=local-only: nothing is sent to {where} — use a backend on this "
                           "machine (ollama, local), or unset INFERENCE_PRIVACY.")
    finding = finding or (classify(text, keywords=settings.enable_routing) if text else None)
    if finding is None:
        return
    if finding.kind == "secret":
        why = f"it contains {finding.describe()}"
        fix = f"remove the secret, or {ON_THIS_MACHINE}"
    else:
        why = f"it is marked private ({finding.describe()})"
        fix = (f"{ON_THIS_MACHINE}, or reword it; INFERENCE_ENABLE_ROUTING=false turns privacy-word routing off "
               "(secrets are always kept local)")
    raise PrivacyError(f"refused to send {what} to {where}: {why}, so it stays on this machine — {fix}.")


def _destination(backend: str, model: str | None) -> str:
    return f"model {model}" if model else f"--backend {backend}"
