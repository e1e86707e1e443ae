"""Estimated cost of a Claude call, from list prices (USD per million input / output tokens).

Prices change; this table is a guide, overridable by editing PRICES_PER_MTOK at run time.
Models are matched by family when their exact id is not listed.
"""
from __future__ import annotations

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "opus": (5.0, 25.0),    # Opus 4.5 / 4.6
    "sonnet": (3.0, 15.0),  # Sonnet 4.5 / 4.6
    "haiku": (1.0, 5.0),    # Haiku 4.5
}


def estimate_cost(backend: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    if backend != "anthropic":
        return None  # local models cost nothing per token
    price = PRICES_PER_MTOK.get(model) or next(
        (p for family, p in PRICES_PER_MTOK.items() if family in model), None)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
