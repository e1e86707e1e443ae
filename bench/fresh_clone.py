"""What the install and test-suite benchmarks share: a fresh clone of this checkout's HEAD in a
temporary folder, and a timed command run in it with the child processes' CPU time."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import REPO, clean_environment


@dataclass
class Timed:
    seconds: float
    cpu: float          # user + system CPU seconds of every process it started
    returncode: int
    output: str         # stdout and stderr, interleaved


def head() -> tuple[str, bool]:
    """(HEAD's short commit, whether the working tree has uncommitted changes: a clone measures HEAD)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    return commit, dirty


class FreshClone:
    """`git clone` of HEAD into a temporary folder, removed afterwards."""

    def __init__(self, prefix: str):
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.path = self.folder / "inference_magics"
        subprocess.run(["git", "clone", "-q", str(REPO), str(self.path)], check=True)

    def run(self, argv: list[str], timeout: float, **env: str) -> Timed:
        """Run argv in the clone with a clean settings environment (nothing of the developer's
        configuration leaks in) plus env; wall and CPU time of it and every process it started."""
        environment = clean_environment(**env)
        environment.pop("VIRTUAL_ENV", None)   # the clone makes and uses its own .venv
        environment.pop("PYTHONPATH", None)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.path, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Timed(seconds, cpu, done.returncode, done.stdout)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def python_for_clones() -> str:
    """The Python a newcomer would have: the one this virtualenv was made from (PYTHON= in
    scripts/bootstrap.sh), not the virtualenv itself."""
    import sys

    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.environ.get("PYTHON") or base
