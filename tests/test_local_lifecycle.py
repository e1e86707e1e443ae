"""The embedded model's server lifecycle, for real: one llama-server per user and model shared by
kernels, never outliving its last kernel (SIGKILL included), with signals that work, and slots that
run requests at once. Real ipykernels, a real llama-server, no timed assertions: every wait is a
generous bound on something that must happen."""
import os
import signal
import threading

import pytest

import inference_magics as im
from inference_magics import settings
from inference_magics.backends import get_backend
from tests.conftest import needs_local, server_props, wait_until

pytestmark = [needs_local, pytest.mark.usefixtures("local_model")]
IDLE_S = 1  # the test's idle timeout: the server goes this long after its last user
GONE_WITHIN_S = 60  # how long we wait for that (generous: a loaded machine is slow, not wrong)

SERVER_OF_THIS_KERNEL = (
    "import os\nfrom inference_magics.backends import get_backend\nfrom inference_magics import settings\n"
    "_s = get_backend('local', settings.load())._servers\n"
    "_s = next(s for (m, embed), s in _s.items() if not embed)\n"
    "print(os.getpid(), _s.pid, _s.supervisor_pid, _s.load_s)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _blocked_signals(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """Real kernels of one user: the same data folder, a short idle timeout."""
    from tests.kernel_harness import Kernel

    started = []
    env = {"INFERENCE_DATA_DIR": str(tmp_path / "data"), "INFERENCE_LOCAL_IDLE_TIMEOUT": str(IDLE_S * 1000)}
    env = {**{k: v for k, v in os.environ.items() if k != "INFERENCE_LOCAL_SERVER"}, **env}
    monkeypatch.delenv("INFERENCE_LOCAL_SERVER", raising=False)

    def start():
        kernel = Kernel(env, cwd=str(tmp_path))
        started.append(kernel)
        assert not kernel.run("%load_ext inference_magics").errors
        return kernel

    yield start
    for kernel in started:
        try:
            kernel.shutdown()
        except Exception:
            pass


def _ask(kernel):
    """One answer through %%infer; (the live status lines shown before it, the final footer, the pids)."""
    run = kernel.run("%%infer --backend local -n 4 -t 0\nWhat is the capital of France?", timeout=180)
    assert not run.errors, run.errors
    shown = [m["content"]["data"].get("text/plain", "") for m in run.displays]
    pids = kernel.run(SERVER_OF_THIS_KERNEL).stdout.split()
    return shown, run.final_markdown, [int(p) for p in pids[:3]], pids[3]


def test_two_kernels_share_one_server_which_goes_when_both_are_killed(kernels):
    """Property: the second kernel joins the first one's server (same process, no model load in its
    footer, told so before its first token); after SIGKILL of both kernels the server and its
    supervisor are gone within the idle timeout (bounded generously)."""
    first, second = kernels(), kernels()
    shown1, footer1, (kernel1, server1, supervisor1), load1 = _ask(first)
    assert any("starting the embedded model gemma-3-270m" in line for line in shown1[:-1]), shown1
    assert "model load" in footer1 and float(load1) > 0

    shown2, footer2, (kernel2, server2, supervisor2), load2 = _ask(second)
    assert (server2, supervisor2) == (server1, supervisor1)  # one server for both kernels
    assert any("using the running embedded model gemma-3-270m" in line for line in shown2[:-1]), shown2
    assert "model load" not in footer2 and load2 == "None"  # the second kernel's first token cost no load

    os.kill(kernel1, signal.SIGKILL)
    assert wait_until(lambda: not _alive(kernel1), timeout=10)
    assert _alive(server1)  # the other kernel still uses it
    os.kill(kernel2, signal.SIGKILL)
    assert wait_until(lambda: not _alive(server1) and not _alive(supervisor1), timeout=GONE_WITHIN_S)


def test_a_server_started_from_a_thread_with_sigterm_blocked_still_obeys_sigterm(monkeypatch):
    """Property: a thread's blocked signals do not reach llama-server or its supervisor (the cause of
    the orphan found with SigBlk 0x4000), so a plain `kill` stops the server."""
    monkeypatch.setenv("INFERENCE_LOCAL_IDLE_TIMEOUT", str(IDLE_S * 1000))
    errors = []

    def from_a_masked_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            im.infer("Hello", backend="local", max_tokens=2)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=from_a_masked_thread)
    worker.start()
    worker.join()
    assert not errors, errors
    server = next(iter(get_backend("local", settings.load())._servers.values()))
    assert _blocked_signals(server.pid) & (1 << (signal.SIGTERM - 1)) == 0
    assert _blocked_signals(server.supervisor_pid) & (1 << (signal.SIGTERM - 1)) == 0
    pid = server.pid
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not _alive(pid), timeout=30)
    result = im.infer("What is the capital of France?", backend="local", max_tokens=4)
    assert server.pid != pid and any("had stopped" in n for n in result.notices)
    server.stop()


def test_concurrent_requests_run_in_parallel_slots(monkeypatch):
    """Property: with INFERENCE_LOCAL_PARALLEL=4 the server has 4 slots, and four concurrent answers
    are generated at the same time (several rows between their first and last token at once), not
    one after another. (llama-server's /slots is off — --no-slots — so each row's own timing says it.)"""
    monkeypatch.setenv("INFERENCE_LOCAL_PARALLEL", "4")
    im.infer("Hello", backend="local", max_tokens=2)
    server = next(iter(get_backend("local", settings.load())._servers.values()))
    props = server_props(server)
    assert props["total_slots"] == 4 and props["endpoint_slots"] is False
    assert props["default_generation_settings"]["n_ctx"] >= settings.load().local_ctx_size  # each keeps the window

    mapped = im.map("Write a long story about {row}.", ["a forest", "the sea", "a city", "a mountain"],
                    backend="local", max_tokens=64, temperature=0, concurrency=4, progress=False, cache=False)
    assert not mapped.failed and all(mapped.outputs)
    assert _most_generating_at_once([row.result for row in mapped.rows]) >= 2
    server.stop()


def _most_generating_at_once(results) -> int:
    """The most answers between their first and their last token at one moment (each span cut by
    50 ms at both ends, more than the timestamps' rounding: one after another never counts as two)."""
    from datetime import datetime

    edges = []
    for result in results:
        asked = datetime.fromisoformat(result.requested_at).timestamp()
        first, last = asked + result.metrics.ttft_s + 0.05, asked + result.metrics.total_s - 0.05
        if first < last:
            edges += [(first, 1), (last, -1)]
    most = now = 0
    for _, step in sorted(edges):
        now += step
        most = max(most, now)
    return most


def _threads_flag(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        args = cmdline.read().decode().split("\0")
    return args[args.index("--threads") + 1]


def test_the_server_leaves_a_core_free_unless_told_how_many_threads_to_use(monkeypatch):
    """llama.cpp's threads meet at a barrier on every step: holding every core, they stall whenever
    the kernel or the browser takes one (18x slower on 2 cores). Unset, the server gets one fewer
    than the cores this process may use (at least one); INFERENCE_LOCAL_THREADS says otherwise."""
    from inference_magics.backends.local import default_threads

    cpus = len(os.sched_getaffinity(0))
    assert default_threads() == 1 if cpus <= 2 else 1 <= default_threads() <= cpus - 1
    im.infer("Hello", backend="local", max_tokens=2)
    server = next(iter(get_backend("local", settings.load())._servers.values()))
    assert _threads_flag(server.pid) == str(default_threads())
    server.stop()

    monkeypatch.setenv("INFERENCE_LOCAL_THREADS", "3")
    im.infer("Hello", backend="local", max_tokens=2)
    server = next(iter(get_backend("local", settings.load())._servers.values()))
    assert _threads_flag(server.pid) == "3"
    server.stop()
