"""Parsing a magic's line, and the one option table of %%infer, shared by its modes (in the style
of IPython's own `script_args`). Adding a flag is one `Option(...)` line here, naming the modes it
goes with, plus its use in those modes' handlers (magics.py); a flag given to a mode it does not go
with is one usage line, so no handler checks combinations by hand."""
from __future__ import annotations

import builtins
import keyword

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, parse_argstring

from ..backends import REGISTRY


def parse(magic, line: str, hint: str = ""):
    """Parse a magic's line. IPython splits it keeping the quotes (`--system "Be brief"` would
    give `"Be brief"`), so matching outer quotes are removed from every string value here; an
    --out must name a variable."""
    try:
        args = parse_argstring(magic, line)
    except UsageError as exc:  # one short line: the full usage wraps mid-word in a cell's error output
        # the hint fits only where prompt text may have been read as a flag, not a bad value ("invalid int")
        fits = "unrecognized arguments" in str(exc) or "expected one argument" in str(exc)
        raise UsageError(f"{exc}{hint if fits else ''} — %{magic.__name__}? lists the options.") from None
    except ValueError:  # shlex: `--system "Be brief` or `%infer 'hello` — a quote opened and never closed
        raise UsageError(f"a quote on the %{magic.__name__} line is never closed — close it or remove it.") from None
    for name, value in vars(args).items():
        if isinstance(value, str):
            setattr(args, name, _unquote(value))
        elif isinstance(value, list):
            setattr(args, name, [_unquote(v) if isinstance(v, str) else v for v in value])
    out = getattr(args, "out", None)
    if out is not None and (not out.isidentifier() or keyword.iskeyword(out)):
        raise UsageError(f"--out {out!r} is not a valid variable name — use letters, digits and _.")
    if out is not None and (out in _KERNEL_NAMES or out.startswith("__") or hasattr(builtins, out)):
        raise UsageError(f"--out {out!r} would replace a name Python or IPython needs — choose another name.")
    return args


# what IPython keeps in the user's namespace: overwriting them breaks the notebook's history or the kernel
_KERNEL_NAMES = frozenset({"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh", "exit", "quit",
                           "get_ipython"})


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


# %%infer's modes, each with its own handler, and how a usage line names it
MODES = {"prompt": "a prompt", "explain": "--explain", "review": "--workflow review",
         "summarize": "--workflow summarize", "map": "--map", "batch": "--map --batch-api"}
ASKING = ("prompt", "explain")  # --explain takes a prompt's flags: it shows where that cell would go
WORKFLOW = ("review", "summarize")
MAPPING = ("map", "batch")
EVERY = tuple(MODES)


class Option:
    """One flag of %%infer: argparse's arguments plus the modes that take it."""

    def __init__(self, *flags: str, modes: tuple[str, ...], **kwargs):
        self.flags, self.modes, self.kwargs = flags, modes, kwargs
        long = next((f for f in flags if f.startswith("--")), flags[0])
        self.dest = kwargs.get("dest") or long.lstrip("-").replace("-", "_")
        self.default = kwargs.get("default", False if kwargs.get("action") == "store_true" else None)


