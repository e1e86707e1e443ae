"""The data magics: %embed, %models, %infer_health, %infer_history, %infer_batches and
%infer_otel — thin adapters over the embeddings, catalog, history, batch and telemetry modules."""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import settings
from . import tables  # light: the renderer loads markdown-it on first use
from .magics import BaseMagics, interruptible
from .options import parse


@magics_class
class DataMagics(BaseMagics):
    # --- embeddings ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("text", nargs="*", help="%%embed: the text. %%%%embed: the cell body is the text.")
    @argument("-v", "--var", help="embed this variable: a string, or a list / Series of strings")
    @argument("-m", "--model", help="embedding model (default OLLAMA_EMBED_MODEL)")
    @argument("-b", "--backend", help="ollama, local or openai")
    @argument("--output", choices=["json", "array", "length"],
              help="return the value: json (model, dimensions, vectors), array (the bare vectors) or length (dimensions)")
    @argument("--similar-to", metavar="QUERY", help="rank the texts by cosine similarity to QUERY")
    @argument("-k", type=int, default=5, help="how many to show with --similar-to (default 5)")
    @argument("--no-cache", action="store_true", help="ask the backend even for texts already in the cache")
    @argument("-o", "--out", help="store the result in this variable")
    @interruptible("the embedding")
    @no_var_expand
    @line_cell_magic
    def embed(self, line, cell=None):
        """Embed text: vectors with their model and dimensions, cached, and similarity search.

        %embed TEXT                    one text
        %embed -v VAR                  a string, or a list / pandas Series of strings (batched)
        %%embed                        the cell body is the text
        %embed -v docs --similar-to "query" -k 5     a ranked table (score, text)

        The last result is always `_embed`.
        """
        from .. import embeddings

        args = parse(self.embed, line)
        if args.var is not None:
            if args.var not in self.shell.user_ns:
                raise UsageError(f"no variable named {args.var!r} in the notebook — define it first.")
            texts = self.shell.user_ns[args.var]
        elif cell is not None:
            texts = cell
        else:
            texts = " ".join(args.text)
            if not texts.strip():
                raise UsageError("nothing to embed — write the text after %embed, or use -v VAR or %%embed.")
        items, single = embeddings.as_texts(texts)
        choice = dict(model=args.model, backend=args.backend, cache=not args.no_cache)
        done = embeddings.run(items if args.similar_to is None else items + [args.similar_to], **choice)
        self.shell.user_ns["_embed"] = done
        if args.similar_to is not None:
            query, done.vectors = done.vectors[-1], done.vectors[:-1]
            ranked = [{"rank": r, "score": round(score, 4), "index": i, "text": items[i]}
                      for r, (i, score) in enumerate(embeddings.most_similar(query, done.vectors, args.k), 1)]
            self._publish(tables.similar_bundle(ranked, done, args.similar_to))
            return self._store(args.out, ranked)
        value = {"json": lambda: tables.embed_json(done, single), "length": lambda: done.dims,
                 "array": lambda: done.vectors[0] if single else done.vectors}.get(args.output)
        self._publish(tables.embed_bundle(done, single))
        if value is None:
            return self._store(args.out, done.vectors[0] if single else done.vectors)
        return self._store(args.out, value()) if args.out else value()

    # --- models, health, history -------------------------------------------------------------
    @magic_arguments()
    @argument("-b", "--backend", help="only this backend")
    @argument("--format", choices=["table", "json"], default="table")
    @argument("-o", "--out", help="store the listing: a pandas DataFrame when pandas is installed, else a list of dicts")
    @interruptible("listing the models")
    @line_magic
    def models(self, line):
        """Every model of every configured backend in one table, with the defaults for each task."""
        from .. import catalog

        args = parse(self.models, line)
        listing = catalog.models(args.backend)
        rows = tables.model_rows(listing)
        if args.format == "json":
            from IPython.display import JSON, display

            display(JSON(rows, expanded=True))
        else:
            self._publish(tables.models_bundle(rows))
        if args.out:
            self._store(args.out, tables.as_frame(rows))

    @interruptible("the health check")
    @line_magic
    def infer_health(self, line):
        """Each backend: reachable or not, latency, version, and what to do when it is down."""
        from .. import catalog

        self._publish(tables.health_bundle(catalog.health(), settings.load().privacy))

    @magic_arguments()
    @argument("--search", metavar="TEXT", help="only entries whose prompt or answer contains TEXT")
    @argument("--semantic", metavar="QUERY", help="rank past prompts and answers by similarity to QUERY")
    @argument("--limit", type=int, default=20, help="how many entries (default 20)")
    @argument("-o", "--out", help="store the entries in this variable")
    @no_var_expand
    @line_magic
    def infer_history(self, line):
        """Past completions from the local history (INFERENCE_HISTORY), newest first."""
        from ..history import recall

        args = parse(self.infer_history, line)
        if args.limit < 1:
            raise UsageError(f"--limit must be 1 or more, not {args.limit}.")
        rows = recall(search=args.search, limit=args.limit, semantic=args.semantic)
        how = (f"most similar to {args.semantic!r}" if args.semantic else
               f"containing {args.search!r}" if args.search else "most recent")
        self._publish(tables.history_bundle(rows, f"{len(rows)} {how}"))
        self._store(args.out, rows)

    @magic_arguments()
    @argument("batch_id", nargs="?", help="collect this batch's results (default: list every batch)")
    @argument("-o", "--out", help="store the collected rows (a DataFrame) in this variable")
    @line_magic
    def infer_batches(self, line):
        """Claude Message Batches sent with %%infer --map --batch-api: list and poll them, or
        collect one that has ended (results arrive within 24 hours; the list survives the kernel)."""
        from .. import message_batches as batch

        args = parse(self.infer_batches, line)
        if args.batch_id is None:
            self._publish(tables.batch_jobs_bundle(batch.jobs()))
            return None
        mapped = batch.collect(args.batch_id)
        self._keep_map(mapped, None)
        self._store(args.out, mapped.frame())
        self._publish(tables.map_bundle(mapped))
        return None

    # --- tracing -------------------------------------------------------------------------------
    @line_magic
    def infer_otel(self, line):
        """OpenTelemetry tracing: on or off and why, where spans go, whether prompt and answer text
        is included (and why not), and how exports went. Settings: README § Observability."""
        from .. import telemetry

        shown = telemetry.status()
        self._publish(tables.bundle(["item", "value"], [[k, v] for k, v in shown.items()], "OpenTelemetry tracing"))

    # --- response cache ----------------------------------------------------------------------
    @magic_arguments()
    @argument("--clear", action="store_true", help="delete every cached answer in the cache file")
    @line_magic
    def infer_cache(self, line):
        """The response cache (INFERENCE_CACHE=off|on|replay): its file, size, and the hits and
        misses of this kernel; --clear empties it."""
        from .. import response_cache

        args = parse(self.infer_cache, line)
        current = settings.load()
        if args.clear and (notice := response_cache.clear(current)):
            raise UsageError(notice)
        info = response_cache.stats(current)
        caption = ("cleared — " if args.clear else "") + f"response cache ({info['mode']})" + (
            f" · ⚠ {info['notice']}" if info["notice"] else "")
        self._publish(tables.bundle(["file", "answers", "size", "hits", "misses"],
                                    [[info["file"], info["entries"], tables.human_size(info["bytes"]) or "0 B",
                                      info["hits"], info["misses"]]], caption))
        return None

    @magic_arguments()
    @argument("-o", "--out", help="store the rows (day, backend, model, calls, input, output tokens, USD) as a DataFrame")
    @line_magic
    def infer_cost(self, line):
        """Spend by model and by day (UTC), from the history, with a chart; and this kernel's spend
        against INFERENCE_BUDGET_USD / INFERENCE_DAILY_BUDGET_USD when they are set."""
        from .. import budget
        from ..history import HistoryError, store_for

        args = parse(self.infer_cost, line)
        current = settings.load()
        store = store_for(current)
        if store is None:
            raise HistoryError("spend is read from the history, which is off (INFERENCE_HISTORY=off) — set "
                               "INFERENCE_HISTORY=on to keep one.")
        rows = store.spend()
        by_model, by_day = tables.spend_bundles(rows)
        self._publish(by_model)
        self._publish(by_day)
        chart = tables.spend_chart(rows)
        if chart is not None:
            self._publish({"image/png": chart, "text/plain": "USD per day, by model"})
        caps = [f"this kernel ${budget.kernel_spend():.4f}" + (
            f" of INFERENCE_BUDGET_USD=${current.budget_usd:.2f}" if current.budget_usd is not None else "")]
        if current.daily_budget_usd is not None:
            caps.append(f"today ${budget.today_spend(current) or 0:.4f} of INFERENCE_DAILY_BUDGET_USD="
                        f"${current.daily_budget_usd:.2f}")
        print("spent: " + "; ".join(caps))
        if args.out:
            import pandas

            self._store(args.out, pandas.DataFrame(rows, columns=["day", "backend", "model", "calls", "input_tokens",
                                                                  "output_tokens", "usd"]))
