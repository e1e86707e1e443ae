"""Where our files live: one owner-only folder for the embedding cache and the history."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir(settings) -> Path:
    if settings.data_dir:
        path = Path(settings.data_dir).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("inference_magics"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> None:
    """Make a file we created readable by its owner only (it may hold prompts and answers)."""
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
