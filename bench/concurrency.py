"""4. Concurrency: `%%experiment` over four models whose answers each take about a second, against
the slowest of those models alone."""
from __future__ import annotations

from .common import PROMPT, InProcess, KernelFolder, Section, interleaved, median, peer_settings, ratio, spread
from .peer_process import PeerProcess

MODELS = ["bench-a", "bench-b", "bench-c", "bench-d"]
TARGET_RATIO = 1.3


def run(quick: bool) -> Section:
    from inference_magics import experiments

    # first token after 0.24 s, then 19 more 40 ms apart: 1.0 s per answer (quick: 0.14 s)
    knobs = (dict(tokens=5, first_token_delay=0.1, token_delay=0.01) if quick else
             dict(tokens=20, first_token_delay=0.24, token_delay=0.04))
    per_answer = knobs["first_token_delay"] + (knobs["tokens"] - 1) * knobs["token_delay"]
    rounds = 1 if quick else 3
    section = Section("concurrency", "4. Concurrency")
    section.setup = (
        f"One Ollama peer (own process, a threading server) serving four chat models, each answer taking "
        f"{per_answer:.2f} s ({knobs['tokens']} tokens; first after {knobs['first_token_delay'] * 1000:.0f} ms, then "
        f"{knobs['token_delay'] * 1000:.0f} ms apart). **In process**: `experiments.experiment(prompt, four models)` wall "
        "time against each model alone through the same function; the baseline is the slowest single model (median "
        f"per model, then the max). **Kernel**: `%%experiment --models` four models against one model, execute_request "
        f"to idle (both draw the comparison table and chart). {rounds} rounds, interleaved, after a warm-up.")
    with PeerProcess("ollama", models=MODELS + ["nomic-embed-text"], **knobs) as peer:
        with InProcess(**peer_settings(peer)):
            experiments.experiment(PROMPT, MODELS)
            alone = {m: [] for m in MODELS}
            together, rows = [], []

            def all_four():
                done = experiments.experiment(PROMPT, MODELS)
                errors = [r.error for r in done.runs if r.error]
                if errors:
                    raise RuntimeError(f"experiment failed: {errors}")
                together.append(done.wall_s)
                rows.append([round(r["total_s"], 3) for r in done.rows()])

            def each_alone():
                for m in MODELS:
                    alone[m].append(experiments.experiment(PROMPT, [m]).wall_s)

            interleaved(rounds, all_four, each_alone)

        folder = KernelFolder(**peer_settings(peer))
        kernel = folder.start()
        try:
            kernel.run("%load_ext inference_magics")
            four_cell = f"%%experiment --models {','.join(MODELS)}\n{PROMPT}"
            one_cell = f"%%experiment --models {MODELS[-1]}\n{PROMPT}"
            kernel.run(four_cell), kernel.run(one_cell)  # warm-up: matplotlib, the backend
            kernel_four, kernel_one = [], []
            interleaved(rounds, lambda: kernel_four.append(kernel.run(four_cell).elapsed),
                        lambda: kernel_one.append(kernel.run(one_cell).elapsed))
        finally:
            kernel.shutdown()
            folder.remove()

    slowest_model = max(MODELS, key=lambda m: median(alone[m]))
    slowest = median(alone[slowest_model])
    four = median(together)
    k_four, k_one = median(kernel_four), median(kernel_one)
    section.add("`experiments.experiment`: four models at once vs the slowest model alone", f"{four:.3f} s",
                f"{slowest:.3f} s", ratio(four, slowest), f"≤ {TARGET_RATIO}×", four / slowest <= TARGET_RATIO)
    section.add("`%%experiment` in a kernel: four models vs one model (table and chart included)", f"{k_four:.3f} s",
                f"{k_one:.3f} s", ratio(k_four, k_one), f"≤ {TARGET_RATIO}×", k_four / k_one <= TARGET_RATIO)
    section.add("four models at once vs the sum of the four alone (what running them one after another costs)",
                f"{four:.3f} s", f"{sum(median(alone[m]) for m in MODELS):.3f} s",
                ratio(four, sum(median(alone[m]) for m in MODELS)), "", None)
    section.raw.append(f"each answer takes {per_answer:.3f} s at the peer")
    section.raw.append(f"experiment, four models: {spread(together, 1, 's')}; runs s {[round(x, 3) for x in together]}; "
                       f"per-model total_s per run {rows}")
    for m in MODELS:
        section.raw.append(f"experiment, {m} alone: runs s {[round(x, 3) for x in alone[m]]}")
    section.raw.append(f"%%experiment four models: runs s {[round(x, 3) for x in kernel_four]}; one model: runs s "
                       f"{[round(x, 3) for x in kernel_one]}")
    section.notes.append(
        "`experiments.experiment` polls its worker threads every 0.1 s (so an interrupt lands at once), which rounds "
        "its wall time up by up to 0.1 s — the same for one model and for four.")
    section.headline = (f"four models {four:.2f} s vs slowest alone {slowest:.2f} s = {four / slowest:.2f}×; "
                        f"%%experiment {k_four / k_one:.2f}×")
    return section
