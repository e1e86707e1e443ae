"""3. Extension load: `%load_ext inference_magics` in a fresh kernel, against `import anthropic` in
another fresh kernel of the same environment (both cold in their process)."""
from __future__ import annotations

from .common import KernelFolder, Section, interleaved, median, ratio, spread

TARGET_RATIO = 0.2
TIMED = """import time as _t
_s = _t.perf_counter()
{statement}
_e = _t.perf_counter() - _s
import sys as _sys
print(_e, sorted(m for m in ('anthropic', 'ollama', 'httpx', 'numpy', 'pydantic') if m in _sys.modules))
"""
CASES = {
    "load_ext": "get_ipython().run_line_magic('load_ext', 'inference_magics')",
    "anthropic": "import anthropic",
    "ollama": "import ollama",
}


def _fresh(statement: str) -> tuple[float, str]:
    folder = KernelFolder()
    kernel = folder.start()
    try:
        out = kernel.run(TIMED.format(statement=statement)).stdout.strip()
    finally:
        kernel.shutdown()
        folder.remove()
    seconds, _, modules = out.partition(" ")
    return float(seconds), modules


def run(quick: bool) -> Section:
    runs = 1 if quick else 5
    section = Section("load", "3. Extension load")
    section.setup = (
        f"{runs} fresh kernels per case (jupyter_client, this Python), interleaved, after one discarded warm-up "
        "each (the file cache is warm, the process is cold). In each, `time.perf_counter()` around "
        "`get_ipython().run_line_magic('load_ext', 'inference_magics')`, around `import anthropic`, or around "
        "`import ollama`; then which SDK-sized modules the statement left imported.")
    cases = ("load_ext", "anthropic") if quick else tuple(CASES)
    samples = {name: [] for name in CASES}
    modules = {}

    def step(name):
        def go():
            seconds, mods = _fresh(CASES[name])
            samples[name].append(seconds)
            modules[name] = mods
        return go

    if not quick:
        for name in cases:
            _fresh(CASES[name])
    interleaved(runs, *(step(name) for name in cases))
    ours, anthropic = median(samples["load_ext"]), median(samples["anthropic"])
    section.add("`%load_ext inference_magics` vs `import anthropic`, fresh kernels", f"{ours * 1000:.1f} ms",
                f"{anthropic * 1000:.1f} ms", ratio(ours, anthropic), f"≤ {TARGET_RATIO}×", ours / anthropic <= TARGET_RATIO)
    if samples["ollama"]:
        ollama = median(samples["ollama"])
        section.add("`%load_ext inference_magics` vs `import ollama`, fresh kernels", f"{ours * 1000:.1f} ms",
                    f"{ollama * 1000:.1f} ms", ratio(ours, ollama), "", None)
    for name, label in (("load_ext", "%load_ext inference_magics"), ("anthropic", "import anthropic"),
                        ("ollama", "import ollama")):
        if not samples[name]:
            continue
        section.raw.append(f"{label}: {spread(samples[name])}; runs ms "
                           f"{[round(x * 1000, 1) for x in samples[name]]}; imported afterwards: {modules[name]}")
    section.headline = (f"%load_ext {ours * 1000:.0f} ms = {ours / anthropic:.3f}× import anthropic "
                        f"({anthropic * 1000:.0f} ms)")
    return section
