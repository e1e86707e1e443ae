"""The magics: thin adapters that parse a line, call the API and show the answer."""
from __future__ import annotations

import keyword

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Any, validate

from . import api, settings
from .errors import InferenceError, InferenceInterrupted
from .interpolate import interpolate


def parse(magic, line: str, hint: str = ""):
    """Parse a magic's line. IPython splits it keeping the quotes (`--system "Be brief"` would
    give `"Be brief"`), so matching outer quotes are removed from every string value here."""
    try:
        args = parse_argstring(magic, line)
    except UsageError as exc:  # one short line: the full usage wraps mid-word in a cell's error output
        raise UsageError(f"{exc}{hint} — %{magic.__name__}? lists the options.") from None
    for name, value in vars(args).items():
        if isinstance(value, str):
            setattr(args, name, _unquote(value))
        elif isinstance(value, list):
            setattr(args, name, [_unquote(v) if isinstance(v, str) else v for v in value])
    return args


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


MAX_REPEAT = 20  # %%experiment --repeat: samples per model

# every setting but the keys (keys belong in the environment or .env, never in a notebook's history)
CONFIGURABLE = [v.field for v in settings.VARS if not v.field.endswith("_api_key")]


def _config_trait(field: str):
    var = next(v for v in settings.VARS if v.field == field)
    return Any(None, allow_none=True, help=f"{var.help} Overrides {var.env[0]}.").tag(config=True)


class BaseMagics(Magics):
    """What every magics class here shares: showing a bundle and storing results."""

    def _publish(self, bundle: dict, metadata: dict | None = None) -> None:
        from IPython.display import display

        display(bundle, raw=True, metadata=metadata)

    @staticmethod
    def _check_out(out: str | None) -> None:
        if out is not None and (not out.isidentifier() or keyword.iskeyword(out)):
            raise UsageError(f"--out {out!r} is not a valid variable name — use letters, digits and _.")

    def _ask_before_spending(self, found, *, batch: bool = False) -> None:
        """Show a priced batch's estimate first; above INFERENCE_CONFIRM_USD ask (input(): it works in
        every front end that gives the kernel a stdin) and stop unless the answer is yes."""
        from . import budget

        if found.cost_usd is None:
            return
        shown = f"estimate: {found.line()}" + (
            f" — as a Message Batch (half price) ≈ ${found.batch_cost_usd:.4f}" if batch else "")
        print(shown + " (prompt-cache savings not counted)", flush=True)
        question = budget.confirmation_needed(settings.load(), found, batch=batch)
        if question is None:
            return
        from .confirm import CannotAsk, ask  # input(); why not a button: see confirm.py

        try:
            go = ask(question.removesuffix(" [y/N] "))
        except CannotAsk:
            raise UsageError(f"not started: {question.split('. Start it?')[0]}, and this front end cannot ask — "
                             "raise INFERENCE_CONFIRM_USD to run it.") from None
        if not go:
            raise UsageError("not started: declined at the cost confirmation — nothing was sent.")

    def _store(self, out: str | None, value):
        if out:
            self.shell.user_ns[out] = value
        return None

    def _keep_map(self, mapped, out) -> None:
        self.shell.user_ns["_map"] = mapped
        self._store(out, mapped.value())

    @staticmethod
    def _map_provenance(mapped) -> dict:
        from .answer_provenance import KEY, of_rows

        return {KEY: of_rows([row.result for row in mapped.rows], "map")}


