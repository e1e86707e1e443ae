"""The magics: thin adapters that parse a line, call the API and show the answer."""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Any, validate

from . import api, settings
from .errors import InferenceError, InferenceInterrupted
from .interpolate import interpolate


def _config_trait(field: str):
    var = next(v for v in settings.VARS if v.field == field)
    return Any(None, allow_none=True, help=f"{var.help} Overrides {var.env[0]}.").tag(config=True)


@magics_class
class InferenceMagics(Magics):
    """%%infer and friends. `%config InferenceMagics` lists the per-kernel settings; each
    overrides its environment variable (the API key is deliberately not one of them: keys belong
    in the environment or .env, never in a notebook's history)."""

    default_backend = _config_trait("default_backend")
    enable_routing = _config_trait("enable_routing")
    ollama_base_url = _config_trait("ollama_base_url")
    ollama_timeout = _config_trait("ollama_timeout")
    ollama_default_model = _config_trait("ollama_default_model")
    ollama_chat_model = _config_trait("ollama_chat_model")
    ollama_code_model = _config_trait("ollama_code_model")
    ollama_embed_model = _config_trait("ollama_embed_model")
    anthropic_default_model = _config_trait("anthropic_default_model")
    anthropic_timeout = _config_trait("anthropic_timeout")
    anthropic_base_url = _config_trait("anthropic_base_url")
    anthropic_max_retries = _config_trait("anthropic_max_retries")

    @validate(*[v.field for v in settings.VARS if v.field != "anthropic_api_key"])
    def _store_override(self, proposal):
        settings.set_override(proposal.trait.name, proposal.value)  # ConfigError names what is accepted
        return proposal.value

    @magic_arguments()
    @argument("words", nargs="*", help="%%%%infer: an optional MODEL. %%infer: the prompt itself.")
    @argument("-m", "--model", help="model name, e.g. llama3.2:3b, sonnet, claude-haiku-4-5")
    @argument("-b", "--backend", help="ollama or anthropic (overrides routing)")
    @argument("-s", "--system", help="system prompt")
    @argument("-t", "--temperature", type=float, help="sampling temperature, 0 to 2 (Claude: 0 to 1)")
    @argument("-n", "--max-tokens", type=int, help="the longest answer, in tokens")
    @argument("--format", choices=["json"], help="ask for JSON and parse it (shown as JSON; --out gets the object)")
    @argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    @argument("-o", "--out", help="store the Result (or the parsed JSON) in this variable")
    @argument("--explain", action="store_true", help="show where the prompt would go and why; call no model")
    @no_var_expand
    @line_cell_magic
    def infer(self, line, cell=None):
        """Ask a model; the answer streams into the cell as Markdown.

        %%infer [MODEL] [options]      the cell body is the prompt
        %infer [options] PROMPT        a one-line prompt

        `{name}` in the prompt is replaced by the notebook variable `name` (once; unknown names
        stay as written; `{{name}}` keeps a literal `{name}`). The last Result is always `_infer`.
        """
        args = self._parse(line, line_form=cell is None)
        if cell is None:
            prompt, model = " ".join(args.words), args.model
        else:
            if len(args.words) > 1:
                raise UsageError(f"%%infer takes at most one MODEL before the options, got {' '.join(args.words)!r} "
                                 "— put the prompt in the cell body.")
            prompt, model = cell, args.model or (args.words[0] if args.words else None)
        if not prompt.strip():
            where = "in the cell body below %%infer" if cell is not None else "after %infer"
            raise UsageError(f"the prompt is empty — write it {where}.")
        prompt = interpolate(prompt, self.shell.user_ns)
        choice = dict(model=model, backend=args.backend, system=args.system)

        if args.explain:
            from IPython.display import Markdown, display

            chosen = api.route(prompt, **choice)
            display(Markdown(f"**{chosen.backend}** · `{chosen.model}` — {chosen.reason}"))
            return None

        from .render import CellView

        running = api.stream(prompt, **choice, temperature=args.temperature, max_tokens=args.max_tokens,
                             format=args.format, stream=not args.no_stream)
        view = CellView(running.route)
        try:
            result = running.each(view.add, view.add_thinking)
        except (InferenceError, InferenceInterrupted) as exc:
            if exc.result is not None:  # whatever arrived stays on screen and in _infer
                view.finish(exc.result)
                self._keep(exc.result, args.out)
            raise
        view.finish(result)
        self._keep(result, args.out)
        return None

    def _parse(self, line: str, line_form: bool):
        try:
            return parse_argstring(self.infer, line)
        except UsageError as exc:  # argparse's message alone does not say what is allowed
            usage = " ".join(self.infer.parser.format_usage().replace("::", "").split())
            hint = " (in a one-line prompt, put `--` before text that looks like a flag)" if line_form else ""
            raise UsageError(f"{exc}{hint} — usage: {usage}; %%infer? shows the help.") from None

    def _keep(self, result, out: str | None) -> None:
        self.shell.user_ns["_infer"] = result
        if out:
            if not out.isidentifier():
                raise UsageError(f"--out {out!r} is not a valid variable name.")
            self.shell.user_ns[out] = result.parsed if result.parsed is not None else result
