"""Load: many streams at once never mix; a thousand cells leak nothing; a huge stream stays bounded."""
import json

from inference_magics import experiments
from inference_magics.notebook.widget import ChatWidget
from tests.conftest import wait_until


def test_eight_concurrent_streams_never_mix(peers):
    ollama, _ = peers
    ollama.set(echo=True, token_delay=0.01)
    widgets = [ChatWidget("llama3.2:3b") for _ in range(4)]
    for i, widget in enumerate(widgets):
        widget.ask(f"widget {i} says " + " ".join(f"w{i}x{j}" for j in range(30)))
    done = experiments.experiment("experiment says " + " ".join(f"e{j}" for j in range(30)),
                                ["llama3.2", "llama3.2:3b", "qwen2.5-coder:7b", "llama3.2:latest"])
    assert wait_until(lambda: not any(w.busy for w in widgets), timeout=20)
    for i, widget in enumerate(widgets):
        asked, answer = widget.history[0]["content"], widget.history[1]["content"]
        assert answer == f"echo: {asked}"
        widget._loader.join(timeout=10)
    expected = "echo: experiment says " + " ".join(f"e{j}" for j in range(30))
    assert all(run.text == expected for run in done.runs)


PROBE = ("import os, threading, resource\n"
         "def probe():\n"
         "    return {'threads': threading.active_count(), 'fds': len(os.listdir('/proc/self/fd')),\n"
         "            'rss_mb': int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20}\n")


def test_a_thousand_cells_leak_no_threads_sockets_or_memory(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=20)
    kernel.run(PROBE)
    warm = kernel.run("for _ in range(50):\n    get_ipython().run_cell_magic('infer', '', 'hello')\n"
                      "import json; print(json.dumps(probe()))", timeout=120)
    before = json.loads(warm.stdout.strip().splitlines()[-1])
    run = kernel.run("for _ in range(1000):\n    get_ipython().run_cell_magic('infer', '', 'hello')\n"
                     "print(json.dumps(probe()))", timeout=600)
    after = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\n1,000 %%infer cells: threads {before['threads']} -> {after['threads']}, open files "
          f"{before['fds']} -> {after['fds']}, resident memory {before['rss_mb']:.1f} -> {after['rss_mb']:.1f} MB")
    assert run.reply["status"] == "ok"
    assert after["threads"] <= before["threads"] + 1 and after["fds"] <= before["fds"] + 5
    assert after["rss_mb"] - before["rss_mb"] < 60  # bounded (the kernel keeps every output it sent)
    assert len([r for r in ollama.requests if r.path == "/api/chat"]) == 1050


def test_a_100k_token_stream_is_bounded(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=100_000)
    kernel.run(PROBE)
    run = kernel.run("%%infer\nwrite forever", timeout=300)
    assert run.reply["status"] == "ok" and run.final_markdown.startswith(ollama.expected_text())
    seconds = run.messages[-1][0] - run.messages[0][0]
    assert len(run.displays) <= 10 * seconds + 3
    rss = json.loads(kernel.run("import json; print(json.dumps(probe()))").stdout)["rss_mb"]
    print(f"\n100,000 tokens in {seconds:.1f} s: {len(run.displays)} display messages, kernel RSS {rss:.0f} MB")
    assert rss < 600
