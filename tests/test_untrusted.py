"""Model output is untrusted (issue 22): the renderer alone, then every surface of a real kernel
fed by hostile peers. Every published bundle is parsed (tests/hostile.py), never searched."""
from __future__ import annotations

import json
import re

import pytest

from inference_magics import untrusted
from tests import hostile
from tests.conftest import peer_environment, wait_until

BEACON = "http://127.0.0.1:9"  # for the renderer alone; kernel tests use the hostile peer's own address
FAMILIES = hostile.payload_families(BEACON)


# --- the renderer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_payload_family_renders_inert(family):
    text = FAMILIES[family]
    hostile.assert_inert(untrusted.bundle(untrusted.markdown_html(text), text), family)


def test_markdown_survives_the_hostile_answer():
    shown = untrusted.markdown_html(hostile.hostile_answer(BEACON))
    tags = {tag for tag, _ in hostile.elements(shown)}
    assert {"h2", "ul", "li", "strong", "em", "table", "th", "td", "pre", "code"} <= tags
    assert '<code class="language-python">' in shown
    links = [attrs["href"] for tag, attrs in hostile.elements(shown) if tag == "a"]
    assert "https://example.com/page" in links
    assert all(link.startswith(("http://", "https://", "mailto:")) for link in links)
    assert not hostile.problems(shown)


@pytest.mark.parametrize("url, live", [
    ("https://example.com/x", True), ("http://example.com", True), ("mailto:a@example.com", True),
    ("javascript:alert(1)", False), ("JaVaScRiPt:alert(1)", False), (" javascript:alert(1)", False),
    ("data:text/html,<script>", False), ("vbscript:x", False), ("file:///etc/passwd", False),
    ("/api/contents/x", False), ("files/x.txt", False), ("#top", False), ("//evil.example/x", False),
    ("http:evil", False),
])
def test_only_absolute_http_https_and_mailto_links_are_live(url, live):
    assert untrusted.is_live_link(url) is live
    shown = untrusted.markdown_html(f"[x]({url.replace(' ', '%20')})")
    assert (("<a " in shown) is live), shown


def test_images_never_load_they_become_links_or_text():
    shown = untrusted.markdown_html(f"![the alt]({BEACON}/b.png) ![d](data:image/png;base64,AAAA)")
    parsed = hostile.elements(shown)
    assert [(tag, attrs["href"]) for tag, attrs in parsed if tag == "a"] == [("a", f"{BEACON}/b.png")]
    assert "the alt" in hostile.visible_text(shown) and "data:image/png" in hostile.visible_text(shown)
    assert not any(tag == "img" for tag, _ in parsed)


def test_long_lines_wrap_and_code_blocks_scroll_in_their_own_box():
    shown = untrusted.bundle(untrusted.markdown_html(FAMILIES["very long line"]), "")["text/html"]
    styles = [(tag, attrs.get("style", "")) for tag, attrs in hostile.elements(shown)]
    assert "overflow-wrap:anywhere" in styles[0][1]  # our wrapper, around everything
    assert [s for tag, s in styles if tag == "pre"] and all("overflow-x:auto" in s for tag, s in styles if tag == "pre")


def test_footers_and_labels_are_text_never_markup():
    for text in (hostile.HOSTILE_MODEL_NAME, hostile.HOSTILE_ERROR):
        shown = untrusted.note_html(text)
        assert not hostile.problems(shown) and [tag for tag, _ in hostile.elements(shown)] == ["div"]
        assert hostile.visible_text(shown) == text



# JupyterLab typesets text/html outputs with MathJax, whose safe mode keeps file: and relative links
MATH_LINKS = r"$\href{file:///etc/passwd}{f}$ $\href{/api/contents}{r}$ $\mmlToken{mi}[href=/lab]{m}$"


def test_mathjax_skips_every_bundle_that_holds_untrusted_text():
    from types import SimpleNamespace

    from inference_magics.notebook import tables

    health = {MATH_LINKS: SimpleNamespace(ok=False, latency_s=None, detail=MATH_LINKS)}
    bundles = [untrusted.bundle(untrusted.markdown_html(MATH_LINKS), MATH_LINKS),
               untrusted.bundle(untrusted.note_html(MATH_LINKS), MATH_LINKS),
               tables.bundle(["model"], [[MATH_LINKS]], MATH_LINKS), tables.health_bundle(health)]
    for shown in (b["text/html"] for b in bundles):
        first_tag, first_attrs = hostile.elements(shown)[0]
        assert shown.startswith(f"<{first_tag} ") and shown.endswith(f"</{first_tag}>"), shown[:80]  # around it all
        assert {"mathjax_ignore", "tex2jax_ignore"} <= set(first_attrs.get("class", "").split()), shown[:120]

