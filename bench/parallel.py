"""10. Parallel slots: the same 32 rows through `im.map` on the embedded model, four at a time against
one at a time. llama-server runs INFERENCE_LOCAL_PARALLEL slots with continuous batching, so the
four requests share each decoding step; the aggregate tokens/s is what a `--map` or `%%experiment`
gets."""
from __future__ import annotations

import time

from .common import InProcess, Section
from .local import missing

TOPICS = ["a forest", "the sea", "a city", "a mountain", "a river", "a desert", "a library", "a market",
          "a train", "a garden", "a storm", "a bridge", "a castle", "a harbour", "a village", "a festival",
          "a school", "a kitchen", "a museum", "a volcano", "an island", "a lighthouse", "a farm", "a factory",
          "a hospital", "a stadium", "a cave", "a glacier", "a jungle", "an airport", "a bakery", "a theatre"]
TEMPLATE = "Write a long story about {row}."
TARGET = 2.0


def run(quick: bool) -> Section:
    section = Section("parallel", "10. Parallel slots (embedded llama-server)")
    why = missing()
    if why:
        section.skipped = why
        section.headline = f"skipped — {why}"
        return section
    rows = TOPICS[:8] if quick else TOPICS
    max_tokens = 8 if quick else 32
    runs: dict[int, list[tuple[float, int]]] = {1: [], 4: []}
    with InProcess(INFERENCE_LOCAL_PARALLEL="4"):
        import inference_magics as im
        from inference_magics import backends, settings

        im.infer("Hello", backend="local", max_tokens=4)  # start the server and load the model first
        server = next(iter(backends.get_backend("local", settings.load())._servers.values()))
        try:
            # two rounds, the order alternating (1, 4 then 4, 1), so drift in the machine's load hits both
            for concurrency in ((1, 4, 4, 1) if not quick else (1, 4)):
                started = time.perf_counter()
                mapped = im.map(TEMPLATE, rows, backend="local", max_tokens=max_tokens, temperature=0,
                                concurrency=concurrency, cache=False, progress=False)
                wall = time.perf_counter() - started
                runs[concurrency].append((wall, sum(row.tokens for row in mapped.rows)))
        finally:
            server.stop()

    def rate(results):
        return sum(tokens for _, tokens in results) / sum(wall for wall, _ in results)

    serial, parallel = rate(runs[1]), rate(runs[4])
    speedup = parallel / serial
    section.setup = (
        f"`im.map(\"{TEMPLATE}\", rows, backend=\"local\", max_tokens={max_tokens}, temperature=0, "
        f"concurrency=N, cache=False)` over the same {len(rows)} rows, with llama-server started by the extension "
        "with `--parallel 4` (INFERENCE_LOCAL_PARALLEL) and continuous batching, each slot keeping the full "
        "context window. Aggregate tokens/s = output tokens of all rows over the wall time of the whole map. "
        f"N=1 and N=4 runs interleaved ({len(runs[1])} each), after the model was loaded.")
    section.add(f"aggregate tokens/s, {len(rows)} rows, 4 at a time ÷ 1 at a time", f"{parallel:.1f} tok/s",
                f"{serial:.1f} tok/s", speedup, f"≥ {TARGET:.0f}×", speedup >= TARGET)
    for concurrency, results in runs.items():
        section.raw.append(f"concurrency {concurrency}: " + "; ".join(
            f"{tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tok/s" for wall, tokens in results))
    section.notes.append(
        "Batching four streams into each decoding step helps only while the cores have arithmetic to spare; "
        "when other processes keep them busy, the slots still run at once (tests/test_local_lifecycle.py checks "
        "that several are busy together) but the aggregate rate cannot rise. Compare runs of the same N in the "
        "raw numbers to see how much the machine's load moved during the benchmark.")
    section.headline = f"{parallel:.1f} tok/s at concurrency 4 vs {serial:.1f} tok/s at 1 = {speedup:.2f}×"
    return section
