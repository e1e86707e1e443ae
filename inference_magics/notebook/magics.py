"""The magics: thin adapters that parse a line, call the API and show the answer."""
from __future__ import annotations

from collections.abc import Iterator

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import api, settings
from ..backends import REGISTRY
from .config import SettingTraits
from .options import infer_options, mode_of, parse
from ..errors import InferenceError, InferenceInterrupted
from ..interpolate import interpolate


MAX_REPEAT = 20  # %%experiment --repeat: samples per model


def interruptible(what: str):
    """A magic whose work is a request but not a stream (an embedding, a listing, a health check, a
    token count): the stop button gives one line, not a KeyboardInterrupt traceback through the
    HTTP client's frames."""
    import functools

    def decorate(method):
        @functools.wraps(method)
        def run(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except InferenceInterrupted:
                raise
            except KeyboardInterrupt:
                raise InferenceInterrupted(note=f"{what} was stopped; nothing was kept — run the cell again.") \
                    from None
        return run
    return decorate


class BaseMagics(Magics):
    """What every magics class here shares: showing a bundle and storing results."""

    def _publish(self, bundle: dict, metadata: dict | None = None) -> None:
        from IPython.display import display

        display(bundle, raw=True, metadata=metadata)

    def _ask_before_spending(self, found, *, batch: bool = False) -> None:
        """Show a priced batch's estimate first; above INFERENCE_CONFIRM_USD ask (input(): it works in
        every front end that gives the kernel a stdin) and stop unless the answer is yes."""
        from .. import budget

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
        from ..answer_provenance import KEY, of_rows

        return {KEY: of_rows([row.result for row in mapped.rows], "map")}


@magics_class
class InferenceMagics(BaseMagics, SettingTraits):
    """%%infer and friends. `%config InferenceMagics` lists the per-kernel settings; each
    overrides its environment variable (the API key is deliberately not one of them: keys belong
    in the environment or .env, never in a notebook's history)."""

    @classmethod
    def class_get_trait_help(cls, trait, inst=None, helptext=None) -> str:
        """The `%config InferenceMagics` listing shows each `Current:` value; a URL's credentials are masked."""
        from ..errors import redact

        return redact(super().class_get_trait_help(trait, inst, helptext))

    def __init__(self, shell=None, **kwargs):
        self._loading = True  # the config read now may come from ipython_config.py: see _load_config
        super().__init__(shell, **kwargs)
        self._loading = False

    def _load_config(self, cfg, section_names=None, traits=None):
        from .config import drop_rejected, drop_unknown

        drop_unknown(self, cfg)  # a misspelt name: one line, not a Python warning
        if self._loading:  # a refused value: one line, and %load_ext still registers the magics
            drop_rejected(self, cfg)
        super()._load_config(cfg, section_names=section_names, traits=traits)

    @magic_arguments()
    @infer_options
    @no_var_expand
    @line_cell_magic
    def infer(self, line, cell=None):
        """Ask a model; the answer streams into the cell as Markdown.

        %%infer [MODEL] [options]      the cell body is the prompt
        %infer [options] PROMPT        a one-line prompt
        %%infer --explain              where the prompt would go and why; no model is called
        %%infer --workflow review      the cell body (or --file/--var) is code to review
        %%infer --workflow summarize [--length short|medium|long] [--format bullets|paragraph]
        %%infer --map VAR [--batch-api]   the cell is a template run once per item of VAR

        `{name}` in the prompt is replaced by the notebook variable `name` (once; unknown names
        stay as written; `{{name}}` keeps a literal `{name}`). The last Result is always `_infer`.
        """
        hint = " (in a one-line prompt, put `--` before text that looks like a flag)" if cell is None else ""
        args = parse(self.infer, line, hint)
        if args.model is not None and not args.model.strip():
            raise UsageError("the model name is empty — name a model (see %models) or leave --model out.")
        mode = mode_of(args)
        if cell is None:  # %infer: the words are the text
            args.where, text = "after %infer", " ".join(args.words)
        elif len(args.words) > 1:
            raise UsageError(f"%%infer takes at most one MODEL before the options, got {' '.join(args.words)!r} "
                             "— put the prompt in the cell body.")
        else:  # %%infer: the cell is the text, a word before the options is the model
            args.where, text = "in the cell body below %%infer", cell
            args.model = args.model or (args.words[0] if args.words else None)
        return getattr(self, f"_infer_{mode}")(args, text)

    # --- %%infer's modes: one handler each, named by options.mode_of --------------------------
    def _infer_prompt(self, args, text):
        from . import context
        from .. import threads

        if args.reset:  # clears a conversation and asks nothing
            return context.reset(args)
        if args.fix:  # the question (if any) with the last error; the failing source is never interpolated
            self._json_or_nothing(args)
            prompt = context.fix_prompt(context.render_prompt(text, self.shell.user_ns) if text.strip() else text)
        else:
            prompt = self._prompt(args, text)
        choice = dict(model=args.model, backend=args.backend, system=args.system, temperature=args.temperature,
                      max_tokens=args.max_tokens, stream=not args.no_stream, cache=args.cache,
                      images=context.attachments(args, self.shell.user_ns))
        if args.fix:  # a code task: it stays on this machine by default, as a review does
            choice.update(task="code", keep_local=context.FIX_KEEP_LOCAL)
        if args.schema or args.tools:
            from .tool_view import typed_or_tools

            apart = [flag for flag, used in (("--continue", args.continue_), ("--thread", args.thread),
                                             ("--insert", args.insert), ("--fix", args.fix)) if used]
            if apart:
                raise UsageError(f"{apart[0]} does not go with {'--schema' if args.schema else '--tools'} yet — "
                                 "ask in two cells.")
            return self._show(typed_or_tools(args, prompt, self.shell.user_ns, choice), args.out)
        thread = context.thread_name(args)
        if thread and "keep_local" not in choice and (reason := threads.kept_local(thread)):
            choice["keep_local"] = reason  # the earlier --fix turn is sent again: it stays here as it did
        earlier = context.thread_messages(thread, prompt, api.route(prompt, **self._routing(choice)).backend) \
            if thread else None
        running = api.stream(prompt, **choice, format=args.format, messages=earlier)
        self._show(running, args.out)
        context.keep_exchange(thread, prompt, running.result, choice.get("keep_local"))
        if args.insert or args.fix:
            context.offer_code(self.shell, running.result)
        return None

    @staticmethod
    def _routing(choice: dict) -> dict:
        return {k: choice[k] for k in ("model", "backend", "system", "task", "keep_local") if k in choice}

    @interruptible("--explain (counting the prompt's tokens)")
    def _infer_explain(self, args, text):
        from .. import budget
        from ..untrusted import bundle, escape

        prompt = self._prompt(args, text)
        chosen = api.route(prompt, model=args.model, backend=args.backend, system=args.system)
        found = budget.estimate(chosen.backend, chosen.model, [prompt], system=args.system,
                                max_tokens=args.max_tokens, count=True)
        # names may come from a server's model list: escaped
        self._publish(bundle(f"<b>{escape(chosen.backend)}</b> · <code>{escape(chosen.model)}</code> — "
                             f"{escape(chosen.reason)}<br><sub>estimate: {escape(found.line())}</sub>",
                             f"{chosen.backend} · {chosen.model} — {chosen.reason}\nestimate: {found.line()}"))

    def _infer_review(self, args, text):
        from .. import workflows

        running = workflows.review_stream(self._workflow_input(args, text), **self._workflow_options(args))
        return self._show(running, args.out)

    def _infer_summarize(self, args, text):
        from .. import workflows

        if args.format == "json":
            raise UsageError("a summary is bullets or paragraph, not json — use --format bullets|paragraph.")
        running = workflows.summarize_stream(self._workflow_input(args, text), length=args.length,
                                             shape=args.format or "bullets", system=args.system,
                                             **self._workflow_options(args))
        return self._show(running, args.out)

    def _infer_map(self, args, template):
        from .. import batch
        from . import tables

        try:
            mapped = batch.map_rows(template, self._rows(args, template), column=args.column,
                                    namespace=self.shell.user_ns, backend=args.backend,
                                    model=args.model, system=args.system, temperature=args.temperature,
                                    max_tokens=args.max_tokens,
                                    format=args.format, concurrency=args.concurrency,
                                    cache=args.cache is not False,  # rows resume from the cache unless --no-cache
                                    schema=self._named_schema(args))  # --schema: typed columns (typed_answers.py)
        except InferenceInterrupted as exc:  # every finished row is kept, in _map and --out
            self._keep_map(exc.mapped, args.out)
            self._publish(tables.map_bundle(exc.mapped), self._map_provenance(exc.mapped))
            raise
        self._keep_map(mapped, args.out)
        self._publish(tables.map_bundle(mapped), self._map_provenance(mapped))

    def _infer_batch(self, args, template):
        from .. import message_batches as batch
        from . import tables

        job = batch.submit(template, self._rows(args, template), column=args.column,
                           model=args.model, system=args.system, temperature=args.temperature,
                           max_tokens=args.max_tokens, namespace=self.shell.user_ns)
        self._publish(tables.batch_job_bundle(job))

    # --- conversations across cells (%%infer --continue / --thread NAME) -----------------------
    @magic_arguments()
    @argument("name", nargs="?", help="a thread's name: list its turns (default: list every thread)")
    @line_magic
    def infer_thread(self, line):
        """The %%infer conversations of this kernel (--continue, --thread NAME); clear one with
        %infer --thread NAME --reset."""
        from . import context

        context.list_threads(parse(self.infer_thread, line).name)

    # --- what the modes share ------------------------------------------------------------------
    def _named_schema(self, args):
        if not args.schema:
            return None
        from .tool_view import notebook_value

        return notebook_value(self.shell.user_ns, args.schema, "--schema")

    def _prompt(self, args, text: str) -> str:
        """The prompt, `{var}` fields rendered for a model (DataFrames as shape, columns and rows)."""
        from .context import render_prompt

        self._json_or_nothing(args)
        if not text.strip():
            raise UsageError(f"the prompt is empty — write it {args.where}.")
        return render_prompt(text, self.shell.user_ns)

    @staticmethod
    def _json_or_nothing(args) -> None:
        if args.format not in (None, "json"):
            raise UsageError(f"--format {args.format} shapes a summary — use it with --workflow summarize.")

    @staticmethod
    def _workflow_options(args) -> dict:
        return dict(model=args.model, backend=args.backend, temperature=args.temperature,
                    max_tokens=args.max_tokens, stream=not args.no_stream)

    def _rows(self, args, template: str):
        """The value --map runs over, once the template and the estimate are fine."""
        if not template.strip():
            raise UsageError("--map needs a template (the cell body, or after -- on the line), e.g. "
                             "Classify the sentiment of: {row}")
        if args.map not in self.shell.user_ns:
            raise UsageError(f"no variable named {args.map!r} in the notebook — define it first.")
        self._json_or_nothing(args)
        items = self.shell.user_ns[args.map]
        if isinstance(items, Iterator):  # a generator: read once, here, so that the estimate does not use it up
            items = list(items)
        self._estimate_map(template, args, items)
        return items

    def _estimate_map(self, template: str, args, items) -> None:
        from .. import batch, budget

        prompts = batch.render_prompts(template, items, args.column, self.shell.user_ns)
        try:
            if args.batch_api and not args.model:  # the batch backend's configured model, as the batch will use
                from ..message_batches import batch_backend

                chosen = api.route(prompts[0], backend=batch_backend().name, system=args.system)
            else:
                chosen = api.route(prompts[0], model=args.model, backend=args.backend, system=args.system)
        except InferenceError:
            return  # the first row is refused for its destination; each row is judged on its own later
        found = budget.estimate(chosen.backend, chosen.model, prompts, system=args.system, max_tokens=args.max_tokens)
        self._ask_before_spending(found, batch=args.batch_api)

    def _workflow_input(self, args, text: str) -> str:
        sources = [name for name, given in (("the cell body", text.strip()), ("--file", args.file),
                                            ("--var", args.var)) if given]
        if len(sources) > 1:
            raise UsageError(f"give the input once, not from {' and '.join(sources)}.")
        if args.file:
            from ..errors import ConfigError
            from ..workflows import read_input_file

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
        return text

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
        from .. import experiments
        from .render import ExperimentView

        args = parse(self.experiment, line)
        if not 1 <= args.repeat <= MAX_REPEAT:
            raise UsageError(f"--repeat must be from 1 to {MAX_REPEAT}, not {args.repeat} — each sample is a full "
                             "request per model.")
        models = experiments.parse_models(interpolate(args.models, self.shell.user_ns))
        prompt = interpolate(cell, self.shell.user_ns)
        options = dict(system=args.system, temperature=args.temperature, max_tokens=args.max_tokens)
        self._estimate_experiment(prompt, models, args)
        view = ExperimentView([experiments.Run(m, s) for s in range(1, max(args.repeat, 1) + 1) for m in models])
        try:
            done = experiments.experiment(prompt, models, repeat=args.repeat, on_progress=view.update, **options)
        except InferenceInterrupted as exc:
            view.update(exc.experiment)  # every stream stopped; what arrived stays, on screen and in variables
            self._keep_experiment(exc.experiment, args.out)
            raise
        view.finish(done)
        self._keep_experiment(done, args.out)

    def _keep_experiment(self, done, out) -> None:
        if done is None:
            return
        self.shell.user_ns["_experiment"] = done
        if out:
            self._store(out, done.frame())

    def _estimate_experiment(self, prompt: str, models: list[str], args) -> None:
        from .. import budget
        from ..backends import REGISTRY

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
    @argument("-b", "--backend", help=", ".join(REGISTRY))
    @argument("-s", "--system", help="system prompt")
    @line_magic
    def chat(self, line):
        """A chat in the notebook: multi-turn, streaming, and the kernel stays free while it answers.

        Shift+Enter or Ctrl+Enter sends; /help lists the commands (/clear, /model, /system, /save,
        /exit). The widget is also `_chat`; `_chat.history` is the conversation.
        """
        from ..backends import REGISTRY
        from .widget import ChatWidget

        args = parse(self.chat, line)
        if args.backend is not None and args.backend not in REGISTRY:
            raise UsageError(f"unknown backend {args.backend!r} — use one of: {', '.join(REGISTRY)}.")
        widget = ChatWidget(args.model, backend=args.backend, system=args.system)
        self.shell.user_ns["_chat"] = widget
        return widget
