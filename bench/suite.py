"""13. Test suite: the README's test command, `scripts/test`, on a fresh clone with warm caches
(pip's cache and the built llama-server wheel, as a developer's second clone has them)."""
from __future__ import annotations

import re

from .common import Section
from .fresh_clone import FreshClone, head, python_for_clones

TARGET_SECONDS = 600.0
SUMMARY = re.compile(r"=+ (?P<counts>.*?) in (?P<seconds>[\d.]+)s")


def run(quick: bool) -> Section:
    section = Section("suite", "13. Test suite")
    commit, dirty = head()
    if quick:
        # (the quick run is itself run by the test suite: running the suite here would recurse)
        section.skipped = "quick mode: the suite takes minutes and runs this quick mode itself; run `python -m bench suite`"
        section.headline = section.skipped
        return section
    section.setup = (
        f"`git clone` of HEAD ({commit}{', with uncommitted changes not measured' if dirty else ''}) into a "
        "temporary folder, then `scripts/test` there (it makes the clone's `.venv` from the warm caches, then "
        "runs pytest: unit tests, the peers driven by the official clients, real kernels, llama-server, "
        "JupyterLab in Chromium, the example notebooks replayed and run live). Wall time of the whole command, "
        "and pytest's own time; the 15 slowest tests in the raw numbers. One run.")
    clone = FreshClone("bench-suite-")
    try:
        timed = clone.run(["scripts/test", "-p", "no:cacheprovider", "--durations=15"], timeout=5400,
                          PYTHON=python_for_clones())
    finally:
        clone.remove()
    found = SUMMARY.search(timed.output.strip().splitlines()[-1] if timed.output.strip() else "")
    counts = found["counts"] if found else "no pytest summary"
    pytest_s = float(found["seconds"]) if found else None
    passed = timed.returncode == 0
    section.add("`scripts/test` on a fresh clone, warm caches (install from cache + pytest)",
                f"{timed.seconds:.0f} s ({timed.seconds / 60:.1f} min)", f"{TARGET_SECONDS:.0f} s",
                timed.seconds / TARGET_SECONDS, "< 10 min", timed.seconds < TARGET_SECONDS)
    if pytest_s is not None:
        section.add("… of which pytest itself", f"{pytest_s:.0f} s", "—", None, "", None)
    section.add("outcome", counts, "all pass", None, "all pass", passed)
    section.raw.append(f"scripts/test: wall {timed.seconds:.1f} s, CPU {timed.cpu:.1f} s, exit {timed.returncode}, "
                       f"{counts}; commit {commit}")
    section.raw.extend(line for line in timed.output.splitlines() if line.startswith(("FAILED", "ERROR")))
    slowest = timed.output.split("slowest 15 durations", 1)[-1].splitlines()[1:16] if "slowest 15" in timed.output else []
    section.raw.extend("slowest: " + line.strip() for line in slowest if line.strip())
    section.headline = f"test suite {timed.seconds:.0f} s ({counts})"
    return section