LEGIT = ("# Title\n\nA paragraph with **bold**.\n\n```python\nx = 1\n\n\ny = 2\n```\n\nText after.\n\n"
         "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~~\nfence\n\n~~~\n\n> quote\n\n1. loose\n\n2. list\n\n"
         "   indented\n- tight\n- list\n\n- loose again\n\n    indented code\n\n***\n\nEnd.\n")


def test_streaming_draws_equal_a_full_render_of_the_same_text():
    """The cached blocks never change what a draw shows (fences with blank lines included)."""
    streaming = untrusted.StreamingMarkdown()
    for end in range(1, len(LEGIT) + 1):
        text = LEGIT[:end]
        assert streaming.render(text) == untrusted.markdown_html(untrusted.without_cut_off_heading(text)), end


def test_link_references_are_the_one_case_for_a_full_final_render():
    text = "See [the docs][d].\n\nMore.\n\n[d]: https://example.com\n"
    assert not untrusted.StreamingMarkdown.exact(text) and untrusted.StreamingMarkdown.exact(LEGIT)
    streaming = untrusted.StreamingMarkdown()
    for end in range(1, len(text) + 1):
        streaming.render(text[:end])
    final = render_result(text, streaming)
    assert '<a href="https://example.com"' in final and final.count("<p>") == 2


def render_result(text, streaming):
    from inference_magics.api import Result
    from inference_magics.notebook.render import result_html

    return result_html(Result(text=text, backend="ollama", model="m"), streaming)


def test_every_streaming_draw_of_the_hostile_answer_is_inert():
    answer = hostile.hostile_answer(BEACON)
    streaming = untrusted.StreamingMarkdown()
    for end in list(range(1, len(answer), 97)) + [len(answer)]:
        found = hostile.problems(streaming.render(answer[:end]))
        assert not found, (end, found)


def test_a_cut_off_heading_leaves_no_empty_heading():
    assert "<h3" not in untrusted.markdown_html(untrusted.without_cut_off_heading("Some text\n###"))
    assert "<h3" not in untrusted.StreamingMarkdown().render("Some text\n\n### ")
    assert "<h3>Kept</h3>" in untrusted.StreamingMarkdown().render("### Kept")


# --- every surface of a real kernel ------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_kernel(ollama_server, claude_server, openai_server, tmp_path_factory):
    """A kernel whose OpenAI-compatible server and Ollama are the (hostile) loopback peers."""
    from tests.kernel_harness import Kernel

    home = tmp_path_factory.mktemp("hostile-kernel")
    env = {**peer_environment(ollama_server.url, claude_server), "INFERENCE_DATA_DIR": str(home / "data"),
           "OPENAI_BASE_URL": openai_server.base_url}
    k = Kernel(env, cwd=str(home))
    k.run("%load_ext inference_magics\nimport inference_magics as im")
    yield k
    k.shutdown()


@pytest.fixture
def hostile_peers(ollama_server, openai_server):
    ollama_server.reset()
    openai_server.reset()
    answer = hostile.hostile_answer(openai_server.url)
    openai_server.set(text=answer, reasoning=hostile.hostile_thinking(openai_server.url),
                      reply_model=hostile.HOSTILE_MODEL_NAME, error_text=hostile.HOSTILE_ERROR)
    ollama_server.set(text=answer, thinking=hostile.hostile_thinking(openai_server.url),
                      error_text=hostile.HOSTILE_ERROR)
    yield ollama_server, openai_server
    ollama_server.reset()
    openai_server.reset()


def bundles(run) -> list[dict]:
    return [m["content"]["data"] for m in run.of_type("display_data", "update_display_data", "execute_result")]


def assert_all_inert(run, where: str) -> list[dict]:
    shown = bundles(run)
    assert shown, f"{where}: nothing was displayed"
    for i, data in enumerate(shown):
        hostile.assert_inert(data, f"{where}, display {i + 1} of {len(shown)}")
    return shown


def assert_error_lines_are_plain(run) -> None:
    for error in run.errors:
        for line in error["traceback"]:
            escapes = re.findall(r"\x1b\S{0,4}", line)
            assert all(e in ("\x1b[31m", "\x1b[33m", "\x1b[0m") for e in escapes), escapes
            assert "\x07" not in line and "\x1b]" not in line


