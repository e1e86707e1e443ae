"""Is this prompt private? Two signals, kept apart because they are switched apart:

* privacy words ("confidential", "internal only", "don't send" ...) — part of keyword routing,
  which INFERENCE_ENABLE_ROUTING=false turns off;
* secret content (private keys, API tokens, passwords, credentialed connection strings, national
  ID and card numbers) — a guard that is always on.

Pure functions over text; false positives are cheap (the prompt stays local), misses are not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_PRIVACY_WORDS = re.compile(
    r"\b(private|privately|confidential|proprietary|internal[ -]only|internal use only|nda|"
    r"non[- ]disclosure|personal data|personally identifiable|pii|gdpr|hipaa|sensitive (?:data|information|code)|"
    r"trade secrets?|locally|local only|offline|on[- ]prem(?:ise)?s?|"
    r"(?:do ?n[o']t|do not|never) (?:send|share|upload)|(?:stay|stays|keep it|kept) (?:local|on (?:this|my) machine)|"
    r"not leave (?:this|my|the) (?:machine|computer|laptop|network))\b",
    re.IGNORECASE,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_number(match: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", match.group(0))
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits)


# (what it is, pattern, optional extra check)
_SECRETS: tuple[tuple[str, re.Pattern, object], ...] = (
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"), None),
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{10,}"), None),
    ("an API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"), None),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), None),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"), None),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), None),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), None),
    ("a Stripe key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"), None),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), None),
    ("a bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/\-]{16,}=*"), None),
    ("a connection string with credentials",
     re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:[^\s@/]+@[^\s/]+", re.IGNORECASE), None),
    # names may carry a prefix or suffix (DB_PASSWORD, POSTGRES_PASSWORD_FILE is not a value though) and
    # may be quoted as in JSON or YAML ("password": "..."); `\b` would miss the `_` joins
    ("a password", re.compile(
        r"(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])*(?:password|passwd|pwd|passphrase)['\"]?\s*(?:[:=]|\bis\b)\s*"
        r"['\"]?(?!\*+['\"]?(?:\s|$))(?!\$\{)[^\s'\",}]{4,}", re.IGNORECASE), None),
    ("a secret or token assignment", re.compile(
        r"(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])*(?:api[_-]?key|secret(?:[_-]?(?:access)?[_-]?key)?|access[_-]?token|"
        r"auth[_-]?token|client[_-]?secret|token)['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9_\-./+=]{16,}", re.IGNORECASE), None),
    ("a US social security number", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"), None),
    ("a UK national insurance number", re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), None),
    ("an IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"), None),
    ("a card number", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _card_number),
)


@dataclass(frozen=True)
class PrivacyFinding:
    kind: str    # "secret" or "keyword"
    detail: str  # what was found, safe to show (never the secret itself)


def find_secret(text: str) -> PrivacyFinding | None:
    for label, pattern, check in _SECRETS:
        for match in pattern.finditer(text):
            if check is None or check(match):
                return PrivacyFinding("secret", label)
    return None


def find_privacy_word(text: str) -> PrivacyFinding | None:
    match = _PRIVACY_WORDS.search(text)
    return PrivacyFinding("keyword", f"the word {match.group(0).lower()!r}") if match else None


def classify(text: str, *, keywords: bool = True) -> PrivacyFinding | None:
    """The first reason this text must stay on the machine, or None."""
    return find_secret(text) or (find_privacy_word(text) if keywords else None)


def redact_secrets(text: str) -> str:
    """The text with every secret replaced by `[redacted: <what it was>]`, for text we keep (history).

    A private key's header is only the start of the secret, so the whole block (to its END line,
    or to the end of the text when cut off) goes."""
    for label, pattern, check in _SECRETS:
        if label == "a private key":
            pattern = re.compile(pattern.pattern + r".*?(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)", re.DOTALL)
        text = pattern.sub(lambda m: f"[redacted: {label}]" if check is None or check(m) else m.group(0), text)
    return text
