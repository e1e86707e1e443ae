"""Run llama.cpp's llama-server for the `local` backend: started lazily on a free loopback port,
waited for while it loads, reused across cells, logged to a file, stopped when Python exits,
restarted once when it has died."""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .errors import BackendError, BackendUnavailable
from .paths import create_private_file, make_private_dir


def log_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "inference_magics" / "logs"
    make_private_dir(path)  # logs are kept at rest: owner-only, like the history
    return path


def _health(url: str, timeout: float) -> int:
    """GET /health straight to our loopback server: never through a proxy from the environment
    (HTTP_PROXY would otherwise get every poll, and the server would never look ready)."""
    return httpx.get(f"{url}/health", timeout=timeout, trust_env=False, follow_redirects=False).status_code


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child before exec (Linux): SIGTERM when we die, even by SIGKILL
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# The parent-death signal fires when the *thread* that started the child ends, so servers are
# started from one thread that lives as long as the process, whichever thread asked (a cell, the
# chat widget, an experiment worker): a SIGKILLed kernel then never leaves a server behind.
_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-server-launcher")


class LlamaServer:
    """One llama-server process serving one GGUF file."""

    def __init__(self, binary: str, model: Path, *, alias: str, ctx_size: int, start_timeout_s: float,
                 extra_args: tuple[str, ...] = (), purpose: str = "chat"):
        self.binary, self.model, self.alias = binary, model, alias
        self._args = ("--ctx-size", str(ctx_size), *extra_args)
        self._start_timeout_s = start_timeout_s
        self.log_path = log_dir() / f"llama-server-{os.getpid()}-{purpose}.log"
        self.url: str | None = None
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def ensure_running(self) -> str | None:
        """Start the server if needed; returns a one-line notice when it had died and was restarted."""
        with self._lock:
            if self.running:
                return None
            notice = None
            if self._process is not None:
                notice = (f"the local llama-server had stopped (exit code {self._process.returncode}); restarted "
                          f"it — its log is {self.log_path}.")
            self._start()
            return notice

    def has_died(self, grace_s: float = 0.5) -> bool:
        """After a broken connection: did the process die? (It may take a moment to be reaped.)"""
        if self._process is None:
            return False
        try:
            self._process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def state(self) -> str:
        """'stopped', 'loading' or 'ready'."""
        if not self.running:
            return "stopped"
        try:
            return "ready" if _health(self.url, timeout=2) == 200 else "loading"
        except httpx.HTTPError:
            return "loading"

    def _start(self) -> None:
        for _ in range(3):  # another process may take the port between our probe and the server's bind
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            create_private_file(self.log_path)
            with open(self.log_path, "ab") as log:
                log.write(f"\n--- starting on port {port}: {self.model}\n".encode())
                log.flush()
                self._process = _launcher.submit(
                    subprocess.Popen,
                    [self.binary, "--model", str(self.model), "--alias", self.alias, "--host", "127.0.0.1",
                     "--port", str(port), "--no-webui", *self._args],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    # its own session: a kernel interrupt (SIGINT to the kernel's process group) must not kill it
                    start_new_session=True, preexec_fn=_die_with_parent).result()
            if self._wait_until_ready():
                return
            if "bind" not in self._log_tail().lower():
                break
        code = self._process.poll()
        self.stop()
        raise BackendUnavailable(f"llama-server could not start with {self.model.name} (exit code {code}): "
                                 f"{self._log_tail()[-200:]} — see {self.log_path}.")

    def _wait_until_ready(self) -> bool:
        """Poll /health: 503 while the model loads, 200 when ready. False if the process exited."""
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                if _health(self.url, timeout=1) == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise BackendError(f"llama-server did not finish loading {self.model.name} within "
                           f"{self._start_timeout_s:.0f} s (INFERENCE_LOCAL_START_TIMEOUT) — see {self.log_path}.")

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stop(self) -> None:
        """Stop deliberately (at exit, or after a failed start): no restart notice follows."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
