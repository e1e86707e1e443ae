"""The experiment: the same prompt on several models at once, compared (`%%experiment`)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import api, routing, telemetry
from .backends import REGISTRY
from .errors import ConfigError, InferenceError, InferenceInterrupted


@dataclass
class Run:
    model: str
    sample: int
    backend: str = ""
    text: str = ""
    error: str | None = None
    result: api.Result | None = None
    done: bool = False


@dataclass
class Experiment:
    prompt: str
    runs: list[Run]
    wall_s: float = 0.0

    def rows(self) -> list[dict]:
        """One dict per run under stable machine names (the DataFrame's columns; the displayed table
        relabels them for people). model is the entry as asked, resolved_model the model that
        answered (a backend name's default, an alias resolved); load_s is the model load the backend
        reported (None when it loaded nothing), and ttft_s and tokens_per_s exclude it; total_s is
        the whole call; cached says the answer came from the response cache (no model time)."""
        table = []
        for run in self.runs:
            r = run.result
            m = r.metrics if r else None
            table.append({"model": run.model, "sample": run.sample, "backend": run.backend,
                          "resolved_model": r.model if r and r.model else run.model,  # a backend name's default
                          "load_s": m.load_s if m else None,
                          "ttft_s": m.ttft_s if m else None, "total_s": m.total_s if m else None,
                          "tokens_per_s": m.tokens_per_s if m else None,
                          "output_tokens": r.usage.output_tokens if r else None,
                          "cost_usd": r.cost_usd if r else None, "cached": bool(r and r.cached),
                          "error": run.error, "text": run.text})
        return table

    def frame(self):
        import pandas

        return pandas.DataFrame(self.rows())


def parse_models(spec: str) -> list[str]:
    """`llama3.2,qwen2.5-coder:7b,claude-haiku-4.5` — or backend names (`local`, `ollama`) for their default model."""
    models = [m.strip() for m in spec.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models is empty — list models separated by commas, e.g. llama3.2,qwen2.5-coder:7b.")
    return models


def _prepare_clients(prompt: str, models: list[str]) -> None:
    """What a kernel's first request would otherwise count in its first-token time, done before
    the clocks start: the privacy detector and each backend's client library are imported (1.5 s
    on a fresh kernel here). Nothing is sent; a backend that cannot be built leaves its run to say why."""
    from . import privacy, settings
    from .backends import get_backend

    privacy.classify(prompt)
    current = settings.load()
    for model in dict.fromkeys(models):
        try:
            get_backend(model if model in REGISTRY else routing.backend_for_model(routing.canonical_model(model)),
                        current)
        except Exception:  # noqa: BLE001 — the run itself reports it, with its one line
            pass


def experiment(prompt: str, models: list[str], *, repeat: int = 1, on_progress=None,
               stop: threading.Event | None = None, **options) -> Experiment:
    """Run `prompt` on every model (× repeat) concurrently, one thread each, so the wall time is
    close to the slowest model's. `on_progress(experiment)` is called on the calling thread about
    ten times a second while text arrives; `stop` (or an interrupt) ends every stream. Privacy is
    judged per model: a private prompt is refused for a cloud model, and that run says why."""
    if not prompt.strip():
        raise ConfigError("the prompt is empty — write it in the cell body.")
    if repeat < 1:
        raise ConfigError(f"--repeat must be 1 or more, not {repeat}.")
    stop = stop or threading.Event()
    _prepare_clients(prompt, models)
    runs = [Run(model, sample) for sample in range(1, repeat + 1) for model in models]
    result = Experiment(prompt, runs)
    started = time.perf_counter()

    def one(run: Run) -> None:
        try:
            # an entry is a model name, or a backend name meaning that backend's default model
            choice = {"backend": run.model} if run.model in REGISTRY else {"model": run.model}
            running = api.stream(prompt, **choice, **options, sample=run.sample)  # samples are cached apart
            run.backend = running.route.backend
            for piece in running:
                if stop.is_set():
                    running.close()  # close the HTTP response: the server stops too
                    break
                run.text += piece
            run.result = running.result
        except InferenceError as exc:
            run.error, run.result = exc.message, exc.result
            run.backend = run.backend or (run.model if run.model in REGISTRY else
                                          routing.backend_for_model(routing.canonical_model(run.model)))
        except Exception as exc:  # a worker must never fail silently: the run says what happened
            run.error = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            run.done = True

    trace = telemetry.begin("experiment", models=list(models), repeat=repeat)  # each run's span is its child
    pool = ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="experiment")
    futures = [pool.submit(trace.run, one, run) for run in runs]
    try:
        while not all(f.done() for f in futures):  # short waits: an interrupt lands here at once
            time.sleep(0.1)
            if on_progress:
                on_progress(result)
    except KeyboardInterrupt:
        # every worker closes its stream at its next token; nobody waits for that here (before a
        # first token it could take as long as a model load)
        stop.set()
        result.wall_s = time.perf_counter() - started
        raise InferenceInterrupted(experiment=result) from None  # the partial runs, for the caller to show
    finally:
        pool.shutdown(wait=False)
        trace.end()
    result.wall_s = time.perf_counter() - started
    return result
