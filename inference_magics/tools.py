"""Notebook functions as tools: `im.infer(..., tools=[f, g])` and `%%infer --tools f,g`.

Each tool's schema comes from the function's signature, type hints and docstring (a parameter
without a hint is a string, and a notice says so). The model may call the tools: each call runs
here, in the kernel, its result goes back, and this repeats up to `max_steps` model requests
(default 5); the final answer streams as usual. A tool's exception goes back to the model as an
error result. Privacy: every result is classified (policy.check) before it may go to a model off
this machine; a private result stops the loop with the usual refusal line, keeping what was said.
"""
from __future__ import annotations

import inspect
import json
import re
import time
import typing
from dataclasses import dataclass

from . import policy, settings as settings_module
from .errors import ConfigError, InferenceError, InferenceInterrupted, PrivacyError

DEFAULT_MAX_STEPS = 5
MAX_STEPS_LIMIT = 50
MAX_RESULT_CHARS = 20_000  # what one result may send back to the model
SHORT_CHARS = 80           # a result (and each argument) as the cell shows it
SHOWN_ARGUMENTS_CHARS = 300  # all of a call's arguments as the cell (and --confirm) shows them


@dataclass
class Tool:
    name: str
    function: object
    spec: dict                     # {"name", "description", "parameters" (a JSON schema)}
    notice: str | None = None      # e.g. parameters without type hints


@dataclass
class ToolRun:
    """One call the loop ran (or skipped), as the cell and the history show it."""
    step: int
    id: str
    name: str
    arguments: object
    result: str | None = None      # the text sent back to the model
    error: str | None = None       # the exception (or refusal) the model was told about
    skipped: bool = False
    seconds: float = 0.0
    done: bool = False

    @property
    def short(self) -> str:
        return _shortened(" ".join((self.error or self.result or "").split()), SHORT_CHARS)

    def line(self) -> str:
        """`f(x=1) → 42 · 0.01 s` (arguments and result are untrusted: the caller escapes them; the
        model writes them, so each is shortened as the result is — a megabyte argument is not drawn whole)."""
        arguments = self.arguments if isinstance(self.arguments, dict) else {"?": self.arguments}
        shown = _shortened(", ".join(f"{_shortened(str(k), SHORT_CHARS)}={_shortened(_json(v), SHORT_CHARS)}"
                                     for k, v in arguments.items()), SHOWN_ARGUMENTS_CHARS)
        call = f"{_shortened(self.name, SHORT_CHARS)}({shown})"
        if not self.done:
            return f"{call} … running"
        if self.skipped:
            return f"{call} → skipped"
        outcome = f"error: {self.short}" if self.error else self.short
        return f"{call} → {outcome} · {self.seconds:.2f} s"

    def record(self) -> dict:
        return {"step": self.step, "name": self.name, "arguments": self.arguments, "result": self.short,
                "error": self.error, "skipped": self.skipped, "seconds": round(self.seconds, 4)}


def as_tool(function) -> Tool:
    """A function's tool schema from its signature, type hints and docstring."""
    if isinstance(function, Tool):
        return function
    if not callable(function) or not getattr(function, "__name__", None) or function.__name__ == "<lambda>":
        raise ConfigError(f"a tool must be a named function, not {function!r} — define it with def.")
    name = function.__name__
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise ConfigError(f"the tool name {name!r} is not usable — a function name of letters, digits and _.")
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"cannot read the signature of {name} ({exc}) — give it plain parameters.") from None
    doc = inspect.getdoc(function) or ""
    described = _parameter_docs(doc)
    properties, required, unhinted = {}, [], []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise ConfigError(f"tool {name}: parameter {parameter.name} must be a plain named parameter (no *args, "
                              "**kwargs or positional-only) — the model passes arguments by name.")
        if parameter.name in hints:
            schema = _schema_of(hints[parameter.name], name, parameter.name)
        else:
            schema = {"type": "string"}
            unhinted.append(parameter.name)
        if parameter.name in described:
            schema = {**schema, "description": described[parameter.name]}
        properties[parameter.name] = schema
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    summary = doc.split("\n\n", 1)[0].strip() if doc else f"the notebook function {name}"
    spec = {"name": name, "description": summary,
            "parameters": {"type": "object", "properties": properties, "required": required}}
    notice = (f"tool {name}: {', '.join(unhinted)} {'has' if len(unhinted) == 1 else 'have'} no type hint, so the "
              "model passes text — add hints (x: int) for typed arguments.") if unhinted else None
    return Tool(name, function, spec, notice)


