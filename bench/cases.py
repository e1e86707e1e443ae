"""11. Capabilities against their baselines, in one kernel: each case is one small function.

A case receives a `Bench` — a real kernel with the extension loaded, pointed at an Ollama and an
Anthropic peer running in their own process — and adds its figures to the shared section. To add a
capability, write one function below and decorate it with `@case`:

    @case
    def typed_answer(b: Bench) -> None:
        signature = b.kernel.run("import inspect, inference_magics as im; print(inspect.signature(im.infer))")
        if "schema" not in signature.stdout:   # the capability is not in this tree
            raise Skip("im.infer takes no schema= here")
        ours, base = b.compare("%%infer --schema ...\\nQ", "%%infer\\nQ")
        ours, base = b.seconds(ours), b.seconds(base)
        b.section.add("typed answer vs a plain one", *b.row(ours, base), target="≤ 1.10×", met=...)

`b.compare(ours_cell, baseline_cell)` runs the two cells interleaved (order alternating each round)
and returns their executions; `b.seconds(runs, until)` turns them into times: execute_request to
`status: idle`, or to the first iopub message `until` accepts. A case that raises Skip is listed with its reason; other cases still run.
"""
from __future__ import annotations

from typing import Callable

from .common import (BenchKernel, Execution, KernelFolder, Section, display_text, interleaved, median, peer_settings, ratio,
                     spread)
from .peer_process import PeerProcess

CASES: list[Callable] = []


def case(function: Callable) -> Callable:
    """Register a case: `function(bench)` adds figures to `bench.section`."""
    CASES.append(function)
    return function


class Skip(Exception):
    """This capability is not in the tree being measured (the message says which)."""


class Bench:
    def __init__(self, kernel: BenchKernel, ollama: PeerProcess, claude: PeerProcess, section: Section, quick: bool):
        self.kernel, self.ollama, self.claude, self.section, self.quick = kernel, ollama, claude, section, quick
        self.runs = 3 if quick else 11

    def compare(self, ours: str, baseline: str) -> tuple[list[Execution], list[Execution]]:
        """Each cell run `self.runs` times, interleaved (order alternating), after one warm-up of each."""
        done: dict[str, list[Execution]] = {ours: [], baseline: []}
        self.kernel.run(ours), self.kernel.run(baseline)
        interleaved(self.runs, *(lambda cell=cell: done[cell].append(self.kernel.run(cell)) for cell in done))
        return done[ours], done[baseline]

    @staticmethod
    def seconds(runs: list[Execution], until=None) -> list[float]:
        """execute_request to `status: idle`, or to the first iopub message `until(message)` accepts."""
        found = [run.first(until) if until is not None else run.elapsed for run in runs]
        if None in found:
            raise RuntimeError("a run sent no message that the case waits for")
        return found

    @staticmethod
    def row(ours: list[float], baseline: list[float]) -> tuple[str, str, float | None]:
        """(ours, baseline, ratio) for a table row: medians in milliseconds."""
        a, b = median(ours), median(baseline)
        return f"{a * 1000:.1f} ms", f"{b * 1000:.1f} ms", ratio(a, b)


# --- the cases ------------------------------------------------------------------------------------
CACHED_TARGET_S = 0.020


@case
def cached_answer(b: Bench) -> None:
    """A cached `%%infer` answer on screen, against a cell that prints a string: the kernel's floor."""
    b.ollama.set(tokens=200, first_token_delay=0.2, token_delay=0.005)  # a model call would take ~1.2 s
    b.kernel.run("%%infer --cache\nWhat is a cached answer?")  # recorded once
    requests = b.ollama.count("/api/chat")

    def answer_shown(message) -> bool:
        return message["msg_type"] in ("display_data", "update_display_data") and \
            display_text(message).startswith("word0 word1")

    def printed(message) -> bool:
        return message["msg_type"] == "stream" and message["content"]["text"].startswith("word0 word1")

    ours, floor = b.compare("%%infer --cache\nWhat is a cached answer?", "print(_infer.text)")
    shown, printed_at = b.seconds(ours, answer_shown), b.seconds(floor, printed)
    asked = b.ollama.count("/api/chat") - requests
    a = median(shown)
    b.section.add("cached answer: a cached `%%infer` answer on screen (execute_request to the first display of its "
                  "text) vs a cell printing the same text", *b.row(shown, printed_at),
                  target=f"≤ {CACHED_TARGET_S * 1000:.0f} ms", met=a <= CACHED_TARGET_S and asked == 0)
    whole, whole_floor = b.seconds(ours), b.seconds(floor)
    b.section.add("cached answer: the whole cell, to `status: idle`", *b.row(whole, whole_floor))
    b.section.raw.append(f"cached answer on screen: {spread(shown)}; printing cell: {spread(printed_at)}; whole "
                         f"cell: {spread(whole)} vs {spread(whole_floor)}; model requests during the cached runs: {asked}")


# --- the section ----------------------------------------------------------------------------------
def run(quick: bool) -> Section:
    section = Section("cases", "11. Capabilities against their baselines")
    section.setup = ("One kernel with the extension loaded, pointed at an Ollama and an Anthropic peer (each in its "
                     "own process); each case runs its two cells interleaved, order alternating, after a warm-up. "
                     "Medians; every run's spread in the raw numbers. Cases: `bench/cases.py`, one function each.")
    skipped = []
    with PeerProcess("ollama") as ollama, PeerProcess("anthropic") as claude:
        folder = KernelFolder(**peer_settings(ollama, claude))
        kernel = folder.start()
        try:
            kernel.run("%load_ext inference_magics")
            bench = Bench(kernel, ollama, claude, section, quick)
            for function in CASES:
                ollama.reset(), claude.reset()
                try:
                    function(bench)
                except Skip as why:
                    skipped.append(f"{function.__name__}: {why}")
        finally:
            kernel.shutdown()
            folder.remove()
    section.notes += [f"Skipped — {line}" for line in skipped]
    held = [f for f in section.figures if f.met is not None]
    section.headline = "; ".join(f"{f.name.split(':')[0]} {f.ours}" for f in held) + \
        (f"; skipped {len(skipped)}" if skipped else "") or "no case ran"
    return section
