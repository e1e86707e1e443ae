"""7. Observability: what tracing costs a completion — with the collector down (a closed port) and
with a live OTLP/HTTP receiver — against tracing off."""
from __future__ import annotations

import os

from .common import PROMPT, InProcess, Section, interleaved, median, peer_settings, ratio, spread
from .peer_process import PeerProcess

TARGET_RATIO = 1.05


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
    block = 5 if quick else 10
    rounds = 1 if quick else 10
    section = Section("observability", "7. Observability")
    section.setup = (
        f"In process, `im.infer()` against an Ollama peer in its own process ({knobs['tokens']} tokens, first after "
        f"{knobs['first_token_delay'] * 1000:.0f} ms, then {knobs['token_delay'] * 1000:.0f} ms apart). Two "
        "comparisons, each against tracing **off** (`INFERENCE_OTEL=off`: nothing is traced): tracing on with the "
        "collector **down** (`OTEL_EXPORTER_OTLP_ENDPOINT` at a closed loopback port: every export fails and retries "
        "in the background), and tracing on with a live collector **up** (the tests' OTLP/HTTP receiver on loopback, "
        f"in this process, decoding every request). Blocks of {block} completions, on and off alternating, "
        f"{rounds} rounds (the order alternating each round) after a warm-up; one exporter per comparison, so no "
        "block pays for building it. Figure: median time per completion, call to return.")
    times = {key: [] for key in ("down", "off (down)", "up", "off (up)", "warm-up")}
    span_cost = {}
    receiver = OtlpReceiver().__enter__()
    endpoints = {"down": f"http://127.0.0.1:{_closed_port()}", "up": receiver.url}
    failures = {}
    try:
        with PeerProcess("ollama", **knobs) as peer:
            with InProcess(**peer_settings(peer), INFERENCE_HISTORY="off"):

                def completions(mode: str, into: str):
                    def step():
                        os.environ["INFERENCE_OTEL"] = "off" if mode == "off" else "on"
                        for _ in range(block):
                            began = time.perf_counter()
                            result = im.infer(PROMPT)
                            times[into].append(time.perf_counter() - began)
                            if not result.text:
                                raise RuntimeError(f"empty answer in mode {mode}")
                    return step

                for mode in ("down", "up"):
                    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoints[mode]
                    completions(mode, "warm-up")(), completions("off", "warm-up")()
                    interleaved(rounds, completions(mode, mode), completions("off", f"off ({mode})"))
                    os.environ["INFERENCE_OTEL"] = "on"
                    span_cost[mode] = _span_cost(telemetry, 100 if quick else 1000)
                    telemetry.flush(2)
                    pipeline = telemetry._pipeline
                    failures[mode] = (pipeline.failures.sent, pipeline.failures.failed)
                for name in telemetry.NAMES:
                    os.environ.pop(name, None)
    finally:
        receiver.__exit__(None, None, None)
    times.pop("warm-up", None)

    rows = []
    for mode, label in (("down", "collector down (closed port)"), ("up", "live OTLP/HTTP collector")):
        on, off = median(times[mode]), median(times[f"off ({mode})"])
        rows.append((mode, on, off))
        section.add(f"tracing on, {label} vs tracing off: one completion", f"{on * 1000:.2f} ms", f"{off * 1000:.2f} ms",
                    ratio(on, off), f"≤ {TARGET_RATIO}×", on / off <= TARGET_RATIO)
    for mode in ("down", "up"):
        section.add(f"recording one completion's span (`telemetry.completion`), collector {mode}",
                    f"{span_cost[mode] * 1e6:.0f} µs", "—", None)
    for key, values in times.items():
        section.raw.append(f"{key}: {spread(values)}")
    section.raw.append(f"spans received by the live collector: {len(receiver.spans())} "
                       f"(completions traced while it was up: {len(times['up'])} + warm-up)")
    for mode, (sent, failed) in failures.items():
        section.raw.append(f"collector {mode}: {sent} exports sent, {failed} failed")
    section.notes.append(
        "The span is built after the answer has arrived (start, first-token and end times are given), so tracing "
        "adds nothing before the first token; its cost is building one span and queueing it. Export runs in the "
        "BatchSpanProcessor's thread, so a down collector costs the cell only that thread's share of the CPU while "
        "it retries. The span cost with the collector up includes the receiver decoding those same spans in this "
        "process (it competes for the GIL); a real collector runs elsewhere.")
    (_, down_on, down_off), (_, up_on, up_off) = rows
    section.headline = (f"collector down {down_on / down_off:.3f}× tracing off; live collector {up_on / up_off:.3f}×; "
                        f"one span {span_cost['down'] * 1e6:.0f} µs")
    return section


def _span_cost(telemetry, count: int) -> float:
    """Seconds to record one finished completion's span (the only work tracing adds to a cell)."""
    import time

    from inference_magics.api import Result
    from inference_magics.backends.base import Usage
    from inference_magics.routing import Route

    result = Result(text="word " * 20, backend="ollama", model="llama3.2:latest", stop_reason="stop",
                    route=Route("ollama", "llama3.2:latest", "default backend"), usage=Usage(6, 20))
    result.metrics.ttft_s = 0.02
    parent = telemetry.parent()
    began = time.perf_counter()
    for _ in range(count):
        now = time.perf_counter()
        telemetry.completion(result, parent=parent, started=now - 0.05, ended=now, turns=({"role": "user",
                             "content": "hello"},))
    return (time.perf_counter() - began) / count