INFER_OPTIONS = (
    Option("-m", "--model", modes=EVERY, help="model name, e.g. llama3.2:3b, sonnet, claude-haiku-4-5"),
    Option("-b", "--backend", modes=(*ASKING, *WORKFLOW, "map"), help=f"{', '.join(REGISTRY)} (overrides routing)"),
    Option("-s", "--system", modes=(*ASKING, "summarize", *MAPPING), help="system prompt"),
    Option("-t", "--temperature", modes=EVERY, type=float,
           help="sampling temperature, 0 to 2 (Claude: 0 to 1)"),
    Option("-n", "--max-tokens", modes=EVERY, type=int, help="the longest answer, in tokens"),
    Option("--format", modes=(*ASKING, "summarize", "map"), choices=["json", "bullets", "paragraph"],
           help="json: ask for JSON and parse it (--out gets the object); bullets|paragraph: a summary's shape"),
    Option("--no-stream", modes=(*ASKING, *WORKFLOW), action="store_true",
           help="wait for the whole answer instead of streaming it"),
    Option("--cache", modes=(*ASKING, "map"), dest="cache", action="store_const", const=True, default=None,
           help="answer from the response cache when this exact request was answered before (INFERENCE_CACHE)"),
    Option("--no-cache", modes=(*ASKING, "map"), dest="cache", action="store_const", const=False,
           help="ask the model even if the response cache holds an answer"),
    Option("-o", "--out", modes=(*ASKING, *WORKFLOW, "map"),
           help="store the Result (or the parsed JSON) in this variable"),
    Option("--explain", modes=("explain",), action="store_true",
           help="show where the prompt would go and why; call no model"),
    Option("-w", "--workflow", modes=WORKFLOW, choices=["review", "summarize"],
           help="review: a structured code review (kept local by default); summarize: map-reduce summary"),
    Option("--file", modes=(*WORKFLOW, "prompt"),
           help="with --workflow: read the code or text from this file; with a prompt: an image or PDF to send"),
    Option("--var", modes=WORKFLOW, help="with --workflow: take the code or text from this variable"),
    Option("--length", modes=("summarize",), choices=["short", "medium", "long"], default="medium",
           help="with --workflow summarize"),
    Option("--map", modes=MAPPING, metavar="VAR",
           help="run the cell (a template with {row}, {row.col}, {index}) once per item of VAR: a list, a pandas "
                "Series or a DataFrame"),
    Option("--column", modes=MAPPING, help="with --map over a DataFrame: map over this column only"),
    Option("--concurrency", modes=("map",), type=int, help="with --map: requests at once (default 4 local, 8 Claude)"),
    Option("--batch-api", modes=("batch",), action="store_true",
           help="with --map: send the rows to Claude's Message Batches API (about half the price, results within "
                "24 h); %%infer_batches collects them"),
    # typed answers and tools (typed_answers.py, tools.py, notebook/tool_view.py)
    Option("--schema", modes=("prompt", "map"), metavar="NAME",
           help="a notebook variable holding a pydantic model, dataclass, TypedDict or JSON-schema dict: the answer is "
                "validated into it (--out gets it); with --map, each field becomes a typed column"),
    Option("--tools", modes=("prompt",), metavar="F,G", help="notebook functions the model may call (comma-separated)"),
    Option("--max-steps", modes=("prompt",), type=int, help="with --tools: model requests at most (default 5)"),
    Option("--confirm", modes=("prompt",), action="store_true", help="with --tools: ask before each call"),
    # the notebook as context (notebook/context.py)
    Option("--image", modes=("prompt",), action="append", metavar="X",
           help="send an image (repeatable): a file path, or a variable holding a matplotlib Figure, PIL image or "
                "PNG/JPEG bytes"),
    Option("--figure", modes=("prompt",), action="store_true", help="send matplotlib's current figure"),
    Option("--fix", modes=("prompt",), action="store_true",
           help="explain the last error of this kernel and offer a corrected cell below (never run)"),
    Option("--insert", modes=("prompt",), action="store_true",
           help="offer the answer's code as a new cell below (never run)"),
    Option("-c", "--continue", modes=("prompt",), dest="continue_", action="store_true",
           help="continue the previous %%%%infer conversation, sending its earlier turns"),
    Option("--thread", modes=("prompt",), metavar="NAME", help="continue (or start) the named conversation"),
    Option("--reset", modes=("prompt",), action="store_true",
           help="clear the conversation (--thread NAME, or the default one); asks nothing"),
)


def infer_options(magic):
    """Decorate %%infer with every option of the table (after `words`, the positional one)."""
    for option in reversed(INFER_OPTIONS):  # magic_arguments lists the last decorator applied first
        magic = argument(*option.flags, **option.kwargs)(magic)
    return argument("words", nargs="*", help="%%%%infer: an optional MODEL. %%infer: the prompt itself.")(magic)


def mode_of(args) -> str:
    """Which handler runs, from the mode flags; every other flag given must go with that mode."""
    if args.workflow:
        mode = args.workflow
    elif args.map:
        mode = "batch" if args.batch_api else "map"
    else:
        mode = "explain" if args.explain else "prompt"
    for option in INFER_OPTIONS:
        if mode in option.modes or getattr(args, option.dest) == option.default:
            continue
        flag = option.flags[-1] if option.dest != "cache" else "--cache" if args.cache else "--no-cache"
        labels = [MODES[m] for m in option.modes]
        if any(label == flag or label.startswith(flag + " ") for label in labels):  # a mode flag itself
            raise UsageError(f"{flag} and {MODES[mode]} are two modes of %%infer — use one at a time.")
        takers = f"{', '.join(labels[:-1])} or {labels[-1]}" if len(labels) > 1 else labels[0]
        raise UsageError(f"{flag} does not go with {MODES[mode]} — it goes with {takers}.")
    return mode
