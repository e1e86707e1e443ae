"""7. Observability: what tracing costs a completion — with the collector down (a closed port) and
with a live OTLP/HTTP receiver — against tracing off."""
from __future__ import annotations

import os

from .common import PROMPT, InProcess, Section, interleaved, median, p90, peer_settings, ratio, spread
from .peer_process import PeerProcess

TARGET_RATIO = 1.05
MODES = ("off", "down", "up")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(quick: bool) -> Section:
    import time

    import inference_magics as im
    from inference_magics import telemetry
    from tests.otlp_receiver import OtlpReceiver

    knobs = dict(tokens=20, first_token_delay=0.02, token_delay=0.001)
    per_round = 5 if quick else 40
    rounds = 1 if quick else 5
    section = Section("observability", "7. Observability")
    section.setup = (
        f"In process, `im.infer()` against an Ollama peer in its own process ({knobs['tokens']} tokens, first after "
        f"{knobs['first_token_delay'] * 1000:.0f} ms, then {knobs['token_delay'] * 1000:.0f} ms apart), {per_round} "
        f"completions per round and mode, {rounds} rounds interleaved (order alternating) after a warm-up. Modes: "
        "tracing **off** (no variable set; nothing imported); tracing on with the collector **down** "
        "(`OTEL_EXPORTER_OTLP_ENDPOINT` at a closed loopback port: every export fails and retries in the background); "
        "tracing on with a live collector **up** (the tests' OTLP/HTTP receiver on loopback, in this process, "
        "decoding every request). Figure: median time per completion, call to return.")
    times = {mode: [] for mode in MODES}
    receiver = OtlpReceiver().__enter__()
    down = f"http://127.0.0.1:{_closed_port()}"
    try:
        with PeerProcess("ollama", **knobs) as peer:
            with InProcess(**peer_settings(peer), INFERENCE_HISTORY="off"):

                def completions(mode: str):
                    def step():
                        for name in telemetry.NAMES:
                            os.environ.pop(name, None)
                        if mode != "off":
                            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = down if mode == "down" else receiver.url
                        for _ in range(per_round):
                            began = time.perf_counter()
                            result = im.infer(PROMPT)
                            times[mode].append(time.perf_counter() - began)
                            if not result.text:
                                raise RuntimeError(f"empty answer in mode {mode}")
                    return step

                for mode in MODES:  # warm-up: imports, the exporter, the connection
                    completions(mode)()
                    times[mode].clear()
                interleaved(rounds, *(completions(mode) for mode in MODES))
                telemetry.flush(2)
                failures = telemetry._pipeline.failures if telemetry._pipeline else None
                for name in telemetry.NAMES:
                    os.environ.pop(name, None)
    finally:
        receiver.__exit__(None, None, None)

    off, down_s, up = (median(times[m]) for m in MODES)
    section.add("tracing on, collector down (closed port) vs tracing off", f"{down_s * 1000:.2f} ms",
                f"{off * 1000:.2f} ms", ratio(down_s, off), f"≤ {TARGET_RATIO}×", down_s / off <= TARGET_RATIO)
    section.add("tracing on, live OTLP/HTTP collector vs tracing off", f"{up * 1000:.2f} ms", f"{off * 1000:.2f} ms",
                ratio(up, off), f"≤ {TARGET_RATIO}×", up / off <= TARGET_RATIO)
    section.add("per-completion overhead, collector down (median difference)", f"{(down_s - off) * 1000:+.2f} ms",
                "—", None)
    for mode in MODES:
        section.raw.append(f"{mode}: {spread(times[mode])}; p90 {p90(times[mode]) * 1000:.2f} ms")
    section.raw.append(f"spans received by the live collector: {len(receiver.spans())} "
                       f"(completions traced while it was up: {len(times['up'])} + warm-up)")
    if failures is not None:
        section.raw.append(f"last pipeline's exports: {failures.sent} sent, {failures.failed} failed")
    section.notes.append(
        "The span is built after the answer has arrived (start, first-token and end times are given), so tracing "
        "adds nothing before the first token; its cost is building one span and queueing it. Export runs in the "
        "BatchSpanProcessor's thread, so a down collector costs the cell only that thread's share of the CPU while "
        "it retries.")
    section.headline = (f"collector down {down_s / off:.3f}× tracing off; live collector {up / off:.3f}× "
                        f"({off * 1000:.1f} ms per completion off)")
    return section
