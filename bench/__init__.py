"""Benchmarks: inference_magics against calling the official clients by hand (and against a
non-streaming cell, which is what jupyter-ai's `%%ai` shows), on loopback peers with a fixed
first-token latency and token rate, and on the embedded local model.

    python -m bench            # every benchmark in one run; writes bench/RESULTS.md (about 25 minutes: a first install and the test suite included)
    python -m bench --quick    # tiny sizes, a few seconds each: keeps the benchmarks working (CI)
    python -m bench ttft load  # only these (prints; --write to write a report of just these)

Benchmarks are not tests: they measure and report; nothing here fails on a missed target.
"""

# the CLI name of each benchmark and its module, in the order they run (local last: it starts
# llama-server, which loads a model)
BENCHMARKS = {
    "ttft": "bench.ttft",
    "throughput": "bench.throughput",
    "load": "bench.load",
    "concurrency": "bench.concurrency",
    "embeddings": "bench.embeddings",
    "observability": "bench.observability",
    "prompt_caching": "bench.prompt_caching",
    "privacy": "bench.privacy",
    "cases": "bench.cases",
    "local": "bench.local",
    "parallel": "bench.parallel",
    # last, and minutes each: a first install from a fresh clone with empty caches, then the test
    # suite from a fresh clone with warm ones (both skipped by --quick)
    "install": "bench.install",
    "suite": "bench.suite",
}
