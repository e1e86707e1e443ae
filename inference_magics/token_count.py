"""Input tokens counted by the model's own tokenizer, for estimates, where a server can answer
without loading a model or generating anything.

llama-server (the embedded `local` backend, or an OpenAI-compatible server that is llama-server)
renders the chat with the template it will use (POST /apply-template) and tokenizes that text
(POST /tokenize): the count its own request would report as prompt tokens. Ollama documents no
tokenizer endpoint (its prompt_eval_count comes only with a generation), and a server that is not
llama-server answers 404: those get the stated approximation instead (budget.APPROXIMATE).
"""
from __future__ import annotations

import threading

TIMEOUT_S = 5.0
MAX_TOKENS = 10_000_000  # a server's answer is untrusted: a count beyond any context is not one

_not_llama_server: set[str] = set()  # servers that answered 404 once: not asked again in this kernel
_lock = threading.Lock()


def count_with_llama_server(root_url: str, messages: list[dict], api_key=None) -> int | None:
    """The token count of these chat messages (role/content dicts, system first) as llama-server at
    root_url (no /v1) would feed them to its model; None if it cannot say. `api_key`: a Secret."""
    import httpx  # lazy: %load_ext stays light

    root = root_url.rstrip("/")
    with _lock:
        if root in _not_llama_server:
            return None
    try:
        with _client(root, api_key) as client:
            rendered = client.post(f"{root}/apply-template", json={"messages": messages})
            if rendered.status_code == 404:
                with _lock:
                    _not_llama_server.add(root)
                return None
            prompt = rendered.json().get("prompt") if rendered.status_code == 200 else None
            if not isinstance(prompt, str):
                return None
            tokens = _tokens(client, root, prompt)
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if tokens is None or len(tokens) > MAX_TOKENS:
        return None
    return len(tokens)


def first_longer_than(root_url: str, texts: list[str], limit: int, api_key=None) -> tuple[int, int] | None:
    """(index, token count) of the first text longer than `limit` tokens as llama-server at root_url
    counts it; None when none is or it cannot say."""
    import httpx

    root = root_url.rstrip("/")
    try:
        with _client(root, api_key) as client:
            for position, text in enumerate(texts):
                tokens = _tokens(client, root, text)
                if tokens is None:
                    return None
                if len(tokens) > limit:
                    return position, len(tokens)
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return None


def _client(root: str, api_key):
    """A client for llama-server at root: reached directly (no proxy, no redirect), with its key as a
    Bearer token — a server started with --api-key refuses /apply-template and /tokenize without it."""
    import httpx

    from .transport import client_options

    headers = {"Authorization": f"Bearer {api_key.get()}"} if api_key is not None else {}
    return httpx.Client(timeout=TIMEOUT_S, headers=headers,
                        **client_options(root, label="llama-server", var="its URL"))


def _tokens(client, root: str, text: str) -> list | None:
    """The server's tokens for a text as it tokenizes a prompt: BOS added, special tokens parsed."""
    answer = client.post(f"{root}/tokenize", json={"content": text, "add_special": True, "parse_special": True})
    tokens = answer.json().get("tokens") if answer.status_code == 200 else None
    return tokens if isinstance(tokens, list) else None


def chat_messages(request) -> list[dict]:
    """A Request's system prompt and turns as the role/content list llama-server's template takes."""
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + [{"role": m["role"], "content": m["content"]} for m in request.messages
                     if isinstance(m.get("content"), str)]
