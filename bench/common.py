"""What every benchmark shares: statistics, the result tables, a clean settings environment, and a
real ipykernel driven through jupyter_client with the arrival time and size of every iopub message."""
from __future__ import annotations

import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Say hello in a few words."
OLLAMA_MODEL = "llama3.2:latest"  # what the router picks by default, named explicitly for the raw client


# --- statistics ------------------------------------------------------------------------------------
def median(values) -> float:
    return statistics.median(values)


def p90(values) -> float:
    """The 90th percentile (linear interpolation between order statistics)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = 0.9 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values, scale: float = 1000.0, unit: str = "ms") -> str:
    """'median X, p90 Y (n=N)' for raw-number lines (milliseconds to 0.1, seconds to 0.001)."""
    digits = 1 if unit == "ms" else 3
    return (f"median {median(values) * scale:.{digits}f} {unit}, p90 {p90(values) * scale:.{digits}f} {unit} "
            f"(n={len(values)})")


def listing(values, scale: float = 1000.0, digits: int = 1) -> str:
    return "[" + ", ".join(f"{v * scale:.{digits}f}" for v in values) + "]"


# --- results ---------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One row of a benchmark's table: ours against its baseline, and the target it is held to."""
    name: str
    ours: str
    baseline: str
    ratio: float | None
    target: str = ""
    met: bool | None = None  # None: informative, no target

    @property
    def verdict(self) -> str:
        return "—" if self.met is None else ("yes" if self.met else "**no**")


@dataclass
class Section:
    key: str            # the CLI name: ttft, throughput, ...
    title: str
    setup: str = ""     # how it was measured, one paragraph
    figures: list[Figure] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)      # raw numbers, one line each
    notes: list[str] = field(default_factory=list)    # explanations (bounds, missed targets)
    headline: str = ""  # the one line printed to the terminal
    skipped: str | None = None
    seconds: float = 0.0

    def add(self, *args, **kwargs) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure

    @property
    def missed(self) -> list[Figure]:
        return [f for f in self.figures if f.met is False]


def ratio(ours: float, baseline: float) -> float | None:
    return ours / baseline if baseline else None


# --- environment -------------------------------------------------------------------------------------
def setting_names() -> list[str]:
    from inference_magics import settings

    return sorted({n for v in settings.VARS for n in v.env} | {"PAI_DIR", "OLLAMA_API_KEY", "ANTHROPIC_AUTH_TOKEN"})


def clean_environment(**values: str) -> dict[str, str]:
    """os.environ without any of our settings (nothing from the developer's machine leaks in),
    plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in setting_names()}
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return env


class InProcess:
    """Apply a clean settings environment to this process (and a fresh working folder, so no
    ./.env is read) for the duration of a `with` block."""

    def __init__(self, **values: str):
        self.values = values
        self.folder = tempfile.mkdtemp(prefix="bench-")
        self._saved: dict[str, str] | None = None
        self._cwd = None

    def __enter__(self):
        from inference_magics import backends, settings

        self._saved = dict(os.environ)
        self._cwd = os.getcwd()
        clean = clean_environment(INFERENCE_DATA_DIR=str(Path(self.folder) / "data"), **self.values)
        os.environ.clear()  # (after reading it: PYTHONPATH must reach the kernels started meanwhile)
        os.environ.update(clean)
        os.chdir(self.folder)
        settings.clear_overrides()
        backends._instances.clear()  # backends are cached per configuration; start from none
        return self

    def __exit__(self, *exc):
        from inference_magics import backends

        os.chdir(self._cwd)
        os.environ.clear()
        os.environ.update(self._saved)
        backends._instances.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def peer_settings(ollama=None, anthropic=None) -> dict[str, str]:
    """The settings a user pointing at these peers would have. The local extra stays as installed
    (a real user's environment); the peers are up, so nothing falls back to it."""
    values = {}
    if ollama is not None:
        values["OLLAMA_BASE_URL"] = ollama.url
    if anthropic is not None:
        values.update(ANTHROPIC_BASE_URL=anthropic.url, ANTHROPIC_API_KEY=anthropic.api_key)
    return values


# --- a real kernel -----------------------------------------------------------------------------------
@dataclass
class Execution:
    msg_id: str
    sent: float                                   # perf_counter() just before execute_request went out
    messages: list = field(default_factory=list)  # (arrival perf_counter(), iopub message) for this request
    done: float | None = None                     # arrival of status: idle
    cpu: float | None = None                      # CPU seconds the kernel process used meanwhile (all threads)

    def of_type(self, *types: str) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in self.messages if m["msg_type"] in types]

    def displays(self) -> list[tuple[float, dict]]:
        return self.of_type("display_data", "update_display_data")

    def first(self, predicate) -> float | None:
        """Seconds from execute_request to the first message for which predicate(msg) is true."""
        return next((t - self.sent for t, m in self.messages if predicate(m)), None)

    @property
    def elapsed(self) -> float:
        return self.done - self.sent

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for _, m in self.of_type("stream") if m["content"]["name"] == "stdout")

    @property
    def errors(self) -> list[str]:
        return [f"{m['content']['ename']}: {m['content']['evalue']}" for _, m in self.of_type("error")]


