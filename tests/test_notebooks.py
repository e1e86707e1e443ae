"""The example notebooks against the embedded local model (a real model, no daemon, no key):
the same nbval run as `pytest notebooks`, in a subprocess with NOTEBOOKS_BACKEND=local."""
import os
import subprocess
import sys

from tests.conftest import REPO, needs_local


@needs_local
def test_every_notebook_runs_on_the_embedded_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA", "ANTHROPIC", "INFERENCE_"))}
    env["NOTEBOOKS_BACKEND"] = "local"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary
