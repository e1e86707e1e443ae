"""Run notebooks headlessly against the best backend available, and say which one it used and
where the executed notebooks are.

    python scripts/run_notebooks.py                 the quickstart (scripts/quickstart)
    python scripts/run_notebooks.py --all           every notebook (scripts/notebooks)
    python scripts/run_notebooks.py --all --update  ... and save the outputs back into notebooks/
    python scripts/run_notebooks.py --record        re-record: every notebook on the embedded model,
                                                    outputs saved, answers kept in notebooks/cache/
                                                    (what CI replays: NOTEBOOKS_BACKEND=replay)
    python scripts/run_notebooks.py --record notebooks/01-quickstart.ipynb ...   only these, added
                                                    to the existing recording

Order: Ollama (if it runs and has a chat model), then Claude (if a key works), then the embedded
local model (llama-server with the packaged Gemma 3 270M: real tokens, no daemon, no key), else
the bundled test peer — which answers with canned text, not a model, and this script says so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
QUICKSTART = NOTEBOOKS / "01-quickstart.ipynb"
BUILD = REPO / "build"
RECORDED = NOTEBOOKS / "cache" / "responses.sqlite3"  # committed; notebooks/conftest.py replays it
MANIFEST = NOTEBOOKS / "cache" / "recorded.txt"  # the notebooks whose every request is in RECORDED

sys.path.insert(0, str(REPO))
os.chdir(REPO)  # ./.env is read from here, as it would be from the notebook's folder

import inference_magics as im  # noqa: E402
from inference_magics import settings  # noqa: E402
from inference_magics.backends import get_backend  # noqa: E402


def choose() -> tuple[dict[str, str], str, subprocess.Popen | None]:
    """(environment for the kernel, a sentence saying what runs, a process to stop afterwards)."""
    current = settings.load()
    status = im.health()
    status.setdefault("local", im.Health(False, "the `local` extra is not installed"))
    if status["ollama"].ok:
        chat = [m.name for m in get_backend("ollama", current).list_models() if m.kind == "chat"]
        if chat:
            model = current.ollama_default_model if current.ollama_default_model in chat else chat[0]
            return ({"INFERENCE_DEFAULT_BACKEND": "ollama", "OLLAMA_DEFAULT_MODEL": model},
                    f"Ollama at {current.ollama_base_url}, model {model}", None)
        print(f"Ollama runs at {current.ollama_base_url} but has no chat model (try `ollama pull llama3.2`).")
    if status["anthropic"].ok:
        return {"INFERENCE_DEFAULT_BACKEND": "anthropic"}, "Claude (the Anthropic API)", None
    print(f"No Ollama and no Claude: {status['ollama'].detail}; {status['anthropic'].detail}")
    if status["local"].ok:
        return ({"INFERENCE_DEFAULT_BACKEND": "local"},
                f"the embedded local model — {status['local'].detail}. It is Gemma 3 270M, a small base model: real "
                "tokens from a real model, but no assistant (set INFERENCE_LOCAL_MODEL to a better GGUF)", None)
    print(f"The embedded local model is not usable either: {status['local'].detail}")
    peer = subprocess.Popen([sys.executable, "-m", "tests.peers", "--token-delay", "0.01"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    urls = {}
    while len(urls) < 2:
        line = peer.stdout.readline()
        if not line:
            raise SystemExit("the bundled test peer did not start")
        name, _, rest = line.partition(" peer: ")
        urls[name] = rest.split()[0]
    from tests.peers import AnthropicPeer

    env = {"INFERENCE_DEFAULT_BACKEND": "ollama", "OLLAMA_BASE_URL": urls["ollama"],
           "ANTHROPIC_BASE_URL": urls["anthropic"], "ANTHROPIC_API_KEY": AnthropicPeer.KNOBS["api_key"]}
    return env, ("the bundled TEST PEER — it speaks the Ollama and Anthropic protocols but answers with canned "
                 "text ('word0 word1 ...'), not a model. Start Ollama or set ANTHROPIC_API_KEY for real answers"), peer


def recording(fresh: bool) -> tuple[dict[str, str], str, None]:
    """The embedded local model alone, every answer and vector kept in a fresh RECORDED file: the
    replay run sets the same routing inputs (no key, no Ollama, default backend local), so every
    request has the key it was recorded under."""
    for name in [n for n in os.environ if n.startswith(("OLLAMA_", "ANTHROPIC_", "INFERENCE_", "OPENAI_"))]:
        del os.environ[name]
    RECORDED.parent.mkdir(exist_ok=True)
    if fresh:  # nothing stale stays: the file holds exactly what the notebooks ask
        RECORDED.unlink(missing_ok=True)
        MANIFEST.write_text("")
    # no MPLBACKEND=Agg here: the kernel's inline backend is what saves a notebook's charts (05, 07)
    env = {"INFERENCE_DEFAULT_BACKEND": "local", "OLLAMA_BASE_URL": "http://127.0.0.1:9",
           "INFERENCE_CACHE": "on", "INFERENCE_CACHE_FILE": str(RECORDED),
           "INFERENCE_DATA_DIR": tempfile.mkdtemp(prefix="im-record-")}
    return env, f"the embedded local model, recording every answer into {RECORDED.relative_to(REPO)}", None


def mark_recorded(path: Path) -> None:
    names = set(MANIFEST.read_text().split()) if MANIFEST.exists() else set()
    MANIFEST.write_text("".join(f"{name}\n" for name in sorted(names | {path.name})))


def compact(path: Path) -> None:
    """The recorded file as small as SQLite makes it (it is committed)."""
    import sqlite3

    db = sqlite3.connect(path)
    count = db.execute("SELECT count(*) FROM blobs").fetchone()[0]
    db.execute("VACUUM")
    db.close()
    print(f"{count} recorded answers and vectors in {path.relative_to(REPO)} ({path.stat().st_size / 1e3:.0f} kB)")


def execute(path: Path, update: bool | str) -> str | None:
    """Run one notebook; write the executed copy to build/ (and back over the source with
    `update`). Returns the failing cell's error line, or None."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from jupyter_client.manager import KernelManager

    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    sockets = tempfile.mkdtemp(prefix="im-kernel-")
    # the kernel and this process share the machine: Unix sockets instead of loopback TCP, which
    # ipykernel warns about ("running over TCP without encryption") on every start
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
    try:
        # a cell's time limit: 10 min; none when recording (a loaded machine's small model may be slow)
        NotebookClient(notebook, km=manager, timeout=None if update == "record" else 600,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        failed = None
    except CellExecutionError as exc:
        failed = str(exc).strip().splitlines()[-1]
    finally:
        # nbclient leaves a kernel it was handed running; stop it here rather than let it notice
        # this process is gone ("Parent appears to have exited, shutting down.")
        if manager.has_kernel:
            manager.shutdown_kernel()
        shutil.rmtree(sockets, ignore_errors=True)
    BUILD.mkdir(exist_ok=True)
    output = BUILD / f"{path.stem}.executed.ipynb"
    nbformat.write(notebook, output)
    if update and failed is None:
        nbformat.write(notebook, path)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path  # a notebook named from elsewhere
    print(f"{'FAILED' if failed else 'ok':>6}  {shown} -> {output.relative_to(REPO)} "
          f"({time.monotonic() - started:.1f} s){': ' + failed if failed else ''}", flush=True)
    if path == QUICKSTART:
        first = next((o["data"]["text/plain"] for cell in notebook.cells if cell.source.startswith("%%infer\n")
                      for o in cell.get("outputs", []) if "text/plain" in o.get("data", {})), None)
        if first:
            print("First answer:\n  " + first.replace("\n", "\n  "))
    return failed


def main(argv: list[str]) -> int:
    record = "--record" in argv
    named = [Path(a).resolve() for a in argv if a.endswith(".ipynb")]
    paths = named or (sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if "--all" in argv or record else [QUICKSTART])
    env, described, peer = recording(fresh=not named) if record else choose()
    print(f"Running {len(paths)} notebook{'s' * (len(paths) > 1)} against {described}.", flush=True)
    os.environ.update(env)  # the kernels inherit it
    try:
        failures = []
        for path in paths:
            if execute(path, "record" if record else "--update" in argv):
                failures.append(path)
            elif record:
                mark_recorded(path)
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait(timeout=10)
    if record and RECORDED.exists():
        compact(RECORDED)
    if failures:
        print(f"{len(failures)} notebook(s) failed: {', '.join(p.name for p in failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
