"""Benchmarks: inference_magics against calling the official clients by hand (and against a
non-streaming cell, which is what jupyter-ai's `%%ai` shows), on loopback peers with a fixed
first-token latency and token rate, and on the embedded local model.

    python -m bench            # every benchmark (~10 minutes on 2 cores); writes bench/RESULTS.md
    python -m bench --quick    # tiny sizes, a few seconds each: keeps the benchmarks working (CI)
    python -m bench ttft load  # only these

Benchmarks are not tests: they measure and report; nothing here fails on a missed target.
"""

# the CLI name of each benchmark, its module, in the order they run (local last: it leaves a
# llama-server using memory until the process ends)
BENCHMARKS = {
    "ttft": "bench.ttft",
    "throughput": "bench.throughput",
    "load": "bench.load",
    "concurrency": "bench.concurrency",
    "embeddings": "bench.embeddings",
    "local": "bench.local",
}
