"""What we keep at rest, and how: one owner-only folder for the embedding cache and the history,
owner-only files everywhere (chat transcripts, server logs), secrets redacted before writing."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any


def data_dir(settings) -> Path:
    """The folder's path; nothing is created here (the stores create it when they first write,
    inside the code that turns a failure into a one-time notice)."""
    if settings.data_dir:
        return Path(settings.data_dir).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("inference_magics"))


def make_private_dir(path: Path) -> None:
    """Create a folder and its missing parents, owner-only (mkdir's mode is cut by the umask)."""
    for folder in [p for p in reversed(path.parents) if not p.exists()] + [path]:
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)  # another kernel may make it at the same moment
            os.chmod(folder, 0o700)


def private_file(path: Path) -> None:
    """Make a file we created readable by its owner only (it may hold prompts and answers)."""
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass


def create_private_file(path: Path) -> None:
    """Create the file owner-only before anyone writes to it (no moment where it is readable by
    others); a file already there that we own is tightened to 0600 too, and one that another user
    owns is refused (PermissionError): we never write prompts into someone else's file."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if not path.is_file():
            return  # opening it reports what is wrong
        if path.stat().st_uid != os.getuid():  # e.g. a path a folder's .env chose, planted by someone else
            raise PermissionError(errno.EPERM, "it belongs to another user, who could read what we write",
                                  str(path))
    private_file(path)


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read, replacing it (redact it first: `redacted`)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT: tighten it
        stream.write(text)


def redacted(value: Any) -> Any:
    """Text as we may keep it: registered keys masked first (so a pattern cannot split one and
    leave a part), then every secret the detector finds. Dicts and lists are walked."""
    if isinstance(value, str):
        from .errors import redact
        from .privacy import redact_secrets

        return redact_secrets(redact(value))
    if isinstance(value, dict):
        return {redacted(str(k)): redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float)) else redacted(str(value))
