"""Money before it is spent: estimates of a call or a batch, the caps INFERENCE_BUDGET_USD (per
kernel) and INFERENCE_DAILY_BUDGET_USD (per UTC day, from the history), and the line that asks
before a batch above INFERENCE_CONFIRM_USD starts.

Estimates count input tokens with Claude's token-counting endpoint where asked to and a key is
set, with llama-server's tokenizer where one is up (token_count.py), else approximately (4 characters a token, said so); output is unknown before the answer, so
it is assumed to be --max-tokens, or ASSUMED_OUTPUT_TOKENS when that is unset.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from .backends import REGISTRY
from .errors import InferenceError
from .pricing import BATCH_DISCOUNT, approximate_tokens, estimate_cost

ASSUMED_OUTPUT_TOKENS = 500
APPROXIMATE = "approximate: 4 characters a token"


class BudgetExceeded(InferenceError):
    """A call would pass INFERENCE_BUDGET_USD or INFERENCE_DAILY_BUDGET_USD; nothing was sent."""


@dataclass
class Estimate:
    backend: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int       # assumed: --max-tokens, or ASSUMED_OUTPUT_TOKENS per call
    method: str              # counted_by(backend) or APPROXIMATE
    cost_usd: float | None   # None: no price per token (a local model) or an unknown model

    @property
    def batch_cost_usd(self) -> float | None:
        return None if self.cost_usd is None else self.cost_usd * BATCH_DISCOUNT

    def line(self) -> str:
        calls = f"{self.calls} requests, " if self.calls > 1 else ""
        tokens = f"{calls}≈ {self.input_tokens:,} input tokens ({self.method})"
        if self.cost_usd is None:
            return f"{tokens} on {self.model}: no charge per token"
        return (f"{tokens} + up to {self.output_tokens:,} output tokens on {self.model}: ≈ ${self.cost_usd:.4f}")


def _text_of(prompt: str, system: str | None, messages) -> str:
    return "\n".join([system or ""] + [str(m.get("content", "")) for m in messages or ()] + [prompt or ""])


def estimate(backend: str, model: str, prompts: list[str], *, system=None, messages=None, max_tokens=None,
             settings=None, count: bool = False) -> Estimate:
    """The estimate for sending each prompt once. count=True asks Claude's token counter (one
    request per prompt, no generation); otherwise, or if that fails, the approximation."""
    from . import settings as settings_module

    settings = settings or settings_module.load()
    method, input_tokens = APPROXIMATE, None
    counter = REGISTRY.get(backend)
    if (count and len(prompts) == 1 and counter and counter.supports("count_tokens") and counter.has_key(settings)
            and settings.cache != "replay"):  # replay asks no server anything
        input_tokens = _counted(settings, backend, model, prompts[0], system, messages)
        method = counted_by(backend) if input_tokens is not None else APPROXIMATE
    if input_tokens is None:
        input_tokens = sum(approximate_tokens(_text_of(p, system, messages)) for p in prompts)
    output_tokens = (max_tokens or ASSUMED_OUTPUT_TOKENS) * len(prompts)
    cost = estimate_cost(backend, model, input_tokens, output_tokens, overrides=settings.prices)
    return Estimate(backend, model, len(prompts), input_tokens, output_tokens, method, cost)


def counted_by(backend: str) -> str:
    return f"counted by {REGISTRY[backend].token_counter}"


def _counted(settings, backend, model, prompt, system, messages) -> int | None:
    """The backend's own count (Claude's token counter, llama-server's tokenizer), or None. The
    text goes only where the prompt itself may go: counting is sending."""
    from . import policy
    from .backends import get_backend
    from .backends.base import Request

    turns = tuple(messages or ()) + (({"role": "user", "content": prompt},) if prompt else ())
    try:
        policy.check(policy.outgoing_text(prompt, system, messages), backend, model, settings)  # what a send scans
        return get_backend(backend, settings).count_tokens(Request(model=model, messages=turns, system=system))
    except InferenceError:
        return None  # the approximation stands in, and says so


# --- spend and caps ----------------------------------------------------------------------------
# "reserved": the estimates of calls checked against a cap and not finished yet. A check and its
# reservation are one step under the lock, so concurrent calls (--map rows) cannot all pass a cap
# that only one of them fits.
_spent = {"usd": 0.0, "reserved": 0.0}
_spent_lock = threading.RLock()


def add_spend(cost_usd: float | None) -> None:
    """Count a finished call's cost against this kernel's budget."""
    if cost_usd:
        with _spent_lock:
            _spent["usd"] += cost_usd


def settle(reserved: float, cost_usd: float | None, *, unknown: bool = False) -> None:
    """A checked call ended: release its reservation and count what it cost. When its cost is
    unknown (interrupted or failed after text arrived: the counts never came), the reservation —
    the estimate it was let through with — is counted instead of nothing."""
    with _spent_lock:
        _spent["reserved"] = max(0.0, _spent["reserved"] - reserved)
        _spent["usd"] += cost_usd if cost_usd is not None else (reserved if unknown else 0.0)


def kernel_spend() -> float:
    with _spent_lock:
        return _spent["usd"]


def _in_flight() -> float:
    with _spent_lock:
        return _spent["reserved"]


def today_spend(settings) -> float | None:
    """Spent since 00:00 UTC today, from the history (None when the history is off)."""
    from .history import store_for

    store = store_for(settings)
    if store is None:
        return None
    midnight = datetime.now(timezone.utc).strftime("%Y-%m-%dT00:00:00")
    return store.cost_since(midnight)


def check(settings, backend: str, model: str, prompt: str, *, system=None, messages=None, max_tokens=None) -> float:
    """Refuse (BudgetExceeded, one line with the spend so far) a call that would pass a cap; else
    reserve its estimate until `settle` and return the amount reserved (0 without a cap)."""
    if settings.budget_usd is None and settings.daily_budget_usd is None:
        return 0.0
    if max_tokens is None and backend in REGISTRY:  # what the request will allow, not a guess below it
        max_tokens = REGISTRY[backend].default_max_tokens
    cost = estimate(backend, model, [prompt], system=system, messages=messages, max_tokens=max_tokens,
                    settings=settings).cost_usd
    if cost is None and backend in REGISTRY and REGISTRY[backend].priced:
        raise BudgetExceeded(
            f"refused: {model} has no price in pricing.py, so a budget cannot be kept with it — add it to "
            "INFERENCE_PRICES (USD per million tokens) or use a priced model.")
    with _spent_lock:
        refuse_over_budget(settings, cost, model, "this call")
        if cost:
            _spent["reserved"] += cost
    return cost or 0.0


def refuse_over_budget(settings, cost: float | None, model: str, what: str) -> None:
    """Raise BudgetExceeded if spending `cost` now would pass a cap."""
    if not cost:
        return  # a local model: nothing to spend
    if settings.budget_usd is not None:
        spent = kernel_spend() + _in_flight()
        if spent + cost > settings.budget_usd:
            raise BudgetExceeded(
                f"refused: {what} (≈ ${cost:.4f} on {model}) would pass INFERENCE_BUDGET_USD=${settings.budget_usd:.2f} "
                f"— this kernel has spent ${spent:.4f} so far; raise the budget or use a local model.")
    if settings.daily_budget_usd is not None:
        spent = today_spend(settings)
        if spent is None:
            spent = kernel_spend()
        spent += _in_flight()
        if spent + cost > settings.daily_budget_usd:
            raise BudgetExceeded(
                f"refused: {what} (≈ ${cost:.4f} on {model}) would pass INFERENCE_DAILY_BUDGET_USD="
                f"${settings.daily_budget_usd:.2f} — ${spent:.4f} spent today (UTC) so far; raise it or wait until "
                "tomorrow, or use a local model.")


def confirmation_needed(settings, found: Estimate, *, batch: bool = False) -> str | None:
    """The question to ask before starting, when the estimate is above INFERENCE_CONFIRM_USD
    (for --batch-api the estimate is already at the batch's half price)."""
    cost = found.batch_cost_usd if batch else found.cost_usd
    if cost is None or cost <= settings.confirm_usd:
        return None
    half = (f"; with --batch-api it would be about ${found.batch_cost_usd:.2f} (half price, results within 24 h)"
            if found.backend in REGISTRY and REGISTRY[found.backend].supports("batch") and not batch else "")
    return (f"estimated ${cost:.2f}, above INFERENCE_CONFIRM_USD=${settings.confirm_usd:.2f}{half}. "
            "Start it? [y/N] ")
