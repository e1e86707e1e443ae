"""HTTP to our servers: a server on this machine is reached directly, and nobody is redirected.

"Stays on this machine" is only true when a loopback URL is dialled straight: with HTTP_PROXY,
http_proxy or ALL_PROXY set (common on corporate laptops) and no NO_PROXY, httpx would hand the
request, prompt and all, to the proxy's host; and a "local" server answering 307 would make a
client re-send the prompt to wherever `Location` says. So every client for Ollama, an
OpenAI-compatible server and the embedded llama-server:

* ignores the proxy environment when the URL is on this machine (httpx `trust_env=False`); a
  server elsewhere keeps it, as corporate networks need (Claude's SDK keeps it too);
* never follows a redirect: any 3xx is one line naming where it pointed, and nothing is sent there.
"""
from __future__ import annotations

import re

from .backends import is_loopback
from .errors import BackendError


class RedirectRefused(BackendError):
    """A server answered 3xx; we did not follow it."""


def shown_location(location: str) -> str:
    """A Location header as we may show it: untrusted server text, so no credentials, no query
    (it may hold a key), no control characters, and short."""
    text = re.sub(r"[\x00-\x1f\x7f]", "", location or "").strip()
    text = re.sub(r"//[^/@\s]*@", "//***@", text)
    text = re.sub(r"[?#].*$", "", text)
    return (text[:117] + "...") if len(text) > 120 else (text or "(no Location)")


def redirect_error(label: str, url: str, status: int, location: str, var: str) -> RedirectRefused:
    why = ("a server on this machine should not redirect" if is_loopback(url) else
           "the request goes only where you pointed it")
    return RedirectRefused(f"{label} at {url} answered a redirect (HTTP {status}) to {shown_location(location)}; "
                           f"refusing to follow it — {why}; check {var}.")


def client_options(url: str, *, label: str, var: str) -> dict:
    """httpx.Client keyword arguments for a client of the server at `url` (the `ollama` client
    passes them on to httpx as well)."""
    def refuse_redirects(response) -> None:
        if 300 <= response.status_code < 400:
            response.close()
            raise redirect_error(label, url, response.status_code, response.headers.get("location", ""), var)

    return dict(trust_env=not is_loopback(url), follow_redirects=False, event_hooks={"response": [refuse_redirects]})


def get(url: str, *, label: str, var: str, timeout):
    """One GET (health checks): directly when on this machine, never redirected."""
    import httpx

    with httpx.Client(timeout=timeout, **client_options(url, label=label, var=var)) as client:
        return client.get(url)

