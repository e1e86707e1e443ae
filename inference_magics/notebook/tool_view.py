"""The notebook side of typed answers and tools: resolve `--schema NAME` and `--tools f,g` from the
notebook's variables, and show each tool call live in the cell (function, arguments, a short
result, the time it took). Arguments and results are untrusted text: escaped like any answer."""
from __future__ import annotations

from IPython.core.error import UsageError

from .. import untrusted


def notebook_value(namespace, name: str, flag: str):
    name = name.strip()
    if name not in namespace:
        raise UsageError(f"{flag} {name}: no variable named {name!r} in the notebook — define it first.")
    return namespace[name]


def typed_or_tools(args, prompt: str, namespace, choice: dict, **options):
    """The Stream-like runner for `%%infer --schema` / `--tools`, ready for the magic's _show."""
    from ..typed_answers import TypedStream

    if args.tools and args.schema:
        raise UsageError("--schema and --tools together are not supported yet — ask with --tools, then pass the "
                         "answer to a --schema cell.")
    if not args.tools:
        if args.max_steps is not None or args.confirm:
            raise UsageError("--max-steps and --confirm go with --tools.")
        return TypedStream(prompt, notebook_value(namespace, args.schema, "--schema"), **choice, **options)
    from ..tools import ToolLoop

    functions = []
    for name in filter(None, (n.strip() for n in args.tools.split(","))):
        function = notebook_value(namespace, name, "--tools")
        if not callable(function):
            raise UsageError(f"--tools {name}: {name!r} is a {type(function).__name__}, not a function.")
        functions.append(function)
    loop = ToolLoop(prompt, functions, max_steps=args.max_steps, confirm=ask_before_call if args.confirm else None,
                    **choice, **options)
    loop.on_call = ToolCallsView(list(loop.tools)).update  # shown once the loop is set up, above the answer
    return loop


def ask_before_call(run) -> bool:
    """--confirm: the notebook's one way of asking (confirm.py); where nothing can answer, the call is skipped."""
    from .confirm import CannotAsk, ask

    try:
        from ..privacy import redact_secrets  # the model's arguments may carry a secret

        return ask(f"Run {redact_secrets(run.line().removesuffix(' … running'))}?")
    except CannotAsk:
        return False


class ToolCallsView:
    """One display above the answer, one line per call, updated as each call starts and ends."""

    def __init__(self, names: list[str]):
        from IPython.display import display

        self._runs: list = []
        self._names = names
        self._handle = display(self._bundle(), raw=True, display_id=True)

    def update(self, run) -> None:
        if run not in self._runs:
            self._runs.append(run)
        self._handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict:
        if not self._runs:
            line = f"tools the model may call: {', '.join(self._names)}"
            return untrusted.bundle(untrusted.note_html(line), line)
        from ..privacy import redact_secrets  # a tool may return a key: the cell never shows it

        lines = [redact_secrets(f"⚙ step {run.step}: {run.line()}") for run in self._runs]
        html = "".join(untrusted.note_html(line, warn=bool(run.error)) for line, run in zip(lines, self._runs))
        return untrusted.bundle(html, "\n".join(lines))
