"""Where our files live: one owner-only folder for the embedding cache and the history."""
from __future__ import annotations

import os
from pathlib import Path


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
