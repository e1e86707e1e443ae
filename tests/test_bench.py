"""The benchmarks keep working: `python -m bench --quick` runs every one with tiny sizes and exits 0.
No timing is asserted here — benchmarks measure, tests check (see bench/RESULTS.md for figures)."""
import subprocess
import sys
from pathlib import Path

from bench import BENCHMARKS

REPO = Path(__file__).resolve().parent.parent


def test_every_benchmark_runs_in_quick_mode_and_leaves_the_results_alone():
    results = REPO / "bench" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    done = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)  # ~1 min idle; a loaded 2-core machine took 290 s
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for name in BENCHMARKS:
        # one line per benchmark: its figures, or why it was skipped (the local extra may be missing)
        assert any(line.startswith(f"bench {name}: ") for line in lines), (name, done.stdout)
    assert not any(": ERROR" in line for line in lines), done.stdout
    assert (results.read_bytes() if results.exists() else None) == before  # --quick does not overwrite it


def test_the_instruction_count_child_streams_the_recorded_reply_through_both_paths():
    """bench/instructions.py runs its children under valgrind (not in the quick mode); without it they
    must still stream the recorded reply to the end, through im.stream() and the official client."""
    for variant in ("ours", "raw"):
        done = subprocess.run([sys.executable, "-m", "bench.instructions", variant, "1", "50"], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
