"""7. Prompt caching: the input cost of a 100-row Claude map with a 2,000-token instruction, with
the instruction marked for Claude's prompt cache against the same map with marking off, priced
from the usage the Anthropic peer reports (which follows the API's cache accounting)."""
from __future__ import annotations

from .common import InProcess, Section, peer_settings, ratio
from .peer_process import PeerProcess

MODEL = "claude-sonnet-4-5"   # caches prefixes of 1,024 tokens and more
TARGET_RATIO = 0.25           # cache reads bill 0.1x input: 100 rows should cost well under a quarter


def _input_cost(mapped) -> tuple[float, dict]:
    from inference_magics.pricing import estimate_cost

    totals = dict(input=0, written=0, read=0)
    cost = 0.0
    for row in mapped.rows:
        usage = row.result.usage
        totals["input"] += usage.input_tokens
        totals["written"] += usage.cache_creation_input_tokens
        totals["read"] += usage.cache_read_input_tokens
        cost += estimate_cost("anthropic", row.result.model, usage.input_tokens, 0,
                              cache_write_tokens=usage.cache_creation_input_tokens,
                              cache_read_tokens=usage.cache_read_input_tokens)
    return cost, totals


def run(quick: bool) -> Section:
    import inference_magics as im
    from inference_magics.backends import anthropic as claude_backend

    rows = 10 if quick else 100
    instruction = "Classify the sentiment of the review below as positive, negative or mixed. " + " ".join(
        f"guideline{i}" for i in range(2000))
    template = instruction + "\n\nReview: {row}"
    items = [f"review number {i}: the film was fine" for i in range(rows)]
    section = Section("prompt_caching", "8. Prompt caching")
    section.setup = (
        f"`im.map(template, {rows} rows, model={MODEL!r}, cache=False)` against the Anthropic peer (own process, "
        "3-token answers), the template a ~2,000-token instruction then `{row}`. **Cached**: as shipped, the "
        "instruction goes out as its own text block marked `cache_control: ephemeral`. **Uncached**: the same map "
        "with marking turned off (`CACHE_MIN_CHARS` raised past the prompt). Input cost from each row's reported "
        "usage at list prices (input 1x, cache write 1.25x, cache read 0.1x), default concurrency (8).")
    with PeerProcess("anthropic", tokens=3) as peer, InProcess(**peer_settings(anthropic=peer)):
        cached = im.map(template, items, model=MODEL, cache=False, progress=False)
        kept = claude_backend.CACHE_MIN_CHARS
        claude_backend.CACHE_MIN_CHARS = 10 ** 9
        try:
            plain = im.map(template, [i + " " for i in items], model=MODEL, cache=False, progress=False)
        finally:
            claude_backend.CACHE_MIN_CHARS = kept
    if cached.failed or plain.failed:
        raise RuntimeError(f"map failed: {[r.error for r in cached.rows + plain.rows if r.error][:3]}")
    ours, used = _input_cost(cached)
    baseline, plain_used = _input_cost(plain)
    figure = ratio(ours, baseline)
    section.add(f"input cost of a {rows}-row map, instruction cached ÷ not cached", f"${ours:.4f}", f"${baseline:.4f}",
                figure, f"≤ {TARGET_RATIO}", figure is not None and figure <= TARGET_RATIO)
    section.raw.append(f"cached: {used['input']} input, {used['written']} written, {used['read']} read tokens")
    section.raw.append(f"not cached: {plain_used['input']} input, {plain_used['written']} written, "
                       f"{plain_used['read']} read tokens")
    section.notes.append("The peer makes a written prefix readable as soon as the writing request arrives; the API "
                         "does so once that response has begun, so there the first concurrent rows (up to 8) may each "
                         "write it at 1.25x — with 8 writes this ratio would be about 0.19.")
    section.headline = f"input cost cached ÷ uncached {figure:.3f} (${ours:.4f} vs ${baseline:.4f})"
    return section
