"""One llama-server shared by all kernels of a user: this small process starts it as its child and
stops it once no kernel has used it for the idle timeout.

A kernel that uses the server holds a shared `flock` on the users file for as long as it lives; the
operating system drops that lock when the kernel exits, however it exits (SIGKILL included). So
"can we take the lock exclusively?" is an exact "is any user left?", with no PID list to go stale.
The state file (JSON, owner-only, replaced atomically) tells kernels where the server listens, the
API key it asks for (a random one per server: any other local user could otherwise use it, read
/props and share its KV cache) and, once it has stopped, why. Only a kernel holding the registry
lock starts a supervisor, and the supervisor takes the same lock before it decides to stop, so a
kernel never joins a server that is going away.

    python -m inference_magics.backends.llama_supervisor --state S --users U --registry R --log L
        --idle-timeout SECONDS -- llama-server [ARGS...]      (it adds --host, --port and --no-slots;
                                                                the key goes in LLAMA_API_KEY, never argv)
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

POLL_S = 0.25
SIGNALS_WE_NEED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def write_state(path: Path, **state) -> None:
    """Replace the state atomically with an owner-only (0600) file: it holds the server's API key."""
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale temporary of ours may have had other modes
        with os.fdopen(fd, "w") as out:
            fd = None
            out.write(json.dumps(state))
    finally:
        if fd is not None:
            os.close(fd)
    os.replace(temporary, path)


def read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def no_users(users: Path) -> bool:
    """True when no process holds its shared lock on the users file (each kernel holds one)."""
    with open(users, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def unblock_signals() -> None:
    """A process started from a thread inherits that thread's signal mask; a blocked SIGTERM made an
    earlier server immune to `kill` and to its parent-death signal. Clear the mask."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _in_child_before_exec() -> None:
    """llama-server: no blocked signals, and SIGTERM when this supervisor dies (even by SIGKILL)."""
    unblock_signals()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Is the process `pid` the one listening on 127.0.0.1:port? llama-server's command line (and so
    its port) is readable by every local user, who could bind the port first and answer /health: a
    200 from the port proves nothing until the listening socket is our child's. Linux only (/proc);
    elsewhere it cannot be told and is assumed."""
    if not os.path.exists("/proc/net/tcp"):
        return True
    wanted = f"0100007F:{port:04X}" if sys.byteorder == "little" else f"7F000001:{port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            inodes = {f"socket:[{fields[9]}]" for fields in (line.split() for line in list(table)[1:])
                      if fields[1] == wanted and fields[3] == "0A"}  # 0A: LISTEN
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _bind_failed(log: Path, since: int) -> bool:
    """Did the server we started at offset `since` of the log fail to bind its port? (Not only its
    last line: llama-server ends with "exiting due to HTTP server error" after "couldn't bind".)"""
    try:
        with open(log, "rb") as handle:
            handle.seek(since)
            return "bind" in handle.read(65536).decode(errors="replace").lower()
    except OSError:
        return False


def _log_tail(log: Path) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 4000))
            lines = [ln for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    unblock_signals()
    parser = argparse.ArgumentParser(prog="llama_supervisor")
    for name in ("--state", "--users", "--registry", "--log"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--idle-timeout", type=float, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    stopping = []
    for signum in SIGNALS_WE_NEED:
        signal.signal(signum, lambda *_: stopping.append(True))

    # a key per server, so no other local user can use it: given to llama-server in its environment
    # (LLAMA_API_KEY, read by --api-key), never on its command line, which /proc shows to everyone
    key = secrets.token_urlsafe(32)
    base = dict(supervisor_pid=os.getpid(), log=str(args.log), api_key=key)
    with open(args.log, "ab") as log:
        for _ in range(3):  # another process may take the port between our probe and the server's bind
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            log.write(f"\n--- starting on port {port}: {' '.join(command)}\n".encode())
            log.flush()
            since = log.tell()
            # --no-slots: /slots shows every slot's activity and sampling parameters
            server = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port), "--no-slots"],
                                      env={**os.environ, "LLAMA_API_KEY": key}, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=_in_child_before_exec)
            write_state(args.state, **base, status="loading", server_pid=server.pid, url=url,
                        started_at=time.time())
            # ready only when our child answers on the port: not another process that took it first
            while server.poll() is None and not stopping and not (_healthy(url) and _listens(server.pid, port)):
                time.sleep(0.05)
            if server.poll() is None or not _bind_failed(args.log, since):
                break
        if server.poll() is None and not stopping:
            write_state(args.state, **base, status="ready", server_pid=server.pid, url=url,
                        started_at=read_state(args.state).get("started_at"), ready_at=time.time())

        idle_since = None
        reason = "stopped"
        while server.poll() is None:
            if stopping:
                break
            time.sleep(POLL_S)
            if not no_users(args.users):
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < args.idle_timeout:
                continue
            with open(args.registry, "a+b") as registry:  # decide under the lock kernels join under
                fcntl.flock(registry, fcntl.LOCK_EX)
                if no_users(args.users):
                    reason = "idle"
                    write_state(args.state, **base, status="stopped", reason="idle", url=url)
                    break
                idle_since = None

        code = server.poll()
        if code is None:
            server.terminate()
            try:
                code = server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
        else:
            reason = "exited"
        with open(args.registry, "a+b") as registry:
            # a kernel holding the lock may be starting our successor: take the lock to record the stop,
            # unless the holder is waiting for exactly this record (then it starts nothing until it has it)
            for _ in range(20):
                try:
                    fcntl.flock(registry, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.05)
            state = read_state(args.state)
            if state.get("supervisor_pid") == os.getpid() and state.get("status") != "stopped":
                write_state(args.state, **base, status="stopped", reason=reason, exit_code=code, url=url,
                            log_tail=_log_tail(args.log)[-300:])
        log.write(f"--- llama-server stopped ({reason}, exit code {code})\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
