"""Waiting to retry a rate-limited or busy server: how long (the server's retry-after, else a
backoff), within one total budget per request (INFERENCE_MAX_RETRY_WAIT_S), and the line that
says when to try again once a server asks for more than the budget allows."""
from __future__ import annotations

import email.utils
import random
import time
from datetime import datetime, timedelta, timezone

INITIAL_BACKOFF_S, MAX_BACKOFF_S = 0.5, 8.0  # as the official SDKs back off without a retry-after


def retry_after(headers) -> float | None:
    """Seconds the server asks us to wait (retry-after-ms, retry-after as seconds or an HTTP
    date), or None when it does not say (or says something unreadable)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if name == "retry-after" else None
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if seconds == seconds and seconds != float("inf"):  # not NaN, not infinite
            return max(seconds, 0.0)
    return None


def backoff(attempt: int) -> float:
    """0.5 s doubling to 8 s, with jitter (attempt 0 is the first retry)."""
    return min(INITIAL_BACKOFF_S * 2 ** attempt, MAX_BACKOFF_S) * (1 - 0.25 * random.random())


def span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.0f} h"


def after(seconds: float) -> str:
    """When a wait of `seconds` from now ends, in UTC."""
    return f"{datetime.now(timezone.utc) + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S} UTC"


class RetryBudget:
    """The retries and the total waiting one request may spend."""

    def __init__(self, retries: int, max_wait_s: float):
        self.retries, self.max_wait_s = retries, max_wait_s
        self.attempt, self.waited = 0, 0.0

    def next_wait(self, headers) -> tuple[float | None, float | None]:
        """(seconds to wait before the next attempt, None) — or (None, seconds the server asks
        for) when the retries are spent or the wait would pass the budget."""
        asked = retry_after(headers)
        wait = asked if asked is not None else backoff(self.attempt)
        if self.attempt >= self.retries or self.waited + wait > self.max_wait_s:
            return None, asked
        self.attempt += 1
        self.waited += wait
        return wait, None

    def gave_up(self, asked: float | None) -> str:
        """How a one-line error ends once we stop retrying: why, and when to try again."""
        if asked is not None and self.waited + asked > self.max_wait_s:
            return (f"asks to wait {span(asked)}, more than INFERENCE_MAX_RETRY_WAIT_S ({self.max_wait_s:g} s) "
                    f"allows — try again after {after(asked)}.")
        if self.attempt < self.retries:
            tried = f"another wait would pass INFERENCE_MAX_RETRY_WAIT_S ({self.max_wait_s:g} s)"
        else:
            tried = f"still refused after {self.attempt} retries" if self.attempt else "retries are off"
        if asked is not None and asked >= 1:
            return f"{tried} — try again after {after(asked)}."
        return f"{tried} — wait a minute and run the cell again."
