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
    root_url (no /v1) would feed them to its model; None if it cannot say. `api_key` (a Secret) is
    sent as a Bearer token: a server started with --api-key refuses /apply-template and /tokenize
    without it (only /health is public)."""
    import httpx  # lazy: %load_ext stays light

    root = root_url.rstrip("/")
    with _lock:
        if root in _not_llama_server:
            return None
    try:
        from .transport import client_options  # a loopback server is reached directly: no proxy, no redirect

        headers = {"Authorization": f"Bearer {api_key.get()}"} if api_key is not None else {}
        with httpx.Client(timeout=TIMEOUT_S, headers=headers,
                          **client_options(root, label="llama-server", var="its URL")) as client:
            rendered = client.post(f"{root}/apply-template", json={"messages": messages})
            if rendered.status_code == 404:
                with _lock:
                    _not_llama_server.add(root)
                return None
            prompt = rendered.json().get("prompt") if rendered.status_code == 200 else None
            if not isinstance(prompt, str):
                return None
            # as the server tokenizes a chat prompt: its BOS added, the template's special tokens parsed
            answer = client.post(f"{root}/tokenize", json={"content": prompt, "add_special": True,
                                                         "parse_special": True})
            tokens = answer.json().get("tokens") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if not isinstance(tokens, list) or len(tokens) > MAX_TOKENS:
        return None
    return len(tokens)


def chat_messages(request) -> list[dict]:
    """A Request's system prompt and turns as the role/content list llama-server's template takes."""
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + [{"role": m["role"], "content": m["content"]} for m in request.messages
                     if isinstance(m.get("content"), str)]
