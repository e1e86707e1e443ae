"""Run notebooks/01-quickstart.ipynb headlessly against the best backend available, and say
which one it used and where the executed notebook is.

Order: Ollama (if it runs and has a chat model), then Claude (if a key works), then the embedded
local model (llama-server with the packaged Gemma 3 270M: real tokens, no daemon, no key), else
the bundled test peer — which answers with canned text, not a model, and this script says so.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "01-quickstart.ipynb"
OUTPUT = REPO / "build" / "01-quickstart.executed.ipynb"

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


def main() -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env, described, peer = choose()
    print(f"Running {NOTEBOOK.relative_to(REPO)} against {described}.", flush=True)
    os.environ.update(env)  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    started = time.monotonic()
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
        failed = None
    except CellExecutionError as exc:
        failed = str(exc).strip().splitlines()[-1]
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait(timeout=10)
    OUTPUT.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, OUTPUT)
    print(f"Executed notebook: {OUTPUT.relative_to(REPO)} ({time.monotonic() - started:.1f} s)")
    first_answer = next((o["data"]["text/plain"] for cell in notebook.cells if cell.source.startswith("%%infer\n")
                         for o in cell.get("outputs", []) if "text/plain" in o.get("data", {})), None)
    if first_answer:
        print("First answer:\n  " + first_answer.replace("\n", "\n  "))
    if failed:
        print(f"A cell failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