def display_text(message: dict) -> str:
    return message["content"].get("data", {}).get("text/plain", "")


class BenchKernel:
    """An ipykernel started with this Python, the way Jupyter starts one."""

    def __init__(self, env: dict[str, str], cwd: str):
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        argv0 = self.manager.kernel_spec.argv[0]
        if argv0 not in ("python", "python3", "{python}") and os.path.realpath(argv0) != os.path.realpath(sys.executable):
            self.manager.kernel_spec.argv[0] = sys.executable
        self.manager.start_kernel(env=env, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=90)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self.client.get_iopub_msg(timeout=0.05)
            except Empty:
                return

    def run(self, code: str, timeout: float = 120.0, check: bool = True) -> Execution:
        """Execute code; collect its iopub messages with their arrival times until the kernel is idle."""
        cpu_before = self.cpu_seconds()
        sent = time.perf_counter()
        msg_id = self.client.execute(code, allow_stdin=False, store_history=True)
        run = Execution(msg_id, sent)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the kernel did not finish within {timeout} s: {code[:60]!r}")
            try:
                msg = self.client.get_iopub_msg(timeout=min(remaining, 1.0))
            except Empty:
                continue
            arrived = time.perf_counter()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            run.messages.append((arrived, msg))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                run.done = arrived
                break
        if cpu_before is not None:
            run.cpu = self.cpu_seconds() - cpu_before
        reply = self._reply(msg_id)
        if check and (reply.get("status") != "ok" or run.errors):
            raise RuntimeError(f"cell failed: {code[:80]!r}: {run.errors or reply}")
        return run

    def _reply(self, msg_id: str) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise TimeoutError(f"no shell reply to {msg_id}")

    @property
    def pid(self) -> int | None:
        process = getattr(self.manager.provisioner, "process", None)
        return getattr(process, "pid", None)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the kernel process so far (Linux /proc; None elsewhere)."""
        try:
            fields_ = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, TypeError):
            return None
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")

    def wire_bytes(self, message: dict) -> int:
        """The size of the message as the kernel sent it on iopub (its ZMQ frames, signature included)."""
        frames = self.client.session.serialize(message)
        return sum(len(f) for f in frames)

    def shutdown(self) -> None:
        try:
            self.client.stop_channels()
        finally:
            self.manager.shutdown_kernel(now=True)


class KernelFolder:
    """A fresh working folder and data folder for one kernel; removed afterwards."""

    def __init__(self, **settings_values):
        self.path = tempfile.mkdtemp(prefix="bench-kernel-")
        self.env = clean_environment(INFERENCE_DATA_DIR=str(Path(self.path) / "data"), **settings_values)

    def start(self) -> BenchKernel:
        return BenchKernel(self.env, self.path)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def interleaved(runs: int, *steps):
    """Call each step once per round, alternating the order every round to cancel drift."""
    for i in range(runs):
        for step in (steps if i % 2 == 0 else tuple(reversed(steps))):
            step()