def test_a_streamed_answer_with_hostile_text_thinking_and_model_name(hostile_kernel, hostile_peers):
    _, openai = hostile_peers
    openai.set(token_delay=0.002)
    run = hostile_kernel.run("%%infer --backend openai\nsummarize the document")
    assert run.reply["status"] == "ok", run.errors
    shown = assert_all_inert(run, "%%infer streamed")
    assert len(shown) >= 3  # the waiting line, partial draws, the final view
    final = shown[-1]["text/html"]
    text = hostile.visible_text(final)
    assert hostile.HOSTILE_MODEL_NAME in text  # the server's model name is shown, as text
    assert "<script>window.__pwned=1</script>" in text  # the payloads are visible, as text
    assert "<details>" in final and "Thinking" in text  # the hostile thinking, folded and inert
    assert not [r for r in openai.requests if "beacon" in r.path]


def test_no_stream_json_format_and_result_reprs(hostile_kernel, hostile_peers):
    whole = hostile_kernel.run("%%infer --backend openai --no-stream\nhi")
    assert whole.reply["status"] == "ok"
    assert_all_inert(whole, "--no-stream")
    not_json = hostile_kernel.run("%%infer --backend openai --format json\nhi")
    assert not_json.reply["status"] == "error" and "not valid JSON" in "".join(not_json.errors[0]["traceback"])
    assert_all_inert(not_json, "--format json, a non-JSON answer")
    shown = hostile_kernel.run("_infer")
    assert "text/html" in assert_all_inert(shown, "_infer")[0]
    direct = hostile_kernel.run("im.infer('hi', backend='openai')")
    assert_all_inert(direct, "im.infer(...) as a cell's value")


def test_an_error_mid_stream_with_a_hostile_error_text(hostile_kernel, hostile_peers):
    ollama, _ = hostile_peers
    ollama.set(fault="error_mid_stream", fault_after=40)
    run = hostile_kernel.run("%%infer\nhi")
    assert run.reply["status"] == "error"
    assert_all_inert(run, "an answer cut by an error")
    assert_error_lines_are_plain(run)
    assert "<script>window.__pwned=1</script>" in run.errors[0]["traceback"][0]  # quoted, as plain text


def test_thinking_while_it_streams(hostile_kernel, hostile_peers):
    ollama, _ = hostile_peers
    ollama.set(token_delay=0.05, text="short answer")
    run = hostile_kernel.run("%%infer qwen3:4b\nwhy?")
    assert run.reply["status"] == "ok"
    shown = assert_all_inert(run, "thinking")
    assert any("thinking…" in data["text/plain"] for data in shown)


def test_experiment_columns_history_and_map_tables(hostile_kernel, hostile_peers):
    ollama, openai = hostile_peers
    ollama.set(fault="error_mid_stream", fault_after=5)  # one column fails with the hostile error text
    run = hostile_kernel.run("%%experiment --models openai,llama3.2\ncompare")
    assert run.reply["status"] == "ok", run.errors
    shown = assert_all_inert(run, "%%experiment")
    columns = [d["text/html"] for d in shown if "display:flex" in d.get("text/html", "")]
    assert "<h2>" in columns[-1] and "<table>" in columns[-1]  # Markdown, rendered as it streams
    assert hostile.HOSTILE_ERROR.replace("\x1b", "").replace("\x07", "") in hostile.visible_text(columns[-1])
    history = hostile_kernel.run("%infer_history --limit 5")
    assert_all_inert(history, "%infer_history")
    mapped = hostile_kernel.run("items = ['a', 'b']\n%infer --map items --backend openai -- Say {row}")
    assert mapped.reply["status"] == "ok", mapped.errors
    assert_all_inert(mapped, "--map table")
    explain = hostile_kernel.run("%%infer --explain --backend openai --model '[x](javascript:alert(1))'\nhi")
    assert_all_inert(explain, "--explain")
    assert not [r for r in openai.requests if "beacon" in r.path]


def test_the_chat_transcript_is_inert_while_streaming_and_after(hostile_kernel, hostile_peers):
    _, openai = hostile_peers
    openai.set(token_delay=0.001)
    comm_id = hostile_kernel.run("w = %chat --backend openai\nprint(w.model_id)").stdout.strip()
    hostile_kernel.send_comm(comm_id, {"type": "send", "text": "hi"})
    states = hostile_kernel.widget_states(comm_id, lambda s: any(x.get("busy") is False for x in s), timeout=60)
    transcripts = [s["transcript_html"] for s in states if "transcript_html" in s]
    assert len(transcripts) >= 2
    for i, transcript in enumerate(transcripts):
        found = hostile.problems(transcript)
        assert not found, (i, found[:5])
    assert "im-meta" in transcripts[-1] and hostile.HOSTILE_MODEL_NAME in hostile.visible_text(transcripts[-1])
    assert wait_until(lambda: not hostile_kernel.run("print(w.busy)").stdout.strip() == "True", timeout=5)


