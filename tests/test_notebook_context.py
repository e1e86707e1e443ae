"""The notebook as context (issue 16) in a real ipykernel: --fix, --insert, --continue/--thread,
{var} objects rendered within INFERENCE_CONTEXT_TOKENS, --figure; and the rendering on its own."""
import numpy as np
import pandas as pd

from inference_magics import threads
from inference_magics.conversation import trim_to_context
from inference_magics.last_error import describe
from inference_magics.object_context import Renderer

FIXED = "The divisor is zero.\n\n```python\ntotal = 10\ncount = 0\nprint(total / count if count else 0)\n```\n"


def chats(ollama):
    return [r.body for r in ollama.requests if r.path == "/api/chat"]


def next_inputs(run):
    return [p for p in run.reply.get("payload", []) if p.get("source") == "set_next_input"]


# ---------------------------------------------------------------- in a real kernel

def test_fix_after_a_zero_division_sends_the_error_and_offers_a_cell(kernel, peers_reset):
    ollama, claude = peers_reset
    failed = kernel.run("total = 10\ncount = 0\nprint(total / count)")
    assert failed.reply["status"] == "error" and failed.reply["ename"] == "ZeroDivisionError"
    ollama.set(text=FIXED)
    run = kernel.run("%%infer --fix\nwhy only on Mondays?")  # a line ending in ? asks IPython for help
    assert run.reply["status"] == "ok", run.errors
    sent = chats(ollama)[-1]["messages"][-1]["content"]
    assert "ZeroDivisionError: division by zero" in sent and "why only on Mondays?" in sent
    assert "print(total / count)" in sent and "The failing cell, line 3" in sent  # the failing cell and its frame
    assert chats(ollama)[-1]["model"] == "qwen2.5-coder:7b"  # a code task, kept on this machine
    assert not [r for r in claude.requests if r.path == "/v1/messages"]
    offered = next_inputs(run)
    assert offered == [{"source": "set_next_input", "text": "total = 10\ncount = 0\nprint(total / count if count else 0)",
                        "replace": False}]
    assert "fixing ZeroDivisionError in cell [" in run.stdout
    # it was offered, not run: the kernel never executed it
    assert kernel.run("print('count' in dir(), total)").stdout.strip() == "True 10"


def test_our_own_errors_do_not_replace_the_last_error(kernel, peers_reset):
    ollama, _ = peers_reset
    kernel.run("{}['missing']")
    kernel.run("%infer --model")  # a usage error of ours
    run = kernel.run("%infer --fix")
    assert run.reply["status"] == "ok", run.errors
    assert "KeyError: 'missing'" in chats(ollama)[-1]["messages"][-1]["content"]


def test_fix_of_a_private_traceback_stays_local_even_when_claude_is_named(kernel, peers_reset):
    _, claude = peers_reset
    kernel.run("password = 'hunter2-Xy9!zz'\nraise ValueError(f'password={password} rejected')")
    run = kernel.run("%infer --fix --model claude-haiku-4-5")
    assert run.reply["status"] == "error" and "PrivacyError" in run.reply["ename"]
    assert "hunter2" not in run.everything()
    assert not [r for r in claude.requests if r.path == "/v1/messages"]