def _schema_of(hint, tool: str, parameter: str) -> dict:
    from pydantic import PydanticSchemaGenerationError, TypeAdapter

    try:
        schema = TypeAdapter(hint).json_schema()
    except (PydanticSchemaGenerationError, TypeError) as exc:
        raise ConfigError(f"tool {tool}: the type of {parameter} ({hint!r}) has no JSON schema "
                          f"({str(exc).splitlines()[0][:100]}) — use plain types (str, int, float, bool, list, dict).") \
            from None
    schema.pop("title", None)
    return schema


def _parameter_docs(doc: str) -> dict[str, str]:
    """`name: what it is` / `name (type): ...` lines (Google style) or `:param name: ...` (Sphinx)."""
    found = {}
    for match in re.finditer(r"^\s*(?::param\s+)?(\w+)\s*(?:\([^)]*\))?\s*:\s*(\S.*)$", doc, re.MULTILINE):
        found.setdefault(match.group(1), match.group(2).strip())
    return found


def _json(value) -> str:
    """A value as JSON; what JSON cannot hold (a circular structure, nesting deeper than the encoder
    goes) as its repr — the tool ran: its result is not turned into an error."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _shortened(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    from .privacy import cut_point  # never half a secret: the cell's redaction must still see it whole

    return text[:cut_point(text, limit - 1)] + "…"


def _sent(value) -> str:
    text = value if isinstance(value, str) else _json(value)
    if len(text) > MAX_RESULT_CHARS:
        from .privacy import cut_point  # never half a secret: the guard judges only what is sent

        kept = cut_point(text, MAX_RESULT_CHARS)
        text = text[:kept] + f"… [cut at {kept} characters]"
    return text


def ask_in_terminal(run: ToolRun) -> bool:
    """--confirm where no button can be clicked: input() (every front end that gives the kernel a stdin)."""
    try:
        from .privacy import redact_secrets  # the model's arguments may carry a secret

        answer = input(f"Run {redact_secrets(run.line().removesuffix(' … running'))}? [y/N] ")
    except (EOFError, NotImplementedError):  # no stdin (IPython's StdinNotImplementedError): skipped
        return False
    return answer.strip().lower() in ("y", "yes")


class ToolLoop:
    """Duck-types api.Stream for the cell: `.route`, `.each(on_text, ...)`, `.result`, `.close()`.
    `on_call(run)` is told about each call when it starts and when it ends (the cell's live view);
    `confirm`: True asks with input() before each call, a callable(run) -> bool asks its own way."""

    def __init__(self, prompt: str, tools, *, max_steps=None, confirm=None, on_call=None, messages=None, **options):
        from . import api

        if not tools:
            raise ConfigError("no tools given — pass functions: tools=[f, g] (or --tools f,g).")
        found = [as_tool(t) for t in tools]
        self.tools = {t.name: t for t in found}
        if len(self.tools) < len(found):
            raise ConfigError("two tools have the same name — give each function its own name.")
        max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= MAX_STEPS_LIMIT:
            raise ConfigError(f"max_steps must be a whole number from 1 to {MAX_STEPS_LIMIT}, not {max_steps!r}.")
        if options.get("format") is not None:
            raise ConfigError("--format does not apply with tools.")
        options.pop("format", None)
        # never from the response cache: it keeps an answer's text, not the calls it asked for, and a
        # call is something to run again (the functions, or the data they read, may have changed)
        options["cache"] = False
        self.max_steps = max_steps
        self.confirm = ask_in_terminal if confirm is True else confirm or None
        self.on_call = on_call
        self._specs = [t.spec for t in found]
        self._options = options
        self._turns = list(messages or ()) + ([{"role": "user", "content": prompt}] if prompt.strip() else [])
        self._running = api.Stream(prompt, messages=messages, tools=self._specs, **options)
        self.route = self._running.route
        from .typed_answers import require

        require(self.route, "tools")
        self.runs: list[ToolRun] = []
        self._shown: list[str] = []
        self._steps: list = []

    @property
    def result(self):
        return self._merged(self._running.result)

    def close(self) -> None:
        self._running.close()

    def each(self, on_text, on_thinking=None, on_waiting=None):
        from . import api

        def shown(text: str) -> None:
            self._shown.append(text)
            on_text(text)

        try:
            for step in range(1, self.max_steps + 1):
                result = self._running.each(shown, on_thinking, on_waiting)
                self._steps.append(result)
                if not result.tool_calls:
                    return self._merged(result)
                if step == self.max_steps:
                    final = self._merged(result)
                    final.notices.append(f"stopped after {self.max_steps} model requests (--max-steps) while the "
                                         "model still wanted tools — raise --max-steps to let it go on.")
                    return final
                self._turns.append({"role": "assistant", "content": result.text, "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls]})
                ran = [self._call(step, call) for call in result.tool_calls]
                self._guard(ran)
                self._turns += [{"role": "tool", "tool_call_id": run.id, "name": run.name,
                                 "content": run.error or run.result or "", "is_error": bool(run.error or run.skipped)}
                                for run in ran]
                said = "".join(self._shown)
                if said.strip() and not said.endswith("\n\n"):
                    shown("\n\n")  # the next request's text starts a new paragraph
                options = {k: v for k, v in self._options.items() if k not in ("backend", "model", "task", "keep_local")}
                self._running = api.Stream("", messages=self._turns, backend=self.route.backend,
                                           model=self.route.model, tools=self._specs, **options)
                self._running.record_extra = {"tool_calls": [run.record() for run in self.runs]}
        except (InferenceError, InferenceInterrupted) as exc:
            merged = self._merged(exc.result if exc.result is not None else self._running.result)
            if isinstance(exc, InferenceInterrupted):
                raise InferenceInterrupted(merged) from None
            raise exc.with_result(merged) from None
        except KeyboardInterrupt:  # in a tool or at a confirmation: what was said so far is kept
            self.close()
            final = self._merged(self._running.result)
            final.interrupted = True
            raise InferenceInterrupted(final) from None

    def _call(self, step: int, call) -> ToolRun:
        run = ToolRun(step, call.id, call.name, call.arguments)
        self.runs.append(run)
        self._tell(run)
        tool = self.tools.get(call.name)
        if tool is None:
            run.error = f"there is no tool named {call.name!r}; the tools are: {', '.join(self.tools)}"
        elif not isinstance(call.arguments, dict):
            run.error = f"the arguments are not a JSON object: {str(call.arguments)[:200]}"
        elif self.confirm is not None and not self.confirm(run):
            run.skipped, run.result = True, "the user declined to run this call"
        else:
            started = time.perf_counter()
            try:
                from pydantic import ValidationError, validate_call

                value = validate_call(tool.function)(**call.arguments)  # typed arguments are checked and converted
                run.result = _sent(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                run.error = f"bad arguments for {call.name}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            except Exception as exc:  # the tool's own failure goes back to the model (and the cell shows it)
                from .privacy import cut_point  # never half a secret: the guard judges only what is sent

                said = str(exc)
                run.error = f"{type(exc).__name__}: {said[:cut_point(said, 500)]}"
            run.seconds = time.perf_counter() - started
        run.done = True
        self._tell(run)
        return run

    def _tell(self, run: ToolRun) -> None:
        if self.on_call is not None:
            self.on_call(run)

    def _guard(self, ran: list[ToolRun]) -> None:
        """The one policy, before any result goes back: a private result never leaves this machine."""
        current = settings_module.load()
        for run in ran:
            try:
                policy.check(run.error or run.result or "", self.route.backend, self.route.model, current,
                             what=f"the result of tool {run.name}")
            except PrivacyError as exc:
                merged = self._merged(self._steps[-1])
                merged.error = exc.message
                raise exc.with_result(merged) from None

    def _merged(self, last):
        """The last request's Result, holding everything the cell showed and every call."""
        if last is None:
            return None
        steps = self._steps if self._steps and self._steps[-1] is last else self._steps + [last]
        last.text = "".join(self._shown) if self._shown else last.text
        last.tool_runs = list(self.runs)
        last.route = self.route
        if len(steps) > 1:
            last.usage = sum((s.usage for s in steps[1:]), steps[0].usage)
            costs = [s.cost_usd for s in steps if s.cost_usd is not None]
            last.cost_usd = sum(costs) if costs else None
        for notice in (t.notice for t in self.tools.values() if t.notice):
            if notice not in last.notices:
                last.notices.append(notice)
        return last