@pytest.fixture
def hostile_names(hostile_peers, claude_server):
    """Model names, versions and error texts from every peer are hostile too."""
    ollama, openai = hostile_peers
    from tests.peers.ollama_peer import DEFAULT_MODELS, model_entry

    name = hostile.HOSTILE_MODEL_NAME
    ollama.set(models=list(DEFAULT_MODELS) + [model_entry("evil:latest", family=name, parameter_size=name,
                                                          quantization_level=name)], version=name)
    openai.set(models=["gemma-3-270m", name])
    claude_server.reset()
    claude_server.set(models=[{"type": "model", "id": PRICED_HOSTILE, "display_name": name,
                               "created_at": "2026-02-17T00:00:00Z"}], text=hostile.hostile_answer(openai.url))
    yield ollama, openai, claude_server
    claude_server.reset()


# a priced Claude id (its family is in the price list) as a proxy or gateway may report it
PRICED_HOSTILE = "claude-sonnet-4-6 $\\href{/api/contents}{spend}$"


def test_listings_health_typed_answers_tool_calls_and_embeddings(hostile_kernel, hostile_names):
    ollama, openai, _ = hostile_names
    for code in ("%models", "%infer_health", "%embed --backend openai hello",
                 "docs = ['a', 'b']\n%embed -v docs --backend openai --similar-to q"):
        run = hostile_kernel.run(code)
        assert run.reply["status"] == "ok", (code, run.errors)
        assert_all_inert(run, code)
    listed = hostile_kernel.run("%models")
    assert hostile.HOSTILE_MODEL_NAME in hostile.visible_text(bundles(listed)[-1]["text/html"])
    hostile_kernel.run("from pydantic import BaseModel\nclass Fields(BaseModel):\n    name: str\n"
                       "def lookup(x: str) -> str:\n    'Look x up.'\n    return x\n")
    openai.set(text=json.dumps({"name": hostile.hostile_answer(openai.url)}))
    typed = hostile_kernel.run("%%infer --backend openai --schema Fields\nFill it in.")
    assert typed.reply["status"] == "ok", typed.errors
    assert_all_inert(typed, "a typed answer")
    openai.set(text=None, tool_calls=[{"name": "lookup", "arguments": {"x": hostile.HOSTILE_MODEL_NAME}}])
    tools = hostile_kernel.run("%%infer --backend openai --tools lookup\nLook it up.")
    assert tools.reply["status"] == "ok", tools.errors
    assert_all_inert(tools, "tool calls")
    assert not [r for r in openai.requests if "beacon" in r.path]


def test_infer_cost_charts_a_model_name_that_reads_as_mathematics(hostile_kernel, hostile_names):
    """matplotlib reads `$…$` in a legend label as mathematics: an unknown command failed the chart."""
    answered = hostile_kernel.run(f"%%infer --backend anthropic --model '{PRICED_HOSTILE}'\nhi")
    assert answered.reply["status"] == "ok", answered.errors
    run = hostile_kernel.run("%infer_cost")
    assert run.reply["status"] == "ok", run.errors[0]["traceback"][-1][:300] if run.errors else run.reply
    shown = assert_all_inert(run, "%infer_cost")
    assert any("image/png" in data for data in shown)
    assert PRICED_HOSTILE in hostile.visible_text(shown[0]["text/html"])


# what the checker must see as live (each was missed by an earlier, looser check)
LEVERS = {
    "command linker": '<div class="mathjax_ignore"><span data-commandlinker-command="terminal:create-new">x</span></div>',
    "formaction": '<div class="mathjax_ignore"><b formaction="http://x/steal">x</b></div>',
    "id (DOM clobbering)": '<div class="mathjax_ignore"><a id="jupyter" href="https://x" target="_blank" '
                           'rel="noopener noreferrer">x</a></div>',
    "image-set": '<div class="mathjax_ignore" style="background:image-set(\'http://x/p.png\' 1x)">x</div>',
    "CSS escape": '<div class="mathjax_ignore" style="background:\\75 rl(http://x/p.png)">x</div>',
    "http-equiv": '<div class="mathjax_ignore"><p http-equiv="refresh">x</p></div>',
}


@pytest.mark.parametrize("name", list(LEVERS))
def test_the_checker_sees_every_lever(name):
    assert hostile.problems(LEVERS[name]), name


def test_the_checker_sees_text_that_mathjax_would_typeset():
    wrapped = untrusted.bundle("<p>$x$</p>", "$x$")["text/html"]
    assert not hostile.outside_math_skip(wrapped)
    assert hostile.outside_math_skip("<p>$\\href{/api/contents}{x}$</p>")
    assert hostile.outside_math_skip('<div class="mathjax_ignore">a</div><p>b</p>') == ["<p>", "b"]
