"""%%infer --tools and --schema in a real ipykernel: a notebook function is called, its result
reaches the final answer, and each call is shown live in the cell."""
from __future__ import annotations

SETUP = '''
from pydantic import BaseModel

def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b

def leaky(name: str) -> str:
    """A user's settings."""
    return "token = ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

class City(BaseModel):
    name: str
    population: int
    capital: bool
'''


def test_a_notebook_function_is_called_and_its_result_reaches_the_answer(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 40}}])
    assert kernel.run(SETUP).reply["status"] == "ok"
    run = kernel.run("%%infer --tools add -o answer\nWhat is 2 + 40? Use the tool.")
    assert run.reply["status"] == "ok", run.errors
    texts = [m["content"]["data"]["text/plain"] for m in run.displays]
    assert any(t.startswith("⚙ step 1: add(a=2, b=40) → 42 · ") for t in texts)  # the call, live
    assert any("add(a=2, b=40) … running" in t for t in texts)                  # ... before it ended
    assert run.final_text.startswith("Tool results: 42\n")
    chat = [r.body for r in ollama.requests if r.path == "/api/chat"]
    assert chat[1]["messages"][-1] == {"role": "tool", "content": "42", "tool_name": "add"}
    check = kernel.run("print(answer.text, [r.name for r in answer.tool_runs])")
    assert check.stdout.strip() == "Tool results: 42 ['add']"


def test_a_secret_from_a_tool_stops_the_loop_before_claude_and_is_not_shown(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(tool_calls=[{"name": "leaky", "arguments": {"name": "ada"}}])
    assert kernel.run(SETUP).reply["status"] == "ok"
    run = kernel.run("%%infer -b anthropic --tools leaky\nWhat are Ada's settings?")
    assert run.reply["status"] == "error" and run.reply["ename"] == "PrivacyError"
    assert len(run.errors[0]["traceback"]) == 1 and "the result of tool leaky" in run.errors[0]["traceback"][0]
    assert "ghp_" not in run.everything()
    assert "ghp_" not in repr([r.body for r in claude.requests])


def test_schema_out_stores_the_instance_and_the_cell_shows_fields(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(text='{"name": "Lyon", "population": 522250, "capital": false}')
    assert kernel.run(SETUP).reply["status"] == "ok"
    run = kernel.run("%%infer --schema City -o city\nDescribe Lyon.")
    assert run.reply["status"] == "ok", run.errors
    assert "<th style='text-align:left;padding-right:1em'>population</th>" in run.final_html
    check = kernel.run("print(type(city).__name__, city.population + 1, city.capital)")
    assert check.stdout.split() == ["City", "522251", "False"]


def test_map_schema_gives_typed_columns_in_the_kernel(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(text='{"name": "Lyon", "population": 522250, "capital": false}')
    assert kernel.run(SETUP + "\nimport pandas\nitems = pandas.DataFrame({'city': ['Lyon', 'Paris']})").reply["status"] == "ok"
    run = kernel.run("%%infer --map items --schema City -o df --no-cache\nDescribe {row.city}.")
    assert run.reply["status"] == "ok", run.errors
    check = kernel.run("print(df['population'].dtype, df['capital'].dtype, df['population'].tolist())")
    assert check.stdout.split() == ["Int64", "boolean", "[522250,", "522250]"]


def test_confirm_asks_through_stdin_and_a_declined_call_is_skipped(kernel, peers_reset):
    from tests.test_confirm import answer_from_a_notebook

    ollama, _ = peers_reset
    ollama.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 40}}])
    assert kernel.run(SETUP).reply["status"] == "ok"
    question, declined = answer_from_a_notebook(kernel, "%%infer --tools add --confirm\nWhat is 2 + 40?", "no")
    assert question.startswith("Run add(a=2, b=40)") and question.endswith("[y/N] ")
    assert declined.reply["status"] == "ok", declined.errors
    chat = [r.body for r in ollama.requests if r.path == "/api/chat"]
    assert chat[1]["messages"][-1]["role"] == "tool" and "42" not in chat[1]["messages"][-1]["content"]
    _, accepted = answer_from_a_notebook(kernel, "%%infer --tools add --confirm\nWhat is 2 + 40?", "y")
    assert accepted.reply["status"] == "ok" and accepted.final_text.startswith("Tool results: 42")