def test_insert_offers_the_code_and_says_so_when_there_is_none(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(text="Use:\n\n```python\nimport math\nprint(math.tau)\n```")
    run = kernel.run("%%infer --insert\nhow do I print tau?")
    assert [p["text"] for p in next_inputs(run)] == ["import math\nprint(math.tau)"]
    assert kernel.run("_infer.code").reply["status"] == "ok"
    ollama.set(text="Tau is about 6.283.")
    run = kernel.run("%%infer --insert\nwhat is tau?")
    assert not next_inputs(run) and "no code to insert" in run.stdout


def test_continue_sends_the_earlier_turn_and_threads_are_apart(kernel, peers_reset):
    ollama, _ = peers_reset
    kernel.run("%infer --reset")
    ollama.set(text="Paris is the capital.")
    kernel.run("%%infer --continue\nWhat is the capital of France?")
    ollama.set(text="About 2.1 million.")
    run = kernel.run("%%infer -c\nAnd its population?")
    assert run.reply["status"] == "ok", run.errors
    assert [(m["role"], m["content"].strip()) for m in chats(ollama)[-1]["messages"]] == [
        ("user", "What is the capital of France?"), ("assistant", "Paris is the capital."),
        ("user", "And its population?")]
    kernel.run("%%infer --thread other\nSomething else")
    assert [m["content"].strip() for m in chats(ollama)[-1]["messages"]] == ["Something else"]
    listing = kernel.run("%infer_thread").stdout
    assert "default: 2 exchanges" in listing and "other: 1 exchange" in listing
    assert "[3] user: And its population?" in kernel.run("%infer_thread default").stdout
    assert "cleared (4 messages)" in kernel.run("%infer --thread default --reset").stdout
    kernel.run("%%infer -c\nfresh start")
    assert [m["content"].strip() for m in chats(ollama)[-1]["messages"]] == ["fresh start"]


def test_a_fix_in_a_thread_works_and_the_thread_stays_on_this_machine(kernel, peers_reset):
    ollama, claude = peers_reset
    kernel.run("%infer --thread fixing --reset")
    kernel.run("rows = [1, 2]\nprint(rows[5])")
    ollama.set(text=FIXED)
    run = kernel.run("%infer --fix --thread fixing")  # before: TypeError from api.route(keep_local=...)
    assert run.reply["status"] == "ok", run.errors
    assert "IndexError" in chats(ollama)[-1]["messages"][-1]["content"]
    # a follow-up the router would send to Claude (complex reasoning, a key is set) carries the failing
    # cell and its traceback: it stays on this machine, as the --fix turn did
    run = kernel.run("%%infer --thread fixing\nWhat are the trade-offs of this fix?")
    assert run.reply["status"] == "ok", run.errors
    assert not [r for r in claude.requests if r.path == "/v1/messages"]
    assert "print(rows[5])" in chats(ollama)[-1]["messages"][0]["content"]
    kernel.run("%infer --thread fixing --reset")
    kernel.run("%%infer --thread fixing\nWhat are the trade-offs of a design review?")  # a fresh thread: routed as usual
    assert [r for r in claude.requests if r.path == "/v1/messages"]


def test_a_million_row_dataframe_arrives_within_the_budget(kernel, peers_reset):
    ollama, _ = peers_reset
    kernel.run("import numpy as np, pandas as pd\n"
               "df = pd.DataFrame({'order_id': np.arange(1_000_000), 'amount': np.arange(1_000_000) * 0.5,"
               " 'city': np.where(np.arange(1_000_000) % 2, 'Lyon', 'Oslo')})")
    run = kernel.run("%%infer\nWhat stands out in {df}?")
    assert run.reply["status"] == "ok", run.errors
    sent = chats(ollama)[-1]["messages"][-1]["content"]
    assert len(sent) < 2000 * 4  # INFERENCE_CONTEXT_TOKENS' default, at 4 characters a token
    assert "DataFrame: 1,000,000 rows × 3 columns" in sent
    assert "order_id (int64), amount (float64), city" in sent and "| 999999 |" in sent
    assert "999,990 of 1,000,000 rows not shown" in sent
    assert "999,990 of 1,000,000 rows left out" in run.stdout  # the cell says what was shortened


def test_figure_goes_to_a_vision_model_and_a_text_model_is_one_line(kernel, peers_reset):
    from tests.peers.ollama_peer import DEFAULT_MODELS, model_entry

    ollama, _ = peers_reset
    kernel.run("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])")
    run = kernel.run("%infer --figure what does the chart show")
    assert run.reply["status"] == "error" and "cannot see images" in run.reply["evalue"]
    assert len(run.errors[0]["traceback"]) <= 2  # one line, not a traceback
    ollama.set(models=DEFAULT_MODELS + (model_entry("gemma3:4b", family="gemma3", vision=True),))
    run = kernel.run("%infer --figure --model gemma3:4b what does the chart show")
    assert run.reply["status"] == "ok", run.errors
    assert chats(ollama)[-1]["messages"][-1]["images"][0].startswith("iVBORw0KGgo")  # a PNG, base64
    run = kernel.run("%infer --fix")  # a one-line error of ours is not the last error to fix
    assert "cannot see images" not in chats(ollama)[-1]["messages"][-1]["content"]


def test_fix_with_no_error_yet_is_one_line(tmp_path, ollama_server, claude_server):
    from tests.conftest import peer_environment
    from tests.kernel_harness import Kernel

    fresh = Kernel({**peer_environment(ollama_server.url, claude_server),
                    "INFERENCE_DATA_DIR": str(tmp_path / "data")}, cwd=str(tmp_path))
    try:
        fresh.run("%load_ext inference_magics")
        run = fresh.run("%infer --fix")
        assert run.reply["status"] == "error" and "no cell has failed in this kernel yet" in run.reply["evalue"]
    finally:
        fresh.shutdown()


# ---------------------------------------------------------------- rendering, threads, tracebacks in process

def test_short_values_render_as_str_and_long_ones_say_what_was_cut():
    renderer = Renderer(100)
    assert renderer.render("xs", [1, 2, 3]) == "[1, 2, 3]" and renderer.render("d", {"a": 1}) == "{'a': 1}"
    assert renderer.render("s", "short") == "short" and not renderer.notes
    long_list = renderer.render("xs", list(range(100_000)))
    assert long_list.startswith("[0, 1, 2") and long_list.endswith("more]") and len(long_list) <= 400
    long_text = renderer.render("s", "x" * 10_000)
    assert long_text.endswith("… 9,600 more characters")
    assert renderer.notes[0].startswith("{xs}: list of 100,000 elements") and "{s}: 9,600 of 10,000" in renderer.notes[1]


def test_series_and_arrays_show_shape_dtype_and_a_preview():
    renderer = Renderer(500)
    series = renderer.render("s", pd.Series(np.arange(1000), name="n"))
    assert series.startswith("Series 'n': length 1,000, dtype int64") and "999: 999" in series
    array = renderer.render("a", np.zeros((300, 4)))
    assert array.startswith("ndarray: shape (300, 4), dtype float64") and "..." in array
    assert len(array) < 500 * 4


def test_a_wide_frame_keeps_within_the_budget():
    wide = pd.DataFrame(np.ones((50, 400)), columns=[f"column_{i}" for i in range(400)])
    renderer = Renderer(1000)
    text = renderer.render("wide", wide)
    assert len(text) <= 1000 * 4 and text.startswith("DataFrame: 50 rows × 400 columns")
    assert "380 of 400 columns" in renderer.notes[0]


def test_thread_trimming_is_the_chats():
    threads.reset("trim")
    for i in range(50):
        threads.add_exchange("trim", f"question {i} " + "x" * 400, f"answer {i} " + "y" * 400)
    from inference_magics.settings import load

    kept, dropped = threads.fitted("trim", "next", "ollama", load())
    assert (kept, dropped) == trim_to_context(threads.messages("trim"), "next", 4096)
    assert dropped and kept[0]["role"] == "user"
    threads.add_exchange("trim", "failed", "   ")  # an empty answer is not kept
    assert threads.messages("trim")[-1]["content"].startswith("answer 49")
    threads.reset("trim")


def test_a_traceback_keeps_notebook_frames_and_summarises_library_ones():
    code = compile("import json\njson.loads('{bad')\n", "/tmp/ipykernel_42/123.py", "exec")
    try:
        exec(code, {})
    except ValueError as exc:
        error = describe(exc, "import json\njson.loads('{bad')", 7, {"/tmp/ipykernel_42/123.py": 7})
    assert error.type_name == "JSONDecodeError" and error.headline().startswith("JSONDecodeError in cell [7]")
    assert error.frames[0].startswith("  The failing cell, line 2, in <module>")
    assert error.library_frames >= 1 and "json/decoder.py:" in error.raised_in
    prompt = error.prompt()
    assert "json.loads('{bad')" in prompt and "library code, raised in " in prompt


def test_context_flags_with_a_workflow_or_map_are_one_line(kernel, peers_reset):
    run = kernel.run("%%infer --workflow review --figure\nx = 1")
    assert run.reply["status"] == "error" and "--figure does not go with --workflow review — it goes with a prompt" in run.reply["evalue"]
    run = kernel.run("items = [1]\n%infer --map items --insert -- say {row}")
    assert run.reply["status"] == "error" and "--insert does not go with --map — it goes with a prompt" in run.reply["evalue"]
