"""Backend specs: what a backend is, in one place, importable without its SDK — and a new backend
is one file plus one registry line (the toy backend, in a real kernel)."""
import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from inference_magics.backends import REGISTRY, keeps_data_local, model_owner, offering, spec
from inference_magics.backends.base import METHODS
from inference_magics.backends.spec import BackendSpec
from inference_magics.settings import Settings

PACKAGE = Path(__file__).resolve().parent.parent / "inference_magics"


def test_specs_load_without_any_sdk():
    code = ("import sys, inference_magics.backends as b, inference_magics.routing as r\n"
            "assert [s.label for s in b.REGISTRY.values()] and r.model_for('anthropic', 'general', r.__dict__.get('x') or "
            "__import__('inference_magics.settings').settings.Settings()) \n"
            "print(sorted(m for m in ('anthropic', 'ollama', 'httpx', 'openai', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_class_has_the_methods_its_capabilities_promise_and_no_others(name):
    module, _, attr = spec(name).target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert cls.name == name
    for capability, protocol in METHODS.items():
        methods = [m for m in vars(protocol) if not m.startswith("_")]
        has = [callable(getattr(cls, m, None)) for m in methods]
        assert all(has) == spec(name).supports(capability), (name, capability)
        assert all(has) or not any(has), (name, capability, "declare the capability or drop the methods")


def test_one_call_says_whether_a_backend_can_do_something_with_a_model():
    assert spec("anthropic").supports("batch") and not spec("ollama").supports("batch")
    assert spec("ollama").supports("vision", "llava:7b") and not spec("local").supports("vision", "gemma-3-270m")
    seeing = BackendSpec("x", "X", "x:X", capabilities=frozenset({"chat", "vision"}),
                         model_supports=lambda capability, model: capability != "vision" or "-vl" in model)
    assert seeing.supports("vision", "qwen-vl") and not seeing.supports("vision", "qwen") and seeing.supports("vision")
    assert [s.name for s in offering("embed")] == ["ollama", "local", "openai"]
    with pytest.raises(ValueError):
        spec("ollama").supports("telepathy")


def test_facts_live_in_the_spec():
    settings = Settings()
    assert spec("local").context(Settings(local_ctx_size=2048)) == 2048 and spec("anthropic").context(settings) == 200_000
    assert (spec("anthropic").concurrency, spec("local").concurrency) == (8, 4)
    assert spec("openai").default_model("chat", settings) == "default"  # the first model the server lists
    assert (model_owner("claude-x"), model_owner("a.gguf"), model_owner("llama3.2")) == ("anthropic", "local", "ollama")
    assert keeps_data_local("local", settings) and not keeps_data_local("anthropic", settings)
    assert not spec("ollama").keeps_data_local("gpt-oss:120b-cloud", settings)


def _compares_a_backend_name(node) -> bool:
    names = set(REGISTRY)
    if isinstance(node, ast.Compare):
        for side in [node.left, *node.comparators]:
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            if any(isinstance(v, ast.Constant) and v.value in names for v in values):
                return True
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "get_backend":
        return bool(node.args) and isinstance(node.args[0], ast.Constant)
    return False


def test_no_module_outside_backends_decides_by_a_backend_name():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "backends" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _compares_a_backend_name(node):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


TOY = ("import sys; sys.path.insert(0, {root!r})\n"
       "from inference_magics.backends import register\nfrom tests.toy_backend import SPEC\nregister(SPEC)\n")


def test_a_toy_backend_is_one_file_and_one_line(kernel):
    assert "toy" not in inspect.getsource(importlib.import_module("inference_magics.routing"))
    setup = kernel.run(TOY.format(root=str(PACKAGE.parent)))
    assert setup.reply["status"] == "ok", setup.everything()
    answer = kernel.run("%%infer --backend toy\nthree two one")
    assert answer.reply["status"] == "ok", answer.everything()
    assert "one two three" in answer.final_text and "toy-small" in answer.final_text
    kept = kernel.run("print(_infer.backend, _infer.model, _infer.text.strip())")
    assert kept.stdout.strip() == "toy toy-small one two three"
    listing = kernel.run("%models --out listing\nprint(sorted(listing[listing.backend == 'toy'].name))")
    assert "['toy-large', 'toy-small']" in listing.stdout, listing.everything()
    default = kernel.run("print(listing[listing.name == 'toy-small']['default for'].tolist())")
    assert "['default']" in default.stdout
    health = kernel.run("%infer_health")
    assert "toy backend, asked 1 times" in health.everything(), health.everything()


@pytest.mark.parametrize("fault, says", [
    ("raise", "unexpected ValueError while streaming the answer from faulty_toy: a parser's bug"),
    ("bytes", "faulty_toy sent bytes where the answer's text belongs"),
    ("object", "faulty_toy sent object where the answer's text belongs"),
])
def test_a_backend_fault_nobody_foresaw_is_one_line_and_the_partial_answer_is_kept(fault, says):
    import inference_magics as im
    from inference_magics.backends import register
    from inference_magics.errors import BackendError
    from tests.toy_backend import FAULTY_SPEC

    register(FAULTY_SPEC)
    try:
        with pytest.raises(BackendError) as caught:
            im.infer(f"{fault} now", backend="faulty_toy")
    finally:
        del REGISTRY["faulty_toy"]
    assert says in caught.value.message and "\n" not in caught.value.message
    assert caught.value.result.text == "half an answer " and caught.value.result.error == caught.value.message
    (entry,) = im.recall()  # and the history row says so, with the partial answer
    assert (entry.output, entry.error) == ("half an answer ", caught.value.message)
