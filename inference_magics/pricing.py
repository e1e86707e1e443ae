"""Estimated cost of a Claude call, from dated list prices (USD per million tokens).

Prices change; this table is a guide. INFERENCE_PRICES (JSON) overrides or adds entries without
editing code. Models are matched by exact id first, then by family (the longest name contained in
the id). Local models cost nothing per token.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

PRICES_SOURCE = "https://docs.claude.com/en/docs/about-claude/pricing"
PRICES_DATE = "2026-11-30"  # when the table below was last compared with PRICES_SOURCE
# prompt caching, as multiples of the input price: a 5-minute cache write costs 1.25x, a read 0.1x
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
BATCH_DISCOUNT = 0.5  # the Message Batches API bills half of every token price


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float


def _list_price(input_price: float, output_price: float) -> Price:
    return Price(input_price, output_price, input_price * CACHE_WRITE_FACTOR, input_price * CACHE_READ_FACTOR)


PRICES: dict[str, Price] = {
    "opus": _list_price(5.0, 25.0),    # Opus 4.5 / 4.6 / 4.7 / 4.8 / 5
    "sonnet": _list_price(3.0, 15.0),  # Sonnet 3.7 / 4 / 4.5 / 4.6
    "haiku": _list_price(1.0, 5.0),    # Haiku 4.5
    # versions priced apart from their family (the longest name contained in the id wins)
    "opus-4-1": _list_price(15.0, 75.0),         # claude-opus-4-1, claude-opus-4-1-20250805
    "opus-4-0": _list_price(15.0, 75.0),         # claude-opus-4-0 (alias of Opus 4)
    "opus-4-2025": _list_price(15.0, 75.0),      # claude-opus-4-20250514 (Opus 4)
    "3-opus": _list_price(15.0, 75.0),           # claude-3-opus-20240229
    "3-5-haiku": _list_price(0.80, 4.0),         # claude-3-5-haiku-20241022 / -latest
    "3-haiku": Price(0.25, 1.25, 0.30, 0.03),    # claude-3-haiku-20240307 (cache prices as listed)
    "sonnet-5": _list_price(2.0, 10.0),          # Sonnet 5 / 5.5
    "opus-5-5": _list_price(4.0, 20.0),          # Opus 5.5
    "fable": _list_price(10.0, 50.0),            # Fable 5
    "fable-5-1": Price(10.0, 50.0, 12.5, 0.25),  # Fable 5.1 (cache hits $0.25 / MTok)
}


def parse_overrides(var: str, raw: str) -> tuple:
    """INFERENCE_PRICES as ((name, Price), ...); a ConfigError names what is wrong."""
    from .errors import ConfigError

    try:
        table = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{var} is not valid JSON ({exc.msg}) — write e.g. {{\"sonnet\": [3, 15]}}.") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{var} must be a JSON object of model -> prices, e.g. {{\"sonnet\": [3, 15]}}.")
    parsed = []
    for name, value in table.items():
        try:
            if isinstance(value, list) and len(value) == 2:
                price = _list_price(float(value[0]), float(value[1]))
            elif isinstance(value, dict):
                base = _list_price(float(value["input"]), float(value["output"]))
                price = Price(base.input, base.output, float(value.get("cache_write", base.cache_write)),
                              float(value.get("cache_read", base.cache_read)))
            else:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{var}: the price of {name!r} must be [input, output] or {{\"input\": .., \"output\": "
                              "..}} in USD per million tokens.") from None
        if min(price.input, price.output, price.cache_write, price.cache_read) < 0:
            raise ConfigError(f"{var}: the price of {name!r} is negative.")
        parsed.append((str(name), price))
    return tuple(parsed)


def price_for(backend: str, model: str, overrides=None) -> Price | None:
    """The price of a model, or None when it costs nothing per token (local) or is unknown."""
    from .backends import REGISTRY

    if backend not in REGISTRY or not REGISTRY[backend].priced:
        return None
    table = {**PRICES, **dict(overrides or ())}
    if model in table:
        return table[model]
    families = sorted((name for name in table if name in (model or "")), key=len, reverse=True)
    return table[families[0]] if families else None


def estimate_cost(backend: str, model: str, input_tokens: int, output_tokens: int, *, cache_write_tokens: int = 0,
                  cache_read_tokens: int = 0, overrides=None, batch: bool = False) -> float | None:
    """USD for one call. `input_tokens` is the uncached input, as Claude's usage reports it: cache
    writes and reads are counted apart, at their own prices."""
    price = price_for(backend, model, overrides)
    if price is None:
        return None
    cost = (input_tokens * price.input + output_tokens * price.output + cache_write_tokens * price.cache_write
            + cache_read_tokens * price.cache_read) / 1_000_000
    return cost * BATCH_DISCOUNT if batch else cost


def approximate_tokens(text: str) -> int:
    """A stated approximation where no tokenizer answers: about four characters per token (English)."""
    return max(1, (len(text) + 3) // 4) if text else 0
