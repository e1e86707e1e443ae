"""Where the secrets are in a text: one linear scan, the spans it returns, each with what it is.

Provider token shapes come from detect-secrets (Yelp): the regexes of its plugins, taken at first
use from each plugin's `denylist`. Its own scanner is built for files, line by line, with every
plugin and filter; on prose it takes ~13 s per MB and flags ordinary words (its keyword and
entropy plugins), so we run only the plugins' patterns, in one pass each over the whole text.

Our own rules cover what the library lacks: passwords and credentials in the ways people write
them (labels in en/de/fr/es/it/pt/nl and more, `curl -u`, auth headers, URL userinfo), provider
shapes it does not know, key bodies without their header, base64/hex-wrapped secrets (decoded
and scanned again), and PII with checksums (cards, SSNs, IBANs, national IDs).

Every pattern is linear: no nested unbounded quantifiers; anything that scans for a value does so
with a bounded count, or in Python after a regex anchored on a keyword. tests/test_privacy_detector.py
runs every pattern on adversarial megabyte inputs.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    label: str  # what it is, safe to show: "a password", "a GitHub token"


@dataclass(frozen=True)
class Rule:
    label: str
    pattern: re.Pattern
    group: int | str = 0                               # the part of the match that is the secret
    check: Callable[[re.Match], bool] | None = None    # an extra test (a checksum, not a placeholder...)


# --- from detect-secrets ---------------------------------------------------------------------------
# plugin class -> our label; plugins left out: the keyword and high-entropy ones (they flag prose and
# hashes; our labelled rules replace them), the public-IP one (not a secret), and npm's (its
# `\/\/.+\/:` backtracks quadratically on a long line with many `//`; our `_authToken` rule replaces it).
_LIBRARY_LABELS = {
    "ArtifactoryDetector": "an Artifactory credential",
    "AWSKeyDetector": "an AWS access key",
    "AzureStorageKeyDetector": "an Azure storage account key",
    "BasicAuthDetector": "a URL with a password",
    "CloudantDetector": "a Cloudant credential",
    "DiscordBotTokenDetector": "a Discord bot token",
    "GitHubTokenDetector": "a GitHub token",
    "GitLabTokenDetector": "a GitLab token",
    "IbmCloudIamDetector": "an IBM Cloud IAM key",
    "IbmCosHmacDetector": "an IBM COS HMAC credential",
    "JwtTokenDetector": "a JSON web token",
    "MailchimpDetector": "a Mailchimp API key",
    "OpenAIDetector": "an OpenAI API key",
    "PrivateKeyDetector": "a private key",
    "PypiTokenDetector": "a PyPI token",
    "SendGridDetector": "a SendGrid API key",
    "SlackDetector": "a Slack token",
    "SoftlayerDetector": "a SoftLayer credential",
    "SquareOAuthDetector": "a Square OAuth secret",
    "StripeDetector": "a Stripe key",
    "TelegramBotTokenDetector": "a Telegram bot token",
    "TwilioKeyDetector": "a Twilio key",
}
_LIBRARY_SKIPPED = {"KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector",
                    "NpmDetector"}


def _library_rules() -> list[Rule]:
    """detect-secrets' plugin patterns. Imported here, at the first scan, never at %load_ext (~0.25 s)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    rules = []
    for plugin in get_mapping_from_secret_type_to_class().values():
        name = plugin.__name__
        if name in _LIBRARY_SKIPPED or not hasattr(plugin, "denylist"):
            continue
        label = _LIBRARY_LABELS.get(name) or f"a {plugin.secret_type}"
        check = _jwt_ok if name == "JwtTokenDetector" else None
        if name == "BasicAuthDetector":
            check = _url_password_ok
        for pattern in plugin.denylist:
            # the secret is the pattern's first group where it has one (e.g. the password of a URL)
            rules.append(Rule(label, pattern, 1 if pattern.groups else 0, check))
    return rules


