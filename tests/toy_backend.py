"""A backend in one file: its spec and its class. tests/test_backend_specs.py registers it with one
line (`register(SPEC)`) and drives %%infer, %models and %infer_health with it in a real kernel.

It answers in process (no server): it reverses the prompt's words, so the answer proves the prompt
arrived. Nothing in inference_magics names it."""
from __future__ import annotations

import dataclasses
import time

from inference_magics.backends.base import Done, Health, ModelInfo, Usage
from inference_magics.backends.spec import BackendSpec

SPEC = BackendSpec("toy", "the toy backend", "tests.toy_backend:ToyBackend", models={"general": "toy_model"},
                   fallback_models={"general": "toy-small"}, context_tokens=1_000, concurrency=2,
                   capabilities=frozenset({"chat", "list"}), locality="always", provider="toy")


class ToyBackend:
    name = "toy"

    def __init__(self, settings) -> None:
        self.asked = 0

    def stream(self, request):
        self.asked += 1
        words = str(request.messages[-1]["content"]).split()
        for word in reversed(words):
            yield word + " "
        yield Done("end_turn", Usage(len(words), len(words)), model=request.model)

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("toy", "toy-small", parameter_size="1K"), ModelInfo("toy", "toy-large")]

    def health(self) -> Health:
        started = time.perf_counter()
        return Health(True, f"toy backend, asked {self.asked} times", time.perf_counter() - started)


class FaultyToyBackend(ToyBackend):
    """The toy, misbehaving as a backend with a bug might: the prompt names the fault. It answers a
    few words first, so the partial answer can be checked."""
    name = "faulty_toy"

    def stream(self, request):
        fault = str(request.messages[-1]["content"]).split()[0]
        yield "half an "
        yield "answer "
        if fault == "raise":
            raise ValueError("a parser's bug")
        yield b"bytes, not text" if fault == "bytes" else object()


FAULTY_SPEC = dataclasses.replace(SPEC, name="faulty_toy", label="the faulty toy backend",
                                  target="tests.toy_backend:FaultyToyBackend")
