"""The replay of the example notebooks, shared by notebooks/conftest.py (nbval) and
tests/test_notebooks.py (the word-for-word check): the environment that makes a kernel answer
every request from the committed cache and start no model, and what a saved answer says."""
from __future__ import annotations

import shutil
import stat
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
RECORDED = NOTEBOOKS / "cache" / "responses.sqlite3"  # written by `scripts/notebooks --record`
MANIFEST = NOTEBOOKS / "cache" / "recorded.txt"  # the notebooks whose every request is in RECORDED


def recorded() -> set[str]:
    """Names of the notebooks the committed cache answers (a notebook added or changed since is
    not replayed until `scripts/notebooks --record` has run it)."""
    return set(MANIFEST.read_text().split()) if MANIFEST.exists() else set()


def replay_environment(folder: Path, note: Path) -> dict[str, str]:
    """Variables for a replaying kernel: a copy of the recorded cache in `folder` (the committed
    file is never opened), INFERENCE_CACHE=replay, the routing inputs of the recording (default
    backend local, Ollama at a closed port, no key), and a fake llama-server that writes `note`
    and fails if anything starts it."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "recorded.sqlite3"
    shutil.copyfile(RECORDED, copy)
    tripwire = folder / "llama-server"
    tripwire.write_text(f"#!/bin/sh\necho \"$@\" >> '{note}'\nexit 1\n")
    tripwire.chmod(tripwire.stat().st_mode | stat.S_IXUSR)
    return {"INFERENCE_DATA_DIR": str(folder), "MPLBACKEND": "Agg", "INFERENCE_DEFAULT_BACKEND": "local",
            "OLLAMA_BASE_URL": "http://127.0.0.1:9", "INFERENCE_CACHE": "replay", "INFERENCE_CACHE_FILE": str(copy),
            "INFERENCE_LOCAL_SERVER": str(tripwire)}


def answers(cell) -> list[str] | None:
    """The plain text of a code cell's %%infer / workflow answers without their footers (None if
    it has none). Its other outputs — progress bars, --map and experiment tables — show timings:
    not reproducible, so not compared."""
    found = [o for o in cell.get("outputs") or []
             if isinstance(record := o.get("metadata", {}).get("inference_magics"), dict)
             and record.get("kind", "answer") == "answer"]
    return [_without_footer(o["data"].get("text/plain", "")) for o in found] or None


def _without_footer(text: str) -> str:
    """The answer alone: the footer line ("— backend · model · timings", or "cached (answered …)")
    and the notices under it (⚠ …) are not reproducible."""
    lines = text.rstrip("\n").split("\n")
    while lines and lines[-1].startswith("⚠"):
        lines.pop()
    if lines and lines[-1].startswith("— "):
        lines.pop()
    return "\n".join(lines)