@magics_class
class InferenceMagics(BaseMagics):
    """%%infer and friends. `%config InferenceMagics` lists the per-kernel settings; each
    overrides its environment variable (the API key is deliberately not one of them: keys belong
    in the environment or .env, never in a notebook's history)."""

    # one trait per setting (tests/test_settings.py checks that none is missing)
    default_backend = _config_trait("default_backend")
    privacy = _config_trait("privacy")
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
    max_retry_wait_s = _config_trait("max_retry_wait_s")
    openai_base_url = _config_trait("openai_base_url")
    openai_default_model = _config_trait("openai_default_model")
    openai_timeout = _config_trait("openai_timeout")
    local_server = _config_trait("local_server")
    local_model = _config_trait("local_model")
    local_ctx_size = _config_trait("local_ctx_size")
    local_start_timeout = _config_trait("local_start_timeout")
    local_parallel = _config_trait("local_parallel")
    local_idle_timeout = _config_trait("local_idle_timeout")
    local_embed_model = _config_trait("local_embed_model")
    data_dir = _config_trait("data_dir")
    history = _config_trait("history")
    embed_batch_size = _config_trait("embed_batch_size")
    cache = _config_trait("cache")
    cache_file = _config_trait("cache_file")
    prices = _config_trait("prices")
    confirm_usd = _config_trait("confirm_usd")
    budget_usd = _config_trait("budget_usd")
    daily_budget_usd = _config_trait("daily_budget_usd")

    @validate(*CONFIGURABLE)
    def _store_override(self, proposal):
        settings.set_override(proposal.trait.name, proposal.value)  # ConfigError names what is accepted
        return proposal.value

    @magic_arguments()
    @argument("words", nargs="*", help="%%%%infer: an optional MODEL. %%infer: the prompt itself.")
    @argument("-m", "--model", help="model name, e.g. llama3.2:3b, sonnet, claude-haiku-4-5")
    @argument("-b", "--backend", help="ollama, anthropic, local or openai (overrides routing)")
    @argument("-s", "--system", help="system prompt")
    @argument("-t", "--temperature", type=float, help="sampling temperature, 0 to 2 (Claude: 0 to 1)")
    @argument("-n", "--max-tokens", type=int, help="the longest answer, in tokens")
    @argument("--format", choices=["json", "bullets", "paragraph"],
              help="json: ask for JSON and parse it (--out gets the object); bullets|paragraph: a summary's shape")
    @argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    @argument("--cache", dest="cache", action="store_const", const=True, default=None,
              help="answer from the response cache when this exact request was answered before (INFERENCE_CACHE)")
    @argument("--no-cache", dest="cache", action="store_const", const=False,
              help="ask the model even if the response cache holds an answer")
    @argument("-o", "--out", help="store the Result (or the parsed JSON) in this variable")
    @argument("--explain", action="store_true", help="show where the prompt would go and why; call no model")
    @argument("-w", "--workflow", choices=["review", "summarize"],
              help="review: a structured code review (kept local by default); summarize: map-reduce summary")
    @argument("--file", help="with --workflow: read the code or text from this file")
    @argument("--var", help="with --workflow: take the code or text from this variable")
    @argument("--length", choices=["short", "medium", "long"], default="medium", help="with --workflow summarize")
    @argument("--map", metavar="VAR", help="run the cell (a template with {row}, {row.col}, {index}) once per item of "
                                          "VAR: a list, a pandas Series or a DataFrame")
    @argument("--column", help="with --map over a DataFrame: map over this column only")
    @argument("--concurrency", type=int, help="with --map: requests at once (default 4 local, 8 Claude)")
    @argument("--batch-api", action="store_true",
              help="with --map: send the rows to Claude's Message Batches API (about half the price, results within "
                   "24 h); %%infer_batches collects them")
    @no_var_expand
    @line_cell_magic
    def infer(self, line, cell=None):
        """Ask a model; the answer streams into the cell as Markdown.

        %%infer [MODEL] [options]      the cell body is the prompt
        %infer [options] PROMPT        a one-line prompt
        %%infer --workflow review      the cell body (or --file/--var) is code to review
        %%infer --workflow summarize [--length short|medium|long] [--format bullets|paragraph]

        `{name}` in the prompt is replaced by the notebook variable `name` (once; unknown names
        stay as written; `{{name}}` keeps a literal `{name}`). The last Result is always `_infer`.
        """
        args = self._parse(line, line_form=cell is None)
        self._check_out(args.out)
        if args.model is not None and not args.model.strip():
            raise UsageError("the model name is empty — name a model (see %models) or leave --model out.")
        if args.workflow:
            return self._workflow(args, cell)
        if args.map:
            return self._map(args, cell)
        if args.format not in (None, "json"):
            raise UsageError(f"--format {args.format} shapes a summary — use it with --workflow summarize.")
        if args.file or args.var:
            raise UsageError("--file and --var go with --workflow review or summarize; for a prompt, use {name}.")
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
            from . import budget
            from .untrusted import bundle, escape

            chosen = api.route(prompt, **choice)  # names may come from a server's model list: escaped
            found = budget.estimate(chosen.backend, chosen.model, [prompt], system=args.system,
                                    max_tokens=args.max_tokens, count=True)
            self._publish(bundle(f"<b>{escape(chosen.backend)}</b> · <code>{escape(chosen.model)}</code> — "
                                 f"{escape(chosen.reason)}<br><sub>estimate: {escape(found.line())}</sub>",
                                 f"{chosen.backend} · {chosen.model} — {chosen.reason}\nestimate: {found.line()}"))
            return None

        running = api.stream(prompt, **choice, temperature=args.temperature, max_tokens=args.max_tokens,
                             format=args.format, stream=not args.no_stream, cache=args.cache)
        return self._show(running, args.out)

    def _workflow(self, args, cell):
        from . import workflows

        text = self._workflow_input(args, cell)
        options = dict(model=args.model or (args.words[0] if args.words else None), backend=args.backend,
                       temperature=args.temperature, max_tokens=args.max_tokens, stream=not args.no_stream)
        if args.workflow == "review":
            if args.format is not None:
                raise UsageError("--format does not apply to a review (its sections are fixed).")
            return self._show(workflows.review_stream(text, **options), args.out)
        if args.format == "json":
            raise UsageError("a summary is bullets or paragraph, not json — use --format bullets|paragraph.")
        running = workflows.summarize_stream(text, length=args.length, shape=args.format or "bullets",
                                             system=args.system, **options)
        return self._show(running, args.out)

    def _map(self, args, cell):
        from . import batch, tables

        template = cell if cell is not None else " ".join(args.words)
        if not template.strip():
            raise UsageError("--map needs a template (the cell body, or after -- on the line), e.g. "
                             "Classify the sentiment of: {row}")
        if args.map not in self.shell.user_ns:
            raise UsageError(f"no variable named {args.map!r} in the notebook — define it first.")
        if args.format not in (None, "json"):
            raise UsageError(f"--format {args.format} shapes a summary — with --map use --format json or nothing.")
        model = args.model or (args.words[0] if cell is not None and args.words else None)
        self._estimate_map(template, args, model)
        if args.batch_api:
            job = batch.submit(template, self.shell.user_ns[args.map], column=args.column,
                               model=model, system=args.system, temperature=args.temperature,
                               max_tokens=args.max_tokens, namespace=self.shell.user_ns)
            self._publish(tables.batch_job_bundle(job))
            return None
        try:
            mapped = batch.map_rows(template, self.shell.user_ns[args.map], column=args.column,
                                    namespace=self.shell.user_ns, backend=args.backend,
                                    model=model, system=args.system, temperature=args.temperature,
                                    max_tokens=args.max_tokens,
                                    format=args.format, concurrency=args.concurrency,
                                    cache=args.cache is not False)  # rows resume from the cache unless --no-cache
        except InferenceInterrupted as exc:  # every finished row is kept, in _map and --out
            self._keep_map(exc.mapped, args.out)
            self._publish(tables.map_bundle(exc.mapped), self._map_provenance(exc.mapped))
            raise
        self._keep_map(mapped, args.out)
        self._publish(tables.map_bundle(mapped), self._map_provenance(mapped))
        return None

    def _estimate_map(self, template: str, args, model) -> None:
        from . import batch, budget

        prompts = batch.render_prompts(template, self.shell.user_ns[args.map], args.column, self.shell.user_ns)
        try:
            chosen = api.route(prompts[0], model=model or ("sonnet" if args.batch_api else None),
                               backend=args.backend, system=args.system)
        except InferenceError:
            return  # the first row is refused for its destination; each row is judged on its own later
        found = budget.estimate(chosen.backend, chosen.model, prompts, system=args.system, max_tokens=args.max_tokens)
        self._ask_before_spending(found, batch=args.batch_api)

    def _workflow_input(self, args, cell) -> str:
        sources = [name for name, given in (("the cell body", cell and cell.strip()), ("--file", args.file),
                                            ("--var", args.var)) if given]
        if len(sources) > 1:
            raise UsageError(f"give the input once, not from {' and '.join(sources)}.")
        if args.file:
            from .errors import ConfigError
            from .workflows import read_input_file

            try:
                return read_input_file(args.file)
            except ConfigError as exc:  # like every other bad flag value: a usage line, no traceback
                raise UsageError(exc.message) from None
        if args.var:
            if args.var not in self.shell.user_ns:
                raise UsageError(f"no variable named {args.var!r} in the notebook — define it first.")
            value = self.shell.user_ns[args.var]
            return value if isinstance(value, str) else str(value)
        if not sources:
            raise UsageError(f"nothing to {args.workflow} — put it in the cell body, or use --file PATH or --var NAME.")
        return cell

    def _show(self, running, out):
        """Stream into the cell; keep whatever arrived, even when it fails or is interrupted."""
        from .render import CellView

        view = CellView(running.route)
        try:
            result = running.each(view.add, view.add_thinking, view.waiting)
        except (InferenceError, InferenceInterrupted) as exc:
            if exc.result is not None:  # whatever arrived stays on screen and in _infer
                view.finish(exc.result)
                self._keep(exc.result, out)
            raise
        view.finish(result)
        self._keep(result, out)
        return None

    def _parse(self, line: str, line_form: bool):
        hint = " (in a one-line prompt, put `--` before text that looks like a flag)" if line_form else ""
        return parse(self.infer, line, hint)

    def _keep(self, result, out: str | None) -> None:
        self.shell.user_ns["_infer"] = result
        self._store(out, result.parsed if result.parsed is not None else result)

    # --- experiments ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("--models", required=True,
              help="comma-separated models, e.g. llama3.2,qwen2.5-coder:7b,claude-haiku-4.5 (a backend name means its "
                   "default model; {var} takes them from a variable)")
    @argument("--repeat", type=int, default=1, help=f"samples per model (default 1, at most {MAX_REPEAT})")
    @argument("-s", "--system", help="system prompt")
    @argument("-t", "--temperature", type=float, help="sampling temperature")
    @argument("-n", "--max-tokens", type=int, help="the longest answer, in tokens")
    @argument("-o", "--out", help="store a pandas DataFrame with one row per run (and its text)")
    @no_var_expand
    @cell_magic
    def experiment(self, line, cell):
        """The same prompt on several models at once: a column each, then a table and a chart.

        Privacy is judged per model: a private prompt is refused for a cloud model (its column says
        why). The Experiment is also `_experiment`."""
        from . import workflows
        from .render import ExperimentView

        args = parse(self.experiment, line)
        self._check_out(args.out)
        if not 1 <= args.repeat <= MAX_REPEAT:
            raise UsageError(f"--repeat must be from 1 to {MAX_REPEAT}, not {args.repeat} — each sample is a full "
                             "request per model.")
        models = workflows.parse_models(interpolate(args.models, self.shell.user_ns))
        prompt = interpolate(cell, self.shell.user_ns)
        options = dict(system=args.system, temperature=args.temperature, max_tokens=args.max_tokens)
        self._estimate_experiment(prompt, models, args)
        view = ExperimentView([workflows.Run(m, s) for s in range(1, max(args.repeat, 1) + 1) for m in models])
        try:
            done = workflows.experiment(prompt, models, repeat=args.repeat, on_progress=view.update, **options)
        except InferenceInterrupted as exc:
            view.update(exc.experiment)  # every stream stopped; what arrived stays
            raise
        view.finish(done)
        self.shell.user_ns["_experiment"] = done
        if args.out:
            self._store(args.out, done.frame())

    def _estimate_experiment(self, prompt: str, models: list[str], args) -> None:
        from . import budget
        from .backends import REGISTRY

        parts = []
        for model in models:
            choice = {"backend": model} if model in REGISTRY else {"model": model}
            try:
                chosen = api.route(prompt, **choice, system=args.system)
            except InferenceError:
                continue  # refused for this model: its column will say why, and it costs nothing
            parts.append(budget.estimate(chosen.backend, chosen.model, [prompt] * args.repeat, system=args.system,
                                         max_tokens=args.max_tokens))
        priced = [p for p in parts if p.cost_usd is not None]
        if priced:
            total = budget.Estimate("", ", ".join(p.model for p in priced),  # no backend: no --batch-api hint
                                    sum(p.calls for p in priced), sum(p.input_tokens for p in priced),
                                    sum(p.output_tokens for p in priced), priced[0].method,
                                    sum(p.cost_usd for p in priced))
            self._ask_before_spending(total)

    # --- chat --------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("model", nargs="?", help="answer with this model (default: let the router choose per turn)")
    @argument("-b", "--backend", help="ollama, anthropic, local or openai")
    @argument("-s", "--system", help="system prompt")
    @line_magic
    def chat(self, line):
        """A chat in the notebook: multi-turn, streaming, and the kernel stays free while it answers.

        Shift+Enter or Ctrl+Enter sends; /help lists the commands (/clear, /model, /system, /save,
        /exit). The widget is also `_chat`; `_chat.history` is the conversation.
        """
        from .backends import REGISTRY
        from .widget import ChatWidget

        args = parse(self.chat, line)
        if args.backend is not None and args.backend not in REGISTRY:
            raise UsageError(f"unknown backend {args.backend!r} — use one of: {', '.join(REGISTRY)}.")
        widget = ChatWidget(args.model, backend=args.backend, system=args.system)
        self.shell.user_ns["_chat"] = widget
        return widget