def _jwt_ok(match: re.Match) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    token = match.group(0)
    return token.count(".") >= 2 and JwtTokenDetector.is_formally_valid(token)


# --- small checks --------------------------------------------------------------------------------------
def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _card(match: re.Match) -> bool:
    raw = match.group(0)
    seps = {ch for ch in raw if not ch.isdigit()}
    if len(seps) > 1:
        return False  # one kind of separator: "4111 1111.1111-1111" is not how a card is written
    digits = _digits(raw)
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2 or not _luhn_ok(digits):
        return False
    # an issuer's prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro): a 13-digit
    # millisecond timestamp that happens to pass Luhn is not a card
    two, four = int(digits[:2]), int(digits[:4])
    return (digits[0] == "4" or 51 <= two <= 55 or 2221 <= four <= 2720 or two in (34, 37, 36, 38, 35, 62, 65)
            or 300 <= int(digits[:3]) <= 305 or digits.startswith("6011") or 644 <= int(digits[:3]) <= 649
            or two in (50, 56, 57, 58, 63, 67))


def _ssn(match: re.Match) -> bool:
    digits = _digits(match.group("ssn"))
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18,
    "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def _iban(match: re.Match) -> bool:
    compact = re.sub(r"[\s\-]", "", match.group(0)).upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _french_nir(match: re.Match) -> bool:
    digits = _digits(match.group(0))
    return len(digits) == 15 and 97 - int(digits[:13]) % 97 == int(digits[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _spanish_id(match: re.Match) -> bool:
    raw = match.group(0).upper().replace("-", "")
    number = raw[:-1].replace("X", "0").replace("Y", "1").replace("Z", "2")
    return number.isdigit() and _DNI_LETTERS[int(number) % 23] == raw[-1]


def _cpf(match: re.Match) -> bool:
    digits = [int(d) for d in _digits(match.group(0))]
    if len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1))) * 10 % 11 % 10
        if check != digits[n]:
            return False
    return True


