"""Write-behind: what a finished answer leaves on disk — its history row and its response-cache
entry, secrets redacted first — is written by one background thread, so the cell shows its answer
without waiting for the redaction and the SQLite commit.

Nothing is lost and nothing is read stale:
- jobs run one at a time, in the order they were submitted;
- every read of those files (history, response cache, the spend cap's sum) calls flush() first;
- flush() runs at interpreter exit, so a kernel shut down right after a cell still writes it;
- each job gets a snapshot of the answer taken on the cell's thread, so a later change to `_infer`
  cannot leak into what is written.
In a notebook the writer also waits for the end of the running cell (`hold`/`release`, on IPython's
pre_run_cell and post_run_cell): redaction is regex work that holds the GIL, and run beside the cell
it would slow the cell's own final render by about as much as it saves; a flush() opens the gate.
A job's one-line notice (a history that could not be written) is handed to the next completion,
since the answer that caused it is already on screen.
"""
from __future__ import annotations

import atexit
import os
import queue
import threading
import time
from dataclasses import replace

_lock = threading.Lock()
_jobs: queue.Queue | None = None
_thread: threading.Thread | None = None
_notices: list[str] = []
_free = threading.Event()  # cleared while a notebook cell runs: jobs wait for its end
_free.set()
# post_run_cell fires before the kernel sends the cell's reply and its idle status: the writer starts
# this much later, so its GIL-holding regex passes do not delay them
AFTER_CELL_S = 0.1
_released_at = 0.0


def submit(job) -> None:
    """Run job() on the writer thread; a str it returns is a notice for the next completion."""
    global _jobs, _thread
    with _lock:
        if _thread is None:
            _jobs = queue.Queue()
            _thread = threading.Thread(target=_work, args=(_jobs,), name="inference_magics-writer", daemon=True)
            _thread.start()
        _jobs.put(job)


def flush() -> None:
    """Wait until every job submitted so far has run (at once when none is pending). Called during
    a cell, it lets the writer run for the rest of that cell."""
    global _released_at
    jobs, thread = _jobs, _thread
    if jobs is None or threading.current_thread() is thread:
        return  # nothing ever submitted, or called by a job itself (it would wait for itself)
    _released_at = 0.0
    _free.set()
    jobs.join()


def hold(*_) -> None:
    """A cell starts (IPython's pre_run_cell): jobs wait until it ends."""
    _free.clear()


def release(*_) -> None:
    """The cell ended (post_run_cell, which IPython fires after errors and interrupts too)."""
    global _released_at
    _released_at = time.monotonic()
    _free.set()


def _wait_for_no_cell() -> None:
    while True:
        _free.wait()
        pause = _released_at + AFTER_CELL_S - time.monotonic()
        if pause <= 0:
            return
        time.sleep(pause)  # then look again: another cell may have started meanwhile


def take_notices() -> list[str]:
    """Notices from jobs that failed since the last call (each reported once)."""
    with _lock:
        taken = _notices[:]
        _notices.clear()
    return taken


def snapshot(result):
    """A copy of a Result that later changes to the original (notices, user code) do not reach."""
    return replace(result, usage=replace(result.usage), metrics=replace(result.metrics),
                   notices=list(result.notices), options=dict(result.options))


def _work(jobs: queue.Queue) -> None:
    while True:
        job = jobs.get()
        _wait_for_no_cell()
        try:
            notice = job()
        except Exception as exc:  # a job never takes the writer down (history and cache writes do not raise)
            notice = f"a history or cache write failed ({type(exc).__name__}) — the answer itself is kept."
        finally:
            jobs.task_done()
        if isinstance(notice, str) and notice:
            with _lock:
                _notices.append(notice)


def _forget_after_fork() -> None:
    """A forked child has no writer thread: it starts its own on its first write."""
    global _lock, _jobs, _thread
    _lock, _jobs, _thread = threading.Lock(), None, None
    _notices.clear()
    _free.set()


atexit.register(flush)  # daemon threads still run during atexit: the queue drains before the exit
os.register_at_fork(after_in_child=_forget_after_fork)
