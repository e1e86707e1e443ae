"""Is this prompt private? Two signals, kept apart because they are switched apart:

* privacy words ("confidential", "do not distribute", "Vertraulich", "機密" ...) — part of keyword
  routing, which INFERENCE_ENABLE_ROUTING=false turns off (inference_magics/privacy_words.py);
* secret content (private keys, API tokens, passwords, credentialed URLs, national ID, card and
  bank numbers) — a guard that is always on (inference_magics/secret_scan.py, built on detect-secrets).

Pure functions over text, linear in its length. A finding says what was found and where (line and
column, 1-based, in the text as given), never the value. Misses are what we guard against; a false
alarm is not free either, since a private prompt with an explicit cloud model is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .secret_scan import Span


def _secret_scan():
    """The scanner, imported on first use: building its tables takes ~40 ms that `%load_ext` should not pay."""
    from . import secret_scan

    return secret_scan


@dataclass(frozen=True)
class PrivacyFinding:
    kind: str    # "secret" or "keyword"
    detail: str  # what was found, safe to show (never the secret itself)
    line: int = 0    # where it starts, 1-based; 0: unknown
    column: int = 0

    @property
    def where(self) -> str:
        """'at line 3, column 12', or '' when the position is unknown."""
        return f"at line {self.line}, column {self.column}" if self.line else ""

    def describe(self) -> str:
        """'a password at line 3, column 12' — what and where, never the value."""
        return f"{self.detail} {self.where}".strip()


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def find_secrets(text: str) -> list[Span]:
    """Every secret in `text` (start, end, what), in order."""
    return _secret_scan().scan(text)


def cut_point(text: str, limit: int) -> int:
    """Where to cut `text` to keep at most `limit` characters without keeping *part* of a secret:
    the start of a secret the cut would split, else `limit`. Text is shortened (a `{var}`, a table
    cell, a tool result, a failing cell) before the policy judges what is sent; a secret cut in two
    is no longer a shape the detector knows, yet its first characters would still leave."""
    if len(text) <= limit:
        return len(text)
    limit = max(limit, 0)
    for span in find_secrets(text[:limit + 4096]):  # secrets are short; a PEM header is seen whole before the cut
        if span.start < limit < span.end:
            return span.start
    return limit


def find_secret(text: str) -> PrivacyFinding | None:
    spans = _secret_scan().scan(text)
    if not spans:
        return None
    first = spans[0]
    return PrivacyFinding("secret", first.label, *_position(text, first.start))


def find_privacy_word(text: str) -> PrivacyFinding | None:
    from . import privacy_words  # imported on first use, as the scanner is (~60 ms of tables)

    found = privacy_words.find(text)
    if found is None:
        return None
    start, _, phrase = found
    shown = " ".join(phrase.split())[:60]
    return PrivacyFinding("keyword", f"the words {shown!r}" if " " in shown else f"the word {shown!r}",
                          *_position(text, start))


def classify(text: str, *, keywords: bool = True) -> PrivacyFinding | None:
    """The first reason this text must stay on the machine, or None."""
    return find_secret(text) or (find_privacy_word(text) if keywords else None)


# labels that say only where a secret sits, not what it is: a named provider's label is preferred
_GENERIC = frozenset({"a secret or token assignment", "an API key", "a password", "a bearer token",
                      "an authorization header", "an API key header"})


def redact_secrets(text: str) -> str:
    """The text with every secret replaced by `[redacted: <what it was>]`, for text we keep (history).

    One scan; overlapping findings merge into one redaction. A private key's header is only the start
    of the secret, so the whole block (to its END line, or to the end of the text when cut off) goes."""
    secret_scan = _secret_scan()
    spans = secret_scan.scan(text)
    if not spans:
        return text
    block_end = secret_scan.block_ends(text)
    clusters: list[list] = []  # [start, end, label, length of the span that named it]
    for span in spans:
        end = max(span.end, block_end(span)) if span.label == "a private key" else span.end
        if clusters and span.start < clusters[-1][1]:  # overlaps the previous redaction: extend it
            cluster = clusters[-1]
            cluster[1] = max(cluster[1], end)
            narrower = span.end - span.start < cluster[3] or (
                span.end - span.start == cluster[3] and cluster[2] in _GENERIC and span.label not in _GENERIC)
            if narrower:  # the narrowest, most specific finding says best what it is ("an Anthropic API key")
                cluster[2], cluster[3] = span.label, span.end - span.start
            continue
        clusters.append([span.start, end, span.label, span.end - span.start])
    out, last = [], 0
    for start, end, label, _ in clusters:
        out.append(text[last:start])
        out.append(f"[redacted: {label}]")
        last = end
    out.append(text[last:])
    return "".join(out)