def _aadhaar(match: re.Match) -> bool:  # Verhoeff check digit
    d = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
         [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
         [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
         [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
         [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
         [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
    digits = _digits(match.group(0))
    if digits[0] in "01":
        return False
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = d[c][p[i % 8][int(ch)]]
    return c == 0


def _codice_fiscale(match: re.Match) -> bool:
    code = match.group(0).upper()
    odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
    total = 0
    for i, ch in enumerate(code[:15]):
        value = int(ch) if ch.isdigit() else ord(ch) - 65
        total += odd[value] if i % 2 == 0 else value
    return chr(65 + total % 26) == code[15]


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _classes(value: str) -> int:
    return sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value),
                any(not c.isalnum() for c in value)))


def _random_looking(value: str, minimum: int = 16) -> bool:
    """A token that looks generated rather than written: long, mixed, and not a word or identifier."""
    if len(value) < minimum:
        return False
    if re.fullmatch(r"[0-9a-fA-F]+", value):  # hex: an encryption key or a token, once something labels it
        return len(value) >= 16 and len(set(value)) > 4
    if re.fullmatch(r"[a-z_]+|[A-Z_]+|[a-z]+(?:[A-Z][a-z]+)+", value):
        return False  # an identifier or constant name
    return _classes(value) >= 2 and _entropy(value) >= 3.0


# --- values after a label --------------------------------------------------------------------------------
# what a placeholder, a reference or code looks like where a value would go
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
        \**|x{3,}|\.{3}|…|-+|_+|<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}|\{\{.*\}\}|\$\{?[\w:.\-]*\}?|%\(?\w*\)?s?|%\w+%
        |(?:your|my|the|some|example|sample|dummy|fake|test|placeholder|changeme|change[_-]?me|redacted|removed|hidden
            |secret|password|passwd|token|apikey|api[_-]?key|none|null|nil|true|false|undefined|empty|required
            |optional|str|string|bytes|int|bool|any|text|value|required|todo|tbd|xxx|env|default|\w*here)
        (?:[_\-\s]?(?:api[_-]?)?(?:key|token|secret|password|pass|value|here|goes[_\-\s]here|name|id|\d))*
      )$""")
# a call, an attribute, an index, an environment lookup: `getpass()`, `os.environ["X"]`, `form.password.data`
_CODE_VALUE = re.compile(r"""^(?:[A-Za-z_][\w]*(?:(?:\.|::|->)[A-Za-z_]\w*)*\s*[(\[]|[A-Za-z_]\w*(?:\.|::|->)[A-Za-z_]\w*|
                             process\.env|os\.|self\.|this\.|new\s|await\s|lambda\b|function\b|\$[A-Za-z_{(])""", re.VERBOSE)
# words that continue a sentence about a password rather than give one: "the password is stored as a hash"
_PROSE_WORDS = frozenset(
    "incorrect wrong correct required invalid valid expired empty missing weak strong too not case hashed encrypted "
    "stored saved set changed reset same different secure insecure optional mandatory needed necessary blank visible "
    "hidden long short shown sent used generated rotated wrong unknown forgotten lost displayed masked protected "
    "falsch richtig abgelaufen leer incorrecte incorrect correcte vide expiré incorrecta vacía errata vuota "
    "incorreta vazia onjuist leeg".split())
_QUOTES = {"'": "'", '"': '"', "`": "`", "“": "”", "‘": "’", "«": "»", "„": "“"}
_VALUE_STOP = re.compile(r"[\s,;)}\]<>]|$")


def _value_after(text: str, pos: int, *, phrase: bool = False) -> tuple[int, int, bool] | None:
    """The value that starts at `pos`: (start, end, quoted). Quoted values run to their closing quote
    (a multi-word passphrase is one value); a bare value to the next space, comma or bracket, or — for a
    passphrase — to the end of its sentence. Bounded: nothing here looks further than 256 characters."""
    if pos >= len(text):
        return None
    opening = text[pos]
    if opening in _QUOTES:
        close = text.find(_QUOTES[opening], pos + 1, pos + 257)
        newline = text.find("\n", pos + 1, pos + 257)
        if close == -1 or (newline != -1 and newline < close):
            return None
        return (pos + 1, close, True) if close > pos + 1 else None
    window = text[pos:pos + 256]
    if phrase:
        end = re.search(r"[.;!?](?:\s|$)|\n|$", window).start()
    else:
        end = _VALUE_STOP.search(window).start()
    value = window[:end].rstrip(".:!?'\"`")
    return (pos, pos + len(value), False) if value else None


def _is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip())) or bool(_CODE_VALUE.match(value))


# labels: the word that names a secret, in the languages people write them in. Matched
# case-insensitively; `(?<![^\W\d_])` keeps "compass" or "monkey" from counting ("DB_PASS", "dbPass" do)
_PASSWORD_WORDS = (r"pass(?:word|wd|wort|phrase|code|wrd)?s?|pwd|pw|psk|kennwort|mot[ _-]de[ _-]passe|mdp|"
                   r"contrase(?:ñ|n)a|clave(?:[ _-]de[ _-]acceso)?|senha|wachtwoord|parola[ _-]d['’]ordine|"
                   r"пароль|パスワード|密码|密碼|비밀번호|암호|pin(?:[ _-]?code)?|passcode")
_SECRET_WORDS = (r"secret|token|api[ _-]?key|apikey|access[ _-]?key|private[ _-]?key|secret[ _-]?key|"
                 r"client[ _-]?secret|auth(?:[ _-]?(?:key|token|code))?|credentials?|cred|key|sig|signature|"
                 r"session[ _-]?(?:id|key|token|cookie)|cookie|bearer|webhook[ _-]?secret|signing[ _-]?secret|"
                 r"sharedaccesskey|accountkey|geheimnis|schlüssel|cl[ée]|chiave|llave|chave|sleutel|ключ|токен")
# what may follow the name inside one identifier (DB_PASSWORD_PROD, apiKeyValue); "_FILE", "_URL",
# "_RESET", "_HASH" and the like name something else and are left out
_SUFFIX = r"(?:[_\-.]?(?:id|value|val|str|string|b64|base64|hex|enc|plain|raw|prod|production|dev|test|live|main|\d{1,2}))?"
_NAME_END = r"(?![\w])"
_LABEL = re.compile(
    rf"(?i)(?P<name>(?<![^\W\d_])(?:(?P<pw>{_PASSWORD_WORDS})|(?P<sec>{_SECRET_WORDS})){_SUFFIX}{_NAME_END}|"
    rf"(?<=[a-z0-9_])(?:(?P<pw2>Pass(?:word|wd|phrase)?|PASS(?:WORD|WD|PHRASE)?)|(?P<sec2>Secret|Token|Key|Sig|"
    rf"SECRET|TOKEN|KEY))(?-i:{_SUFFIX}){_NAME_END})"
    # the separator: = : => := ->, an optional closing quote or bracket before it, or words (is, ist, est ...),
    # or "for <something> is" ("the password for the staging db is ...")
    r"(?P<sep>['\"\]]{0,2}[ \t]{0,3}(?:=>|:=|->|::|[:=])[ \t]{0,3}|>|['\"][ \t]{0,3},[ \t]{0,3}(?=['\"])|"
    r"\s{1,3}(?:(?:for|to|of|für|zu|pour|de|du|des|per|para|voor|van|del|da|do|della|dello)\s[^\n]{1,60}?\s)?"
    r"(?:is|are|was|ist|lautet|sind|est|c'est|es|son|è|é|são|=|:)[ \t]{0,2}:?[ \t]{1,3}(?:now\s|jetzt\s|still\s)?"
    r"|\s{1,3}(?=['\"“‘«])"
    # loose: "the API key you asked for: X", "password X" (netrc); only a random-looking value counts then
    r"|(?P<loose>[^\n:=]{0,40}?:[ \t]{1,3}|[ \t]{1,3}))",
)
_LABEL_WORDS = re.compile(r"(?i)^(?:is|are|the|this|that|a|an|not|now|still|set|also|in|on|at|to|for|and|or|of|"
                          r"ist|der|die|das|est|le|la|es|el|è|il|é|o|a|de|het|een)$")


def _labelled(text: str) -> Iterable[Span]:
    for match in _LABEL.finditer(text):
        password = bool(match.group("pw") or match.group("pw2"))
        name = match.group("name").lower()
        found = _value_after(text, match.end(), phrase="phrase" in name or "satz" in name)
        if found is None:
            continue
        start, end, quoted = found
        value = text[start:end]
        if match.group("sep") == ">":  # <password>value</password>
            close = text.find("<", start, start + 257)
            if close == -1:
                continue
            end, value = close, text[start:close]
        if not value or _is_placeholder(value) or _LABEL_WORDS.match(value):
            continue
        if value.lower().replace("_", "").replace("-", "") in name.replace("_", "").replace("-", "").replace(" ", ""):
            continue  # password=password, token=token
        if "\n" in value:
            continue
        natural = not match.group("loose") and match.group("sep").strip()[:1].isalpha()
        if match.group("loose") is not None:  # only a token that looks generated, not a word, path or URL
            if (not _random_looking(value, 8 if password else 16) or " " in value or "://" in value
                    or value[0] in "/-.~" or not (any(c.isdigit() for c in value) or _classes(value) >= 3)):
                continue
        elif natural and not quoted and value.isalpha() and (
                value.lower() in _PROSE_WORDS or re.match(r"[ \t]+[a-z]", text[end:end + 3])):
            continue  # "the password is stored as a salted hash"
        if password:
            plain = not quoted and re.fullmatch(r"[a-z_]+", value)
            if len(value) < 4 or (plain and ("_" in value or match.group("sep").strip() in ("=", ":") and
                                             match.group("sep") != match.group("sep").strip()
                                             and re.search(r"[a-z]_|^[a-z]+$", value) and len(value) < 9)):
                continue  # `password = pw`, `password=user_password`: a variable, not a value
            yield Span(start, end, "a password")
        elif _random_looking(value, 16 if name not in ("key", "sig", "cookie", "cred", "auth") else 20) or (
                quoted and _random_looking(value, 12)):
            yield Span(start, end, "a secret or token assignment")


# --- our own provider shapes and where a credential goes ---------------------------------------------------
_B64 = r"A-Za-z0-9+/"
_RULES: tuple[Rule, ...] = (
    Rule("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----")),
    Rule("a private key", re.compile(r"PuTTY-User-Key-File-\d: *[\w-]+")),
    Rule("a private key", re.compile(r"Private-Lines: *\d+\s*\n?[" + _B64 + r"=\s]{20,}")),
    Rule("a private key", re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")),
    Rule("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{10,300}")),
    Rule("an API key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|or-v1-|live-)?[A-Za-z0-9_\-]{20,300}")),
    Rule("an AWS access key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    Rule("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})")),
    Rule("a GitLab token", re.compile(r"\bgl(?:pat|dt|ft|soat|rt|cbt|ptt|agent|oas)-[A-Za-z0-9_\-]{20,64}")),
    Rule("a Slack token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,255}")),
    Rule("a Slack token", re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,255}")),
    Rule("a Slack webhook URL", re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{20,200}",
                                           re.IGNORECASE)),
    Rule("a Discord webhook URL", re.compile(r"discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_\-]{30,100}")),
    Rule("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    Rule("a Google OAuth token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,400}")),
    Rule("a Stripe key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,255}")),
    Rule("a Stripe webhook secret", re.compile(r"\bwhsec_[A-Za-z0-9+/=]{20,100}")),
    Rule("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,64}\b")),
    Rule("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    Rule("an npm token", re.compile(r":_(?:authToken|auth|password)\s*=\s*(?P<v>[^\s$]{8,300})"), "v"),
    Rule("a SendGrid API key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,64}")),
    Rule("a Mailchimp API key", re.compile(r"\b[0-9a-f]{32}-us\d{1,2}\b")),
    Rule("a Twilio key", re.compile(r"\b(?:AC|SK)[0-9a-fA-F]{32}\b")),
    Rule("a Telegram bot token", re.compile(r"\b\d{8,10}:AA[0-9A-Za-z_\-]{33}\b")),
    Rule("a Discord bot token", re.compile(r"\b[A-Za-z0-9_\-]{24,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,40}\b"),
         check=lambda m: _classes(m.group(0)) >= 3 and m.group(0)[0] in "MNO"),
    Rule("a PyPI token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,300}")),
    Rule("a Shopify token", re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b")),
    Rule("a DigitalOcean token", re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b")),
    Rule("an API key", re.compile(r"\b(?:gsk_[A-Za-z0-9]{40,60}|r8_[A-Za-z0-9]{30,50}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|"
                                  r"lin_api_[A-Za-z0-9]{30,50}|sbp_[a-f0-9]{40}|dp\.pt\.[A-Za-z0-9]{40,50}|"
                                  r"xai-[A-Za-z0-9]{40,90}|pplx-[A-Za-z0-9]{40,60}|nvapi-[A-Za-z0-9_\-]{50,80}|"
                                  r"glc_[A-Za-z0-9+/]{30,200}|ntn_[A-Za-z0-9]{40,60}|secret_[A-Za-z0-9]{43})\b")),
    Rule("an Azure client secret", re.compile(r"(?<![\w~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![\w~.\-])")),
    # Azure connection strings and SAS URLs
    Rule("an Azure key", re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey|SharedSecretValue|ApiKey|Password|Pwd)="
                                    r"(?P<v>[A-Za-z0-9+/=_\-]{8,300})"), "v",
         check=lambda m: not _is_placeholder(m.group("v"))),
    Rule("an Azure SAS signature", re.compile(r"[?&]sig=(?P<v>[A-Za-z0-9%+/=]{20,200})"), "v"),
    # where a credential goes: auth headers, curl -u, URL userinfo (a "/" in the password too), CLI flags
    Rule("an authorization header", re.compile(
        r"(?i)\b(?:Proxy-)?Authori[sz]ation[\"']?\s{0,3}[:=]\s{0,3}[\"']?(?:(?:Basic|Bearer|Token|Digest|ApiKey|Api-Key|"
        r"SSWS|GenieKey|Key|OAuth|JWT|Klaviyo-API-Key|DeepL-Auth-Key)\s{1,3})?(?P<v>[A-Za-z0-9._~+/=\-:%]{8,1000})"), "v",
         check=lambda m: not _is_placeholder(m.group("v")) and _classes(m.group("v")) >= 2),
    Rule("a bearer token", re.compile(r"\bBearer\s{1,3}(?P<v>[A-Za-z0-9._~+/\-]{16,1000}=*)"), "v",
         check=lambda m: _random_looking(m.group("v"))),
    Rule("an API key header", re.compile(
        r"(?i)\b(?:X-(?:API|Auth|Access|Secret|Session)-(?:Key|Token|Secret)|Private-Token|Api-Key|X-Token|"
        r"X-Vault-Token|X-Goog-Api-Key|Ocp-Apim-Subscription-Key|X-Figma-Token|X-Shopify-Access-Token)"
        r"[\"']?\s{0,3}[:=]\s{0,3}[\"']?(?P<v>[A-Za-z0-9._~+/=\-]{12,500})"), "v",
         check=lambda m: not _is_placeholder(m.group("v")) and _classes(m.group("v")) >= 2),
    Rule("a password", re.compile(r"(?:^|\s)(?:-u|--user|--proxy-user|-U)\s{1,3}[\"']?(?P<v>[^\s:\"'$]{1,64}:[^\s\"']{3,128})"),
         "v", check=lambda m: not _is_placeholder(m.group("v").split(":", 1)[1])),
    Rule("a password", re.compile(r"(?i)(?:^|\s)--?(?:password|passwd|pass|pw|secret|token|api-key|apikey|auth-token|"
                                  r"client-secret|db-password)(?:=|\s{1,3})[\"']?(?P<v>[^\s\"']{4,200})"), "v",
         check=lambda m: not _is_placeholder(m.group("v")) and not m.group("v").startswith("-")),
    Rule("a password", re.compile(r"(?i)\b(?:mysql|mysqldump|mariadb)\b[^\n]{0,120}?\s-p(?P<v>[^\s\"']{3,128})"), "v",
         check=lambda m: not _is_placeholder(m.group("v"))),
    Rule("a password", re.compile(r"(?i)\bsshpass\s{1,3}-p\s{0,3}[\"']?(?P<v>[^\s\"']{3,128})"), "v"),
    Rule("a password", re.compile(r"(?i)\b(?:IDENTIFIED\s{1,3}BY|WITH\s{1,3}(?:ENCRYPTED\s{1,3})?PASSWORD|PASSWORD\s{1,3}FOR"
                                  r"\s{1,3}\S{1,64}\s{0,3}=\s{0,3}PASSWORD\()\s{0,3}['\"](?P<v>[^'\"\n]{3,200})['\"]"), "v",
         check=lambda m: not _is_placeholder(m.group("v"))),
    Rule("a URL with a password", re.compile(
        r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://(?P<user>[^\s:/@\"'<>]{0,64}):(?P<v>[^\s@\"'<>]{1,128})@(?=[\w\[\-])"), "v",
         check=lambda m: not _is_placeholder(m.group("v")) and not re.match(r"\d{1,5}(?:/|$)", m.group("v"))),
    Rule("a URL with a token", re.compile(
        r"(?i)[?&](?:access_token|api_key|apikey|token|key|secret|password|client_secret|auth)="
        r"(?P<v>[A-Za-z0-9._~+/%\-]{12,500})"), "v", check=lambda m: _random_looking(m.group("v"), 12)),
    # PII
    Rule("a card number", re.compile(r"(?<![\d.\-])\d(?:[ .\-_/]?\d){12,18}(?![\d]|[.\-]\d)"), check=_card),
    Rule("a US social security number", re.compile(
        r"(?<![\d\-.])(?P<ssn>\d{3}(?P<s>[ .\-–—])\d{2}(?P=s)\d{4})(?![\d]|[\-.]\d)"), "ssn", check=_ssn),
    Rule("a US social security number", re.compile(
        r"(?i)\b(?:SSN|social[ \-]security(?:[ \-](?:number|no\.?|#))?|SS#)[\s:#.=\-]{0,5}(?:is\s)?(?P<ssn>\d{3}[ .\-]{0,2}"
        r"\d{2}[ .\-]{0,2}\d{4})\b"), "ssn", check=_ssn),
    Rule("an IBAN", re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"),
         check=_iban),
    Rule("a UK national insurance number", re.compile(
        r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")),
    Rule("a French social security number (NIR)", re.compile(
        r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b"), check=_french_nir),
    Rule("a Spanish ID number (DNI/NIE)", re.compile(r"\b[XYZxyz]?\d{7,8}-?[A-Za-z]\b"), check=_spanish_id),
    Rule("an Italian tax code", re.compile(r"\b[A-Za-z]{6}\d{2}[A-EHLMPR-Ta-ehlmpr-t]\d{2}[A-Za-z]\d{3}[A-Za-z]\b"),
         check=_codice_fiscale),
    Rule("a Brazilian CPF number", re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b"), check=_cpf),
    Rule("an Aadhaar number", re.compile(r"\b\d{4} \d{4} \d{4}\b"), check=_aadhaar),
    Rule("a national ID number", re.compile(
        r"(?i)\b(?:passport(?:[ \-](?:number|no\.?|#))?|Reisepass(?:nummer)?|Personalausweis(?:nummer)?|Ausweisnummer|"
        r"Steuer-?ID|Steueridentifikationsnummer|Sozialversicherungsnummer|BSN|burgerservicenummer|SIN|NINO|"
        r"national (?:id|insurance)(?: number| no\.?)?|num[ée]ro de s[ée]curit[ée] sociale|num[ée]ro fiscal|"
        r"n[úu]mero de (?:pasaporte|seguridad social|identidad)|codice fiscale|tax (?:id|number)|TIN|driver'?s licen[cs]e"
        r"(?: number| no\.?)?)[\s:#.=]{1,5}(?:is\s|ist\s|est\s|es\s|è\s)?(?P<v>[A-Z0-9][A-Z0-9 .\-]{4,18}[A-Z0-9])\b"), "v",
         check=lambda m: sum(c.isdigit() for c in m.group("v")) >= 5),
    # an AWS secret access key with no label: 40 characters of its alphabet, all three kinds of character
    Rule("an AWS secret access key", re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])"),
         check=lambda m: (_classes(m.group(0)) >= 3 and _entropy(m.group(0)) >= 4.0
                          and not re.fullmatch(r"[0-9a-fA-F]{40}", m.group(0)))),
)

# key bodies without a header: DER of a private key starts with SEQUENCE, then the version 0 or 1
_KEY_BODY = re.compile(r"(?<![A-Za-z0-9+/])(?:MI[IHG]|MH[cQ]|b3BlbnNzaC1rZXktdjE)[A-Za-z0-9+/]{36,}")
_B64_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,512}={0,2}(?![A-Za-z0-9+/=_\-])")
_HEX_CANDIDATE = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){8,256}(?![0-9A-Fa-f])")


def _key_bodies(text: str) -> Iterable[Span]:
    for match in _KEY_BODY.finditer(text, 0):
        head = match.group(0)
        if head.startswith("b3BlbnNzaC1rZXktdjE"):
            yield Span(match.start(), _body_end(text, match.end()), "a private key")
            continue
        try:
            der = base64.b64decode(head[:16])
        except (binascii.Error, ValueError):
            continue
        # 30 len [len...] 02 01 00|01: a private key (PKCS#1, PKCS#8, SEC1); certificates and public keys
        # start 30 len 30 ...
        i = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
        if der[0] == 0x30 and der[i:i + 2] == b"\x02\x01" and der[i + 2:i + 3] in (b"\x00", b"\x01"):
            yield Span(match.start(), _body_end(text, match.end()), "a private key")


def _body_end(text: str, pos: int) -> int:
    """A key body runs on over following lines of base64."""
    follow = re.compile(r"\s{0,2}[A-Za-z0-9+/=]{16,100}")
    while (more := follow.match(text, pos)) is not None:
        pos = more.end()
    return pos


def _decoded(text: str, depth: int) -> Iterable[Span]:
    """base64- or hex-wrapped secrets: decode bounded candidates that decode to text, and scan that."""
    if depth > 1:
        return
    for pattern, decode in ((_B64_CANDIDATE, _b64), (_HEX_CANDIDATE, bytes.fromhex)):
        for match in pattern.finditer(text):
            raw = match.group(0)
            if pattern is _B64_CANDIDATE and (raw.isalpha() or raw.isdigit() or re.fullmatch(r"[0-9a-fA-F]+", raw)):
                continue  # a word, a number, or hex (the hex pass decodes that)
            try:
                inner = decode(raw).decode("utf-8")
            except (ValueError, UnicodeDecodeError, binascii.Error):
                continue
            if len(inner) < 8 or sum(ch.isprintable() or ch in "\n\r\t" for ch in inner) < len(inner):
                continue
            for span in scan(inner, depth=depth + 1):
                yield Span(match.start(), match.end(), f"{span.label} (encoded)")
                break


def _b64(raw: str) -> bytes:
    raw = raw.rstrip("=")
    altchars = b"-_" if ("-" in raw or "_" in raw) else None
    return base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=altchars, validate=True)


# --- the scan ----------------------------------------------------------------------------------------
_rules: list[Rule] | None = None
_lock = threading.Lock()


def rules() -> list[Rule]:
    global _rules
    with _lock:
        if _rules is None:
            _rules = _library_rules() + list(_RULES)
    return _rules


def _url_password_ok(match: re.Match) -> bool:
    password = match.group(1)
    return not _is_placeholder(password) and not re.match(r"\d{1,5}(?:/|$)", password)


def scan(text: str, *, depth: int = 0) -> list[Span]:
    """Every secret span in `text`, in order; overlapping spans are kept (redaction merges them)."""
    found: list[Span] = []
    for rule in rules():
        for match in rule.pattern.finditer(text):
            if rule.check is None or rule.check(match):
                start, end = match.span(rule.group)
                if end > start:
                    found.append(Span(start, end, rule.label))
    found.extend(_labelled(text))
    found.extend(_key_bodies(text))
    found.extend(_decoded(text, depth))
    return sorted(found)


def block_end(text: str, span: Span) -> int:
    """Where a private key that starts in `span` ends: its END line, or the end of the text when cut off."""
    head = text[span.start:span.end]
    if head.startswith("-----BEGIN"):
        end = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----").search(text, span.end)
        return end.end() if end else len(text)
    if head.startswith("PuTTY-User-Key-File"):
        mac = re.compile(r"Private-MAC: *[0-9a-fA-F]+").search(text, span.end)
        return mac.end() if mac else len(text)
    return span.end
