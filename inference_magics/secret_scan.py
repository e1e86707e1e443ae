"""Where the secrets are in a text: one scan, linear in its length, returning spans that say what each is.

Provider token shapes come from detect-secrets (Yelp): the regexes of its plugins, taken at the first
check from each plugin's `denylist` (a few are left out: see _LIBRARY_SKIPPED). Its own scanner is
built for files, line by line, with every plugin and filter; on prose it took ~13 s per MB and
flagged ordinary words, so we run only the plugins' patterns.

Our own rules cover what the library lacks: passwords and credentials as people write them (labels
in en/de/fr/es/it/pt/nl and more, `curl -u`, auth headers, URL userinfo), provider shapes it does
not know, key bodies without their header, base64/hex-wrapped secrets (decoded and scanned again),
and PII with checksums (cards, SSNs, IBANs, national IDs).

Speed: Python's `re` has no multi-pattern matcher, and 80 patterns over a megabyte cost seconds.
So no pattern runs over the whole text. The scan lists the words once (shared with the privacy-word
search), then runs each rule only where it can match: around the words or strings it needs, on long
tokens that start with its literal prefix (read from the pattern itself), or over runs of digits.
Linear: every quantifier that scans for a value is bounded; no single regex call sees more than
64 kB (an interrupt lands at once); a value examined is not examined again from inside it.
tests/test_privacy_detector.py runs hostile inputs; `python -m bench privacy` measures the scaling.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from . import privacy_words
from .needles import Needles


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    label: str  # what it is, safe to show: "a password", "a GitHub token"


def _order(span: Span) -> tuple[int, int, str]:
    """Span's own order, as a tuple: sorting compares in C, not through the dataclass's __lt__."""
    return span.start, span.end, span.label


@dataclass(frozen=True)
class Rule:
    """A pattern, what it finds, and how the scan finds the few places worth running it.

    Running 80 patterns over a whole megabyte costs seconds in Python's `re`, so each rule runs only
    where it can match: around the words that must occur in a match (`words`), over runs of digits
    (`digits`), on long tokens that start with its literal prefix (taken from the pattern itself), or
    on long tokens that pass its `token_gate`. A rule with none of these runs over the whole text."""
    label: str
    pattern: re.Pattern
    group: int | str = 0                           # the part of the match that is the secret
    check: Callable[[str], bool] | None = None     # an extra test on that part (a checksum, not a placeholder ...)
    words: tuple[str, ...] = ()                    # lower-case words, one of which occurs in every match
    literals: tuple[str, ...] = ()                 # or lower-case strings, one of which occurs in every match
    digits: bool = False                           # every match is a run of digits with separators
    token_gate: Callable[[str], bool] | None = None  # a long token worth trying
    back: int = 0                                  # how far before an anchoring word a match may start
    reach: int = 400                               # how far after it a match may end


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


def _card(value: str) -> bool:
    raw = value
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


def _ssn(value: str) -> bool:
    digits = _digits(value)
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


def _iban(value: str) -> bool:
    compact = re.sub(r"[\s\-]", "", value).upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _french_nir(value: str) -> bool:
    digits = _digits(value)
    return len(digits) == 15 and 97 - int(digits[:13]) % 97 == int(digits[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _spanish_id(value: str) -> bool:
    raw = value.upper().replace("-", "")
    number = raw[:-1].replace("X", "0").replace("Y", "1").replace("Z", "2")
    return number.isdigit() and _DNI_LETTERS[int(number) % 23] == raw[-1]


def _cpf(value: str) -> bool:
    digits = [int(d) for d in _digits(value)]
    if len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1))) * 10 % 11 % 10
        if check != digits[n]:
            return False
    return True


def _aadhaar(value: str) -> bool:  # Verhoeff check digit
    d = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
         [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
         [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
         [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
         [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
         [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
    digits = _digits(value)
    if digits[0] in "01":
        return False
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = d[c][p[i % 8][int(ch)]]
    return c == 0


def _codice_fiscale(value: str) -> bool:
    code = value.upper()
    odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
    total = 0
    for i, ch in enumerate(code[:15]):
        n = int(ch) if ch.isdigit() else ord(ch) - 65
        total += odd[n] if i % 2 == 0 else n
    return chr(65 + total % 26) == code[15]


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    return -sum(c / len(value) * math.log2(c / len(value)) for c in Counter(value).values())


def _classes(value: str) -> int:
    """How many kinds of character: lower case, upper case, digits, others."""
    return ((value != value.upper()) + (value != value.lower()) + (_A_DIGIT.search(value) is not None)
            + (not value.isalnum()))


_A_DIGIT = re.compile(r"\d")


def _random_looking(value: str, minimum: int = 16) -> bool:
    """A token that looks generated rather than written: long, mixed, and not a word or identifier."""
    if len(value) < minimum:
        return False
    if re.fullmatch(r"[0-9a-fA-F]+", value):  # hex: an encryption key or a token, once something labels it
        return len(value) >= 16 and len(set(value)) > 4
    if re.fullmatch(r"[a-z_]+|[A-Z_]+|[A-Za-z][a-z]+(?:[A-Z]+[a-z]*)+|[\w.]*\w\.\w+[\w.]*|(?:%\w|\{\w*\}|[\W_])+", value):
        return False  # an identifier, a constant or dotted name, a format string
    return _classes(value) >= 2 and _entropy(value) >= 3.0


def _pair_password(value: str) -> bool:
    """The second of a user and a password written in prose: made up, with a digit or a symbol."""
    value = value.rstrip(".!?)'\"")
    if _is_placeholder(value) or "://" in value or _PATH_WITH_EXTENSION.fullmatch(value) or any(c in value for c in "=({"):
        return False
    return _random_looking(value, 6) and (_A_DIGIT.search(value) is not None or not value.isalnum())


def _generated(value: str) -> bool:
    """A value with no label that looks made by a machine: long hex, or upper, lower case and digits mixed."""
    if _is_placeholder(value) or not _random_looking(value, 16):
        return False
    if _HEX.fullmatch(value):
        return len(value) >= 32
    return len(value) >= 20 and any(c.isupper() for c in value) and any(c.islower() for c in value) and (
        _A_DIGIT.search(value) is not None)


# --- values after a label --------------------------------------------------------------------------------
# what a placeholder, a reference or code looks like where a value would go
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
        \**|x{3,}|\.{3}|…|-+|_+|![\w!]+|(?:%[-+\ \#0-9.]*[sdrfxi]|\{\w*\}|[\W_])+|<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}|\{\{.*\}\}|\$\{?[\w:.\-]*\}?|%\(?\w*\)?s?|%\w+%
        |(?:your|my|the|some|example|sample|dummy|fake|test|placeholder|changeme|change[_-]?me|redacted|removed|hidden
            |secret|password|passwd|token|apikey|api[_-]?key|none|null|nil|true|false|undefined|empty|required
            |optional|str|string|bytes|int|bool|any|text|value|required|todo|tbd|xxx|env|default|\w*here
            |pass|pw|pwd|user|username|login|foo|bar|baz)
        (?:[_\-\s]?(?:api[_-]?)?(?:key|token|secret|password|pass|value|here|goes[_\-\s]here|name|id|\d))*
        |(?:your|my|insert|enter|paste|put)[_\-\s][\w\-\s]{0,40}?(?:key|token|secret|password|pass|here|id)
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
_VALUE_STOP = re.compile(r"[\s,;)}\]<>。、，：；！？\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]|$")


_VALUE_RUN = re.compile(r"[A-Za-z0-9+/=_\-.~%]+")
_VALUE_RUN_ON = re.compile(r"[A-Za-z0-9+/=_\-.~%]{0,4096}")


def _value_after(text: str, pos: int, *, phrase: bool = False) -> tuple[int, int, bool] | None:
    """The value that starts at `pos`: (start, end, quoted). Quoted values run to their closing quote
    (a multi-word passphrase is one value); a bare value to the next space, comma or bracket, or — for a
    passphrase — to the end of its sentence. Bounded: nothing here looks further than 256 characters, but
    a value that is one token all along them runs on to its end (at most 4 kB more)."""
    if pos >= len(text):
        return None
    opening = text[pos]
    if opening in _QUOTES:
        close = text.find(_QUOTES[opening], pos + 1, pos + 257)
        newline = text.find("\n", pos + 1, pos + 257)
        if close == -1 and newline == -1 and _VALUE_RUN.fullmatch(text, pos + 1, pos + 257):
            run = _VALUE_RUN_ON.match(text, pos + 257).end()  # a session token, a key's base64: one long token
            return (pos + 1, run, True) if text.startswith(_QUOTES[opening], run) else None
        if close == -1 or (newline != -1 and newline < close):
            return None
        return (pos + 1, close, True) if close > pos + 1 else None
    window = text[pos:pos + 256]
    if phrase:
        end = re.search(r"[.;!?](?:\s|$)|\n|$", window).start()
    else:
        end = _VALUE_STOP.search(window).start()
        if end == 256 and _VALUE_RUN.fullmatch(window):
            window = text[pos:_VALUE_RUN_ON.match(text, pos + 256).end()]
            end = len(window)
    value = window[:end].rstrip(".:!?'\"`")
    return (pos, pos + len(value), False) if value else None


def _is_placeholder(value: str) -> bool:
    return (bool(_PLACEHOLDER.match(value.strip())) or bool(_CODE_VALUE.match(value)) or bool(_FILLER.search(value))
            or value.startswith("[redacted"))  # what redact_secrets left: redacting twice changes nothing


# labels: the word that names a secret, in the languages people write them in. Matched case-insensitively
# at a place where one of the anchoring words below occurs; "compass" or "monkey" do not count (see _labelled)
_PASSWORD_WORDS = (r"pass(?:word|wd|wort|phrase|code|wrd)?s?|passe|pwd|pw|psk|kennwort|mot[ _-]de[ _-]passe|mdp|"
                   r"contrase(?:ñ|n)a|clave(?:[ _-]de[ _-]acceso)?|senha|wachtwoord|parola[ _-]d['’]ordine|"
                   r"пароль|パスワード|密码|密碼|비밀번호|암호|pin(?:[ _-]?code)?")
_SECRET_WORDS = (r"secret|token|pat|api[ _-]?key|apikey|access[ _-]?key|private[ _-]?key|secret[ _-]?key|"
                 r"client[ _-]?secret|auth(?:[ _-]?(?:key|token|code))?|credentials?|creds?|key|sig|signature|"
                 r"session[ _-]?(?:id|key|token|cookie)|cookie|webhook[ _-]?secret|signing[ _-]?secret|"
                 r"geheimnis|schlüssel|cl[ée]|chiave|llave|chave|sleutel|jeton|ключ|токен")
# the same in languages whose copula is a short word that elsewhere starts a phrase ("er", "on", "to"): a
# label from this list takes that copula only ("Passordet er …", "Salasana on …", "Hasło do serwera to …")
_PASSWORD_WORDS_MORE = (r"has[łl][oa]|[şs]ifre(?:si|m|miz|niz)?|l[öo]senord(?:et)?|heslo|adgangskode(?:n)?|passord(?:et)?|"
                        r"salasana|jelsz[óo]|κωδικός(?:\s(?:πρόσβασης|χρήστη))?|كلمة\s(?:المرور|السر)|סיסמ[הא]|पासवर्ड|"
                        r"mật\skhẩu|sandi|laluan")
_MORE_COPULAS = r"(?:to|jest|je|är|er|on|là|είναι|היא|הוא|هي|adalah|ialah)"
# what may follow the name inside one identifier (DB_PASSWORD_PROD, apiKeyValue); "_FILE", "_URL",
# "_RESET", "_HASH" and the like name something else and are left out
_PARTICLES = "はが是为為는은"
_SUFFIX = r"(?:[_\-.]?(?:id|value|val|str|string|b64|base64|hex|enc|plain|raw|prod|production|dev|test|live|main|\d{1,2}))?"
_LABEL = re.compile(
    rf"(?i)(?P<name>(?:(?P<pw>{_PASSWORD_WORDS})|(?P<sec>{_SECRET_WORDS})|(?P<pw2>{_PASSWORD_WORDS_MORE})){_SUFFIX})"
    rf"(?![^\W{_PARTICLES}])"
    # the separator: = : => := ->, an optional closing quote or bracket before it, or words (is, ist, est ...),
    # or "for <something> is" ("the password for the staging db is ...")
    rf"(?P<sep>(?(pw2)(?:[ \t]{{1,3}}[^\n:=]{{1,40}}?)?[ \t]{{1,3}}{_MORE_COPULAS}[ \t]{{1,3}}|(?!))|"
    r"['\"\]]{0,2}[ \t]{0,3}(?:=>|:=|->|::|[:=])[ \t]{0,3}|['\"]?>|['\"][ \t]{0,3},[ \t]{0,3}(?=['\"])|"
    r"\s{1,3}(?:(?:for|to|of|für|zu|pour|de|du|des|per|para|voor|van|del|da|do|della|dello|от|для)\s[^\n]{1,60}?\s)?"
    r"(?:is|are|was|ist|lautet|sind|est|c'est|es|son|è|é|são|это|—|–|=|:)[ \t]{0,2}:?[ \t]{1,3}(?:now\s|jetzt\s|still\s)?"
    # Japanese, Chinese, Korean: a particle or copula, no space needed ("パスワードはX", "密码是 X", "비밀번호는 X")
    rf"|[ \t]{{0,2}}[{_PARTICLES}][ \t]{{0,3}}[:：]?[ \t]{{0,3}}"
    r"|\s{1,3}(?=['\"“‘«])"
    # loose: "the API key you asked for: X", "password X" (netrc); only a random-looking value counts then
    r"|(?P<loose>[^\n:=]{0,40}?:[ \t]{1,3}|[ \t]{1,3}(?:от|для)[ \t]{1,3}\w{1,30}[ \t]{1,3}|[ \t]{1,3}))",
)
# the words that anchor a label (ASCII, lower case), and the non-ASCII ones looked for as they are
# the stems a label starts with, folded as the text is; every place one occurs is tried
_STEMS = tuple(privacy_words.fold_word(w) for w in (
    "pass pw psk secret token key auth cred sig cookie session kennwort mdp contrase clave senha wachtwoord parola "
    "pin pat geheimnis chiave llave chave sleutel jeton mot haslo sifre losenord heslo adgang salasana jelszo sandi "
    "laluan".split()))
_LABEL_NON_ASCII = tuple((w, w[i], i) for w in (
    "schlüssel", "clé", "contraseña", "пароль", "パスワード", "密码", "密碼", "비밀번호", "암호", "ключ", "токен",
    "hasło", "hasła", "şifre", "lösenord", "jelszó", "κωδικός", "كلمة المرور", "كلمة السر", "סיסמה", "סיסמא", "पासवर्ड",
    "mật khẩu")
    for i in [next(i for i, ch in enumerate(w) if not ch.isascii())])

_NAME = re.compile(r"[\w.\-]+")
_PAT_VALUE = re.compile(r"[A-Za-z0-9_\-]{20,}")
_KEY_ATTRIBUTE = re.compile(r"""\b(?:key|name)\s{0,2}=\s{0,2}["'][\w.\-]{0,24}$""")
# scripts that glue a word to the one before it: CJK particles, Hebrew's prefixes ("ה" + "סיסמה")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u0590-\u05ff]")
_PATH_WITH_EXTENSION = re.compile(r"(?:[\w.\-]+/)+[\w.\-]*\.[A-Za-z][A-Za-z0-9]{0,7}")
_LONG_CORES = ("password", "passwd", "passwort", "passphrase", "secret", "token", "apikey", "credential")
_LABEL_WORDS = re.compile(r"(?i)^(?:is|are|the|this|that|a|an|not|now|still|set|also|in|on|at|to|for|and|or|of|"
                          r"ist|der|die|das|est|le|la|es|el|è|il|é|o|a|de|het|een)$")


# a column of secrets: a table's header names it, each row below holds one (a DataFrame printout, CSV, TSV,
# a Markdown table). The name is the whole header cell, with at most a prefix ("db_password", "API Key")
_COLUMN_NAME = re.compile(
    r"(?i)(?:[a-z0-9]{1,20}[_\-. ])?(?:(?P<pw>passw(?:or)?d|pwd|passphrase|passcode|passwort|kennwort|mot[ _-]de[ _-]passe|"
    r"contrase(?:ñ|n)a|senha|wachtwoord|пароль|パスワード|密码|密碼|비밀번호|has[łl]o|[şs]ifre|l[öo]senord|heslo|salasana|"
    r"jelsz[óo])|secret|token|api[_\- ]?key|access[_\- ]?key|secret[_\- ]?key|private[_\- ]?key|client[_\- ]?secret|"
    r"(?:auth|access|refresh|api|bearer|session)[_\- ]?token|credentials?)(?:[_\-](?:value|plain|raw|clear|text))?")
_HEADER_CELL = re.compile(r"[^\W_][\w .\-/#%()]{0,40}")
_FRAME_HEADER = re.compile(r" *[^\s=:]+(?: {2,}[^\s=:]+)+ *")
# where a header cell ends with a column's name ("password,", "| token |", "api_key  " in a DataFrame): needles,
# so that only a line that may be a table's header is looked at
_COLUMN_NEEDLES = tuple(privacy_words.fold_word(word + end) for word in (
    "password", "passwd", "pwd", "passphrase", "passcode", "passwort", "kennwort", "wachtwoord", "senha", "secret",
    "token", "api_key", "apikey", "api key", "api-key", "access_key", "access key", "secret_key", "secret key",
    "private_key", "credential", "credentials") for end in (",", '",', "|", " |", "\t", "  ", "\n", "\r"))
_CODE_CHARS = re.compile(r"[=(){};:<>\[\]]")
_MARKDOWN_RULE = re.compile(r"\s*\|?[\s:\-|]+")
_NOT_A_VALUE = frozenset("nan none null n/a na - true false yes no pass fail passed failed ok".split())


def _row_cells(line: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) of each cell of a table's line, spaces and quotes around a value left out."""
    if kind == "frame":
        return [m.span() for m in re.finditer(r"\S+", line)]
    cells, start = [], 0
    sep = {"markdown": "|", "tsv": "\t", "csv": ","}[kind]
    for piece in line.split(sep):
        lo, hi = start, start + len(piece)
        while lo < hi and line[lo] in " \t\"'":
            lo += 1
        while hi > lo and line[hi - 1] in " \t\"'\r":
            hi -= 1
        cells.append((lo, hi))
        start += len(piece) + 1
    return cells


def _table_kind(line: str) -> str | None:
    if _CODE_CHARS.search(line):
        return None  # `password = f(user, token)`: code, not a table's header
    if line.lstrip().startswith("|") and line.count("|") >= 3:
        return "markdown"
    if "\t" in line:
        return "tsv"
    if "," in line:
        return "csv"
    return "frame" if _FRAME_HEADER.fullmatch(line) else None


def _table_cells(text: str, positions: Iterable[int]) -> Iterator[Span]:
    """Secrets in a column its header names: `password` over a DataFrame's or a CSV's rows."""
    done = -1  # where the last line looked at ends: each line is a header candidate once, a table is read once
    for at in positions:
        if at <= done:
            continue
        start = text.rfind("\n", max(at - 2000, 0), at) + 1
        end = text.find("\n", at, at + 2000)
        end = len(text) if end == -1 and len(text) - at <= 2000 else end
        if end == -1 or (start == 0 and at > 2000):
            done = at
            continue
        done = end
        line = text[start:end]
        kind = _table_kind(line)
        if kind is None:
            continue
        cells = _row_cells(line, kind)
        if kind == "markdown":
            cells = cells[1:-1] if line.rstrip().endswith("|") else cells[1:]
        names = [line[lo:hi] for lo, hi in cells]
        if len(names) < 2 or not all(_HEADER_CELL.fullmatch(n) for n in names):
            continue
        columns = [(j, bool(m.group("pw"))) for j, n in enumerate(names) if (m := _COLUMN_NAME.fullmatch(n))]
        if not columns:
            continue
        row_at, first = end + 1, True
        while row_at < len(text):
            row_end = text.find("\n", row_at)
            row_end = len(text) if row_end == -1 else row_end
            row = text[row_at:row_end]
            if not row.strip() or row_end - row_at > 4000:
                break
            if first and kind == "markdown" and _MARKDOWN_RULE.fullmatch(row):
                row_at, first = row_end + 1, False
                continue
            first = False
            got = _row_cells(row, kind)
            if kind == "markdown":
                got = got[1:-1] if row.rstrip().endswith("|") else got[1:]
            if kind != "frame" and len(got) != len(names):
                break
            for j, password in columns:
                if kind == "frame":
                    lo_h, hi_h = cells[j]
                    hit = [(lo, hi) for lo, hi in got if lo < hi_h and hi > lo_h]
                    if len(hit) != 1:
                        continue
                    lo, hi = hit[0]
                else:
                    lo, hi = got[j]
                value = row[lo:hi]
                if password:
                    ok = len(value) >= 4 and value.lower() not in _NOT_A_VALUE and not _is_placeholder(value) and (
                        not value.isalpha() or value.lower() not in _PROSE_WORDS)
                else:
                    ok = not _is_placeholder(value) and _random_looking(value, 12)
                if ok:
                    yield Span(row_at + lo, row_at + hi, "a password" if password else "a secret or token assignment")
            done = row_end
            row_at = row_end + 1


def _labelled(text: str, positions: Iterable[int]) -> Iterable[Span]:
    examined = (0, 0)  # a label inside the value just examined ("key=key=key=...") is not looked at again
    for at in positions:
        if examined[0] <= at < examined[1]:
            continue
        if at > 0 and text[at - 1].isalpha() and not _CJK.match(text[at - 1]):
            before, first = text[at - 1], text[at]
            if not (first.isupper() and (before.islower() or before.isupper())) \
                    and not text[at:at + 12].lower().startswith(_LONG_CORES):
                continue  # inside a word, and not in one of the ways checked below: no need to match
        match = _LABEL.match(text, at)
        if match is None:
            continue
        name = match.group("name").lower()
        if at > 0 and text[at - 1].isalpha() and not _CJK.match(text[at - 1]):
            # inside a word: dbPass (camel case), SMTPPASS, adminpassword count; compass, monkey, bypass do not
            before, first = text[at - 1], text[at]
            if not ((before.islower() and first.isupper()) or (before.isupper() and first.isupper())
                    or name.startswith(_LONG_CORES)):
                continue
        password = bool(match.group("pw") or match.group("pw2"))
        found = _value_after(text, match.end(), phrase="phrase" in name)
        if found is None:
            continue
        start, end, quoted = found
        if end - start > 64 or not _NAME.fullmatch(text, start, end) or text[start:end].isalnum():
            examined = (start, end)  # but a short dotted name may hold a label: key="db.password">…</entry>
        value = text[start:end]
        if match.group("sep").endswith(">"):  # <password>value</password>, <entry key="password">value</entry>
            close = text.find("<", start, start + 257)
            if close == -1:
                continue
            end, value = close, text[start:close]
            if match.group("sep") != ">" and (" " in value or not _KEY_ATTRIBUTE.search(text, max(at - 40, 0), at)):
                continue  # `<th class="password">Change password</th>` is a page, not a value
        if not value or "\n" in value or _is_placeholder(value) or _LABEL_WORDS.match(value):
            continue
        if name.startswith("pat") and not _PAT_VALUE.fullmatch(value):
            continue  # `_IPV4_PAT = r"(?:[0-9]{1,3}\.){3}"`: a pattern; a personal access token is one plain token
        if value.lower().replace("_", "").replace("-", "") in name.replace("_", "").replace("-", "").replace(" ", ""):
            continue  # password=password, token=token
        natural = not match.group("loose") and (match.group("sep").strip()[:1].isalpha()
                                                or match.group("sep").strip()[:1] in "—–")
        sep = match.group("sep")
        if match.group("pw2") and natural and not quoted and value.isalpha():
            continue  # "Hasło jest nieprawidłowe" (the password is wrong): a word, not a password
        if match.group("loose") is not None:  # only a token that looks generated, not a word, path or URL
            if (not _random_looking(value, 8 if password else 16) or " " in value or "://" in value
                    or value[0] in "/-.~" or "=" in value or "(" in value or not _A_DIGIT.search(value)
                    or _PATH_WITH_EXTENSION.fullmatch(value)):
                continue
        elif sep.strip() == "" and not (quoted and name.startswith(("passw", "kennw", "wachtw", "senha", "contrase"))
                                        and (_A_DIGIT.search(value) or _classes(value) >= 3)):
            continue  # `PASSWORD 'x'` (SQL) counts; "Pass 'parameters' to it" does not
        elif natural and not quoted and value.isalpha() and (
                value.lower() in _PROSE_WORDS or re.match(r"[ \t]+[a-z]", text[end:end + 3])):
            continue  # "the password is stored as a salted hash"
        if password:
            plain = not quoted and re.fullmatch(r"[a-z_]+", value)
            if len(value) < 4 or (plain and ("_" in value or (sep.strip() in ("=", ":") and sep != sep.strip()
                                                              and len(value) < 9))):
                continue  # `password = pw`, `password=user_password`: a variable, not a value
            yield Span(start, end, "a password")
        elif "," in sep and _NAME.fullmatch(value) and not _A_DIGIT.search(value):
            continue  # ("api-key", "x-api-key", "proxy-authorization"): a list of names
        elif not any(c.isspace() for c in value) and not _PATH_WITH_EXTENSION.fullmatch(value) and (
                _random_looking(value, 16 if name not in ("key", "sig", "cookie", "cred", "auth") else 20)
                or (quoted and _random_looking(value, 12))):
            yield Span(start, end, "a secret or token assignment")


# --- from detect-secrets ---------------------------------------------------------------------------
# plugin class -> our label. Left out: the keyword and high-entropy plugins (they flag prose and hashes;
# our labelled rules replace them), the public-IP one (an address is no secret), and npm's (its
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
_LIBRARY_SKIPPED = {
    "KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector",
    # patterns that backtrack quadratically on hostile text; our own rules cover what they find:
    "NpmDetector",        # `\/\/.+\/:` on a long line with many `//` (our `:_authToken` rule)
    "OpenAIDetector",     # `sk-[..]*[..]{20}T3BlbkFJ` on "sk-sk-sk-..." (our `sk-` rule)
    "JwtTokenDetector",   # `eyJ[..]+\.` on "eyJeyJeyJ..." (our token check, with the plugin's validity test)
    # assignment patterns with nested optional spaces (` *`, ` +`, ` *`): our labelled rule covers them
    "IbmCloudIamDetector", "IbmCosHmacDetector", "CloudantDetector", "SoftlayerDetector",
}
# where a plugin's patterns cannot be anchored on their own literal prefix: the words they need, or a gate
_LIBRARY_ANCHORS: dict[str, dict] = {
    "AWSKeyDetector": {"words": ("aws",), "reach": 120, "only_unprefixed": True},  # its key-id pattern has a prefix
    "ArtifactoryDetector": {"token_gate": lambda t: t.startswith(("AKC", "AP"))},
    "AzureStorageKeyDetector": {"words": ("accountkey",), "reach": 120},
    "BasicAuthDetector": {"literals": ("://",), "back": 24, "reach": 300},
    "CloudantDetector": {"words": ("cloudant",), "back": 80, "reach": 200},
    "IbmCloudIamDetector": {"words": ("ibm", "iam"), "back": 40, "reach": 200},
    "IbmCosHmacDetector": {"words": ("ibm", "cos", "hmac"), "back": 40, "reach": 200},
    "SoftlayerDetector": {"words": ("softlayer", "sl"), "back": 40, "reach": 200},
    "DiscordBotTokenDetector": {"token_gate": lambda t: t.count(".") == 2 and len(t) >= 59},
    "MailchimpDetector": {"token_gate": lambda t: "-us" in t},
    "TelegramBotTokenDetector": {"digits": True},
    "PrivateKeyDetector": {"literals": ("begin ", "putty-user"), "reach": 60},
}


def _library_rules() -> list[Rule]:
    """detect-secrets' plugin patterns. Imported here, at the first scan, never at %load_ext (~0.25 s)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    rules = []
    for plugin in get_mapping_from_secret_type_to_class().values():
        name = plugin.__name__
        if name in _LIBRARY_SKIPPED or not hasattr(plugin, "denylist"):
            continue
        label = _LIBRARY_LABELS.get(name) or f"a {plugin.secret_type}"
        check = _password_ok if name == "BasicAuthDetector" else None
        anchors = dict(_LIBRARY_ANCHORS.get(name, {}))
        only_unprefixed = anchors.pop("only_unprefixed", False)
        for pattern in plugin.denylist:
            how = {} if only_unprefixed and _prefixes(pattern) else anchors
            # the secret is the pattern's first group where it has one (e.g. the password of a URL)
            rules.append(Rule(label, pattern, 1 if pattern.groups else 0, check, **how))
    return rules


def _jwt_ok(token: str) -> bool:
    """header.payload.signature, the first two base64url-encoded JSON (detect-secrets' own check)."""
    from detect_secrets.plugins.jwt import JwtTokenDetector

    parts = token.split(".")
    return (len(parts) == 3 and len(parts[0]) >= 10 and len(parts[1]) >= 4 and len(token) <= 8192
            and JwtTokenDetector.is_formally_valid(token))


def _prefixes(pattern: re.Pattern) -> tuple[str, ...]:
    """The literal strings one of which every match of `pattern` starts with (after a leading `\\b`),
    when each is at least two characters long; () when there are none."""
    try:
        from re import _constants as c, _parser as parser  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_constants as c
        import sre_parse as parser

    def walk(items) -> tuple[list[str], bool]:
        out = [""]
        for op, av in items:
            if op is c.LITERAL:
                out = [p + chr(av) for p in out]
            elif op is c.AT and out == [""]:
                continue
            elif op is c.IN and all(o is c.LITERAL for o, _ in av) and len(av) * len(out) <= 32:
                out = [p + chr(v) for p in out for _, v in av]
            elif op is c.SUBPATTERN:
                inner, complete = walk(av[-1])
                out = [p + i for p in out for i in inner]
                if not complete:
                    return out, False
            elif op is c.BRANCH:
                alternatives = [walk(branch) for branch in av[1]]
                out = [p + i for p in out for alt, _ in alternatives for i in alt]
                return out, all(complete for _, complete in alternatives)
            else:
                return out, False
        return out, True

    try:
        found, _ = walk(parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # a construct this walk does not know: run the pattern everywhere
        return ()
    if pattern.flags & re.IGNORECASE:
        found = [f.lower() for f in found]
    return tuple(found) if found and all(len(f) >= 2 for f in found) else ()


# --- our own provider shapes and where a credential goes ---------------------------------------------------
def _not_placeholder(value: str) -> bool:
    return not _is_placeholder(value)


def _password_ok(value: str) -> bool:
    return not _is_placeholder(value) and not re.match(r"\d{1,5}(?:/|$)", value)


def _basic_credentials(value: str) -> bool:
    """base64 of `user:password`, as in `Authorization: Basic ...`."""
    try:
        plain = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return False
    return ":" in plain and plain.isprintable() and not _is_placeholder(plain.split(":", 1)[1])


_B64 = r"A-Za-z0-9+/"
_HEADER_WORDS = ("authorization", "authorisation")
_RULES: tuple[Rule, ...] = (
    Rule("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"),
         literals=("-----begin ",), reach=60),
    Rule("a private key", re.compile(r"PuTTY-User-Key-File-\d: *[\w-]+"), literals=("putty-user",), reach=60),
    Rule("a private key", re.compile(r"Private-Lines: *\d+\s*\n?[" + _B64 + r"=\s]{20,200}"), literals=("private-lines",),
         reach=240),
    Rule("a private key", re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")),
    Rule("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{10,300}")),
    Rule("an API key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|or-v1-|live-)?[A-Za-z0-9_\-]{20,300}")),
    Rule("an AWS access key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    Rule("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})")),
    Rule("a GitLab token", re.compile(r"\bgl(?:pat|dt|ft|soat|rt|cbt|ptt|agent|oas)-[A-Za-z0-9_\-]{20,64}")),
    Rule("a Slack token", re.compile(r"\bxox[abposre](?:\.xox[abposre])?-[A-Za-z0-9-]{10,255}")),
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
    Rule("an npm token", re.compile(r"(?i):_(?:authToken|auth|password)\s*=\s*(?P<v>[^\s$]{8,300})"), "v",
         literals=(":_auth", ":_password"), reach=320),
    Rule("a SendGrid API key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,64}")),
    Rule("a Mailchimp API key", re.compile(r"\b[0-9a-f]{32}-us\d{1,2}\b"), token_gate=lambda t: "-us" in t),
    Rule("a Twilio key", re.compile(r"\b(?:AC|SK)[0-9a-fA-F]{32}\b")),
    Rule("a Telegram bot token", re.compile(r"\b\d{8,10}:AA[0-9A-Za-z_\-]{33}\b"), digits=True),
    Rule("a Discord bot token", re.compile(r"\b[A-Za-z0-9_\-]{24,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,40}\b"),
         check=lambda v: _classes(v) >= 3 and v[0] in "MNO", token_gate=lambda t: t.count(".") == 2),
    Rule("a PyPI token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,300}")),
    Rule("a Shopify token", re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b")),
    Rule("a DigitalOcean token", re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b")),
    Rule("an API key", re.compile(r"\b(?:gsk_[A-Za-z0-9]{40,60}|r8_[A-Za-z0-9]{30,50}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|"
                                  r"lin_api_[A-Za-z0-9]{30,50}|sbp_[a-f0-9]{40}|dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_\-]{1,35}\.)?[A-Za-z0-9]{40,50}|"
                                  r"hv[sbr]\.[A-Za-z0-9_\-]{24,300}|ATATT3[A-Za-z0-9_\-=]{100,300}|sk\.eyJ[A-Za-z0-9_\-]{20,200}\.[A-Za-z0-9_\-]{20,60}|"
                                  r"key-[0-9a-f]{32}|"
                                  r"xai-[A-Za-z0-9]{40,90}|pplx-[A-Za-z0-9]{40,60}|nvapi-[A-Za-z0-9_\-]{50,80}|"
                                  r"glc_[A-Za-z0-9+/]{30,200}|ntn_[A-Za-z0-9]{40,60}|secret_[A-Za-z0-9]{43})\b")),
    Rule("a Terraform Cloud token", re.compile(r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-]{60,80}\b"),
         token_gate=lambda t: ".atlasv1." in t),
    Rule("an Azure client secret", re.compile(r"(?<![\w~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![\w~.\-])"),
         token_gate=lambda t: "Q~" in t),
    # Azure connection strings and SAS URLs
    Rule("an Azure key", re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey|SharedSecretValue|ApiKey|Password|Pwd)="
                                    r"(?P<v>[A-Za-z0-9+/=_\-]{8,300})"), "v", _not_placeholder,
         literals=("accountkey=", "sharedaccesskey=", "sharedsecretvalue=", "apikey=", "password=", "pwd="), back=20,
         reach=330),
    Rule("an Azure SAS signature", re.compile(r"[?&]sig=(?P<v>[A-Za-z0-9%+/=]{20,200})"), "v", literals=("sig=",), back=2,
         reach=210),
    # where a credential goes: auth headers, curl -u, URL userinfo (a "/" in the password too), CLI flags
    Rule("an authorization header", re.compile(
        r"(?i)\b(?:Proxy-)?Authori[sz]ation[\"']?\s{0,3}[:=]\s{0,3}[\"']?(?:(?:Basic|Bearer|Token|Digest|ApiKey|Api-Key|"
        r"SSWS|GenieKey|Key|OAuth|JWT|Klaviyo-API-Key|DeepL-Auth-Key)\s{1,3})?(?P<v>[A-Za-z0-9._~+/=\-:%]{8,1000})"), "v",
         lambda v: not _is_placeholder(v) and (_basic_credentials(v) or _A_DIGIT.search(v) is not None
                                               or (len(v) >= 24 and _classes(v) >= 3)),
         words=_HEADER_WORDS, back=6, reach=1100),
    Rule("a bearer token", re.compile(r"(?i)\bBearer\s{1,3}(?P<v>[A-Za-z0-9._~+/\-]{16,1000}=*)"), "v",
         _random_looking, words=("bearer",), reach=1020),
    Rule("an API key header", re.compile(
        r"(?i)\b(?:X-(?:API|Auth|Access|Secret|Session)-(?:Key|Token|Secret)|Private-Token|Api-Key|X-Token|"
        r"X-Vault-Token|X-Goog-Api-Key|Ocp-Apim-Subscription-Key|X-Figma-Token|X-Shopify-Access-Token)"
        r"[\"']?\s{0,3}[:=]\s{0,3}[\"']?(?P<v>[A-Za-z0-9._~+/=\-]{12,500})"), "v",
         lambda v: not _is_placeholder(v) and _classes(v) >= 2,
         literals=("-key", "-token", "-secret", "api-key"), back=30, reach=560),
    Rule("a password", re.compile(r"(?:^|\s)(?:-u|--user|--proxy-user|-U)\s{1,3}[\"']?(?P<v>[^\s:\"'$]{1,64}:[^\s\"']{3,128})"),
         "v", lambda v: not _is_placeholder(v.split(":", 1)[1].rstrip("`,.;)")),
         literals=("-u ", "-u\t", "--user", "--proxy-user"),
         back=2, reach=220),
    Rule("a password", re.compile(r"(?i)(?:^|\s)--?(?:password|passwd|pass|pw|secret|token|api-key|apikey|auth-token|"
                                  r"client-secret|db-password)(?:=|\s{1,3})[\"']?(?P<v>[^\s\"']{4,200})"), "v",
         lambda v: not _is_placeholder(v) and not v.startswith("-"),
         literals=("-pass", "-pw", "-secret", "-token", "-api", "-auth", "-client-secret", "-db-password"), back=2,
         reach=240),
    Rule("a password", re.compile(r"(?i)\b(?:mysql|mysqldump|mariadb)\b[^\n]{0,120}?\s-p(?P<v>[^\s\"']{3,128})"), "v",
         _not_placeholder, words=("mysql", "mysqldump", "mariadb"), reach=280),
    Rule("a password", re.compile(r"(?i)\bredis-cli\b[^\n]{0,120}?\s-a\s{1,3}[\"']?(?P<v>[^\s\"']{3,128})"), "v",
         _not_placeholder, literals=("redis-cli",), reach=280),
    Rule("a password", re.compile(r"(?i)\bdocker\s{1,3}login\b[^\n|]{0,200}?\s(?:-p|--password)(?:=|\s{1,3})[\"']?(?P<v>[^\s\"']{3,200})"),
         "v", lambda v: not _is_placeholder(v) and not v.startswith("-"), words=("docker",), reach=440),
    Rule("a password", re.compile(r"(?i)\becho\s{1,3}(?:-n\s{1,3})?(?P<q>['\"]?)(?P<v>[^\s'\"|]{3,128})(?P=q)\s{0,3}\|[^\n]{0,160}?"
                                  r"--password-stdin"), "v", _not_placeholder, literals=("password-stdin",), back=320, reach=20),
    Rule("a password", re.compile(r"(?<![\w.\-])[A-Za-z0-9_.\-]{1,64}:(?P<v>[^\s:@\"'/]{3,128})@(?:tcp|unix)\("), "v", _password_ok,
         literals=("@tcp(", "@unix("), back=200, reach=10),
    # a password as a positional argument of a call that takes one: requests' auth=(user, pw), smtplib's
    # login(user, pw), JDBC's getConnection(url, user, pw), PDO, ldap3; and builders' .password("...")
    Rule("a password", re.compile(r"(?i)(?:\b(?:basic_)?auth\s{0,3}=\s{0,3}[(\[]|\bHTTP(?:Basic|Digest)Auth\(|\.login\(|"
                                  r"\bgetConnection\(|\bnew\s{1,3}PDO\(|\bldap3?\.Connection\(|\bConnection\(\s{0,3}server\s{0,3},)"
                                  r"\s{0,3}(?:(?:'[^'\n]{0,120}'|\"[^\"\n]{0,120}\"|[^,()'\"\n]{1,120}),\s{0,3}){1,2}['\"](?P<v>[^'\"\n]{4,128})['\"]\s{0,3}[,)\]]"), "v",
         lambda v: not _is_placeholder(v) and len(v) >= 6 and not v.isalpha() and not v.startswith(("http", "/", "jdbc:")),
         literals=("auth=", "auth =", "auth(", ".login(", "getconnection(", "pdo(", "connection("), back=12, reach=300),
    Rule("a password", re.compile(r"(?i)\.(?:set_|with_)?(?:password|passwd|pwd)\(\s{0,3}['\"](?P<v>[^'\"\n]{4,128})['\"]\s{0,3}\)"),
         "v", _not_placeholder, literals=(".password(", ".passwd(", ".pwd(", "_password("), back=6, reach=150),
    Rule("a password", re.compile(r"(?i)\bsshpass\s{1,3}-p\s{0,3}[\"']?(?P<v>[^\s\"']{3,128})"), "v", words=("sshpass",),
         reach=150),
    Rule("a password", re.compile(r"(?i)\b(?:IDENTIFIED\s{1,3}BY|WITH\s{1,3}(?:ENCRYPTED\s{1,3})?PASSWORD|PASSWORD\s{1,3}FOR"
                                  r"\s{1,3}\S{1,64}\s{0,3}=\s{0,3}PASSWORD\()\s{0,3}['\"](?P<v>[^'\"\n]{3,200})['\"]"), "v",
         _not_placeholder, words=("identified",), literals=("with password", "with encrypted"), back=6, reach=320),
    Rule("a URL with a password", re.compile(
        r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://(?P<user>[^\s:/@\"'<>]{0,64}):(?P<v>[^\s@\"'<>]{1,128}(?:@[^\s@/?#\"'<>]{1,64}){0,3})"
        r"@(?=[\w\[\-{$])"), "v",
         _password_ok, literals=("://",), back=24, reach=240),
    Rule("a URL with a token", re.compile(
        r"(?i)(?:[?&]|%3F|%26)(?:access_token|api_key|apikey|token|key|secret|password|client_secret|auth|appid|app_?key|"
        r"app_?secret|api_?token|auth_?token|private_token|refresh_token|id_token|secret_?key|access_?key)(?:=|%3D)"
        r"(?P<v>[A-Za-z0-9._~+/%\-]{12,500})"), "v", lambda v: _random_looking(v, 12),
         literals=("token=", "key=", "secret=", "password=", "auth=", "appid=", "token%3d", "key%3d", "secret%3d",
                   "password%3d", "auth%3d", "appid%3d"), back=18, reach=520),
    # a user and a password in prose: "creds for the NAS: admin / X", "log in as admin with X"
    Rule("a password", re.compile(r"(?i)\b(?:creds?|credentials?|login)\b[^\n:=]{0,40}[:=][ \t]{0,3}[\w.@\-]{1,64}(?:[ \t]{1,2}/[ \t]{1,2}|:)"
                                  r"(?P<v>[^\s,;]{4,64})"), "v", lambda v: _pair_password(v),
         words=("cred", "creds", "credential", "credentials", "login"), reach=200),
    Rule("a password", re.compile(r"(?i)\blog(?:[ \t]?in|on)[ \t]{1,3}(?:as|with)[ \t]{1,3}[\w.@\-]{1,64}[ \t]{1,3}(?:with|using|and|/)"
                                  r"[ \t]{1,3}(?:(?:the[ \t]|a[ \t])?password[ \t]{1,3})?(?P<v>[^\s,;]{4,64})"), "v",
         lambda v: _pair_password(v), literals=("log in as", "log in with", "login as", "login with", "logon as",
                                                "log on as", "logon with"), back=4, reach=240),
    # a setting named in one attribute and given in the next: <add key="DbPassword" value="…"/>,
    # <property name="password" value="…"/> (.NET appSettings, Spring and Hibernate XML, Ant, NuGet)
    Rule("a password", re.compile(r"""(?i)\b(?:key|name)\s{0,2}=\s{0,2}["'][\w.\-]{0,40}?(?:passw(?:or)?d|passwd|pwd|"""
                                  r"""passphrase)[\w.\-]{0,20}["']\s{1,3}value\s{0,2}=\s{0,2}["'](?P<v>[^"'\n]{3,200})["']"""), "v",
         _not_placeholder, literals=("\" value", "' value"), back=140, reach=220),
    Rule("a secret or token assignment", re.compile(
        r"""(?i)\b(?:key|name)\s{0,2}=\s{0,2}["'][\w.\-]{0,40}?(?:secret|token|api[_.\-]?key|access[_.\-]?key|private[_.\-]?key|"""
        r"""client[_.\-]?secret|credential)[\w.\-]{0,20}["']\s{1,3}value\s{0,2}=\s{0,2}["'](?P<v>[^"'\s]{12,500})["']"""), "v",
         lambda v: not _is_placeholder(v) and _random_looking(v, 12), literals=("\" value", "' value"), back=140, reach=520),
    # PowerShell: ConvertTo-SecureString "…" -AsPlainText
    Rule("a password", re.compile(r"""(?i)ConvertTo-SecureString\s{1,3}(?:-String\s{1,3})?["'](?P<v>[^"'\n]{3,200})["']"""
                                  r"""\s{1,3}-AsPlainText"""), "v", _not_placeholder, literals=("convertto-securestring",),
         reach=280),
    # Redis, Valkey and KeyDB configuration: `requirepass …`, `masterauth …`
    Rule("a password", re.compile(r"""(?im)^[ \t]{0,8}(?:requirepass|masterauth)[ \t]{1,8}["']?(?P<v>[^\s"']{3,200})"""), "v",
         _not_placeholder, words=("requirepass", "masterauth"), back=10, reach=240),
    # a CLI's login with the token as its argument: `wandb login <key>`, `vault login <token>`
    Rule("an API key", re.compile(r"(?i)\blogin\s{1,3}(?:--?[a-z][\w\-]{1,20}\s{1,3}){0,2}(?P<v>[A-Za-z0-9_\-+/=]{24,300})(?![^\s'\"`;)])"),
         "v", lambda v: _random_looking(v, 24) and _A_DIGIT.search(v) is not None and not _is_placeholder(v),
         words=("login",), reach=360),
    # key flags of cloud CLIs: `az storage … --account-key …`, `--sas-token …`, `--secret-key …`
    Rule("a secret or token assignment", re.compile(
        r"(?i)(?:^|\s)--?(?:account-key|storage-key|sas-token|access-key|secret-key|secret-access-key|api-token|"
        r"access-token|refresh-token|private-token|auth-key|master-key|primary-key|shared-key|connection-string)"
        r"(?:=|\s{1,3})[\"']?(?P<v>[^\s\"']{12,500})"), "v",
         lambda v: not _is_placeholder(v) and (_random_looking(v, 16) or "=" in v and ";" in v),
         literals=("-account-key", "-storage-key", "-sas-token", "-access-key", "-secret-key", "-secret-access-key",
                   "-api-token", "-access-token", "-refresh-token", "-private-token", "-auth-key", "-master-key",
                   "-primary-key", "-shared-key", "-connection-string"), back=2, reach=540),
    # an SDK client built from an id and a secret: Client("AC…", "<auth token>"), CosmosClient(url, "<key>"),
    # ClientSecretCredential(tenant, client, "<secret>")
    *(Rule("an API key", re.compile(
        r"""\b\w{0,40}(?:Client|Credentials?)\(\s{0,3}(?:(?:'[^'\n]{0,200}'|"[^"\n]{0,200}"|[\w.\[\]]{1,80}),\s{0,3})"""
        rf"""{{{n}}}["'](?P<v>[A-Za-z0-9+/=_\-.~]{{16,200}})["']\s{{0,3}}[,)]"""), "v", _generated,
         literals=("client(", "credentials(", "credential("), back=60, reach=560) for n in (1, 2)),  # the 2nd argument, the 3rd
    # PII, run over runs of digits
    Rule("a card number", re.compile(r"(?<![\d.\-])\d(?:[ .\-_/]?\d|  \d){12,18}(?![\d]|[.\-]\d)"), check=_card, digits=True),
    Rule("a US social security number", re.compile(
        r"(?<![\d\-.])(?P<ssn>\d{3}(?P<s>[ .\-–—])\d{2}(?P=s)\d{4})(?![\d]|[\-.]\d)"), "ssn", _ssn, digits=True),
    Rule("a US social security number", re.compile(
        r"(?i)\b(?:SSN|social[ \-]security(?:[ \-](?:number|no\.?|#))?|SS#|social)[\s:#.=\-]{0,5}(?:is\s)?(?P<ssn>\d{3}"
        r"[ .\-–—]{0,2}\d{2}[ .\-–—]{0,2}\d{4})\b"), "ssn", _ssn, words=("ssn", "social"), reach=80),
    # the value first: "I use 'Blue42Monkey!' as my password", "Hunter2!x is my password"
    Rule("a password", re.compile(
        r"(?i)['\"“‘](?P<q>[^'\"“”‘’\n]{4,64})['\"”’]\s{1,3}(?:as|is|was|for|=)\s{1,3}"
        r"(?:(?:my|the|our|your|his|her|their)\s{1,3})?(?:new\s{1,3}|current\s{1,3}|old\s{1,3})?"
        r"(?:password|passphrase|passwort|kennwort|pin|contrase(?:ñ|n)a|senha|wachtwoord)\b"), "q",
         check=lambda v: not _is_placeholder(v), words=("password", "passphrase", "passwort", "kennwort", "pin", "senha",
                                                        "wachtwoord", "contrase"), back=90, reach=20),
    Rule("a password", re.compile(
        r"(?i)(?<!\S)(?P<v>\S{6,64})\s{1,3}(?:is|was)\s{1,3}(?:my|our|the)\s{1,3}(?:new\s{1,3}|current\s{1,3})?"
        r"(?:password|passphrase|passwort|pin)\b"), "v", check=lambda v: _random_looking(v, 6) and _A_DIGIT.search(v),
         words=("password", "passphrase", "passwort", "pin"), back=90, reach=20),
    Rule("an IBAN", re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"),
         check=_iban, digits=True),
    Rule("a UK national insurance number", re.compile(
        r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), digits=True),
    Rule("a French social security number (NIR)", re.compile(
        r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b"), check=_french_nir,
         digits=True),
    Rule("a Spanish ID number (DNI/NIE)", re.compile(r"\b[XYZxyz]?\d{7,8}-?[A-Za-z]\b"), check=_spanish_id, digits=True),
    Rule("a Brazilian CPF number", re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b"), check=_cpf, digits=True),
    Rule("an Aadhaar number", re.compile(r"(?<!\d )\b\d{4} \d{4} \d{4}\b(?! \d)"), check=_aadhaar, digits=True),
    Rule("an Italian tax code", re.compile(r"(?i)\bcodice[ _]fiscale\b\W{0,5}(?:è\s)?(?P<v>[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}"
                                           r"[A-Z]\d{3}[A-Z])\b"), "v", _codice_fiscale, words=("codice",), reach=60),
    Rule("a national ID number", re.compile(
        r"(?i)\b(?:passport(?:[ \-](?:number|no\.?|#))?|Reisepass(?:nummer)?|Personalausweis(?:nummer)?|Ausweisnummer|"
        r"Steuer-?ID|Steueridentifikationsnummer|Sozialversicherungsnummer|BSN|burgerservicenummer|NINO|"
        r"national (?:id|insurance)(?: number| no\.?)?|num[ée]ro de s[ée]curit[ée] sociale|num[ée]ro fiscal|"
        r"n[úu]mero de (?:pasaporte|seguridad social|identidad)|codice fiscale|tax (?:id|number)|taxpayer id|"
        r"driver'?s licen[cs]e(?: number| no\.?)?)[\s:#.=]{1,5}(?:is\s|ist\s|est\s|es\s|è\s)?"
        r"(?P<v>[A-Z0-9][A-Z0-9 .\-]{4,18}[A-Z0-9])\b"), "v", lambda v: sum(c.isdigit() for c in v) >= 5,
         words=("passport", "reisepass", "personalausweis", "personalausweisnummer", "ausweisnummer", "steuer",
                "steuerid", "steueridentifikationsnummer", "sozialversicherungsnummer", "bsn", "burgerservicenummer",
                "nino", "national", "numero", "codice", "tax", "taxpayer", "driver", "drivers"), literals=("mero de",),
         back=4, reach=120),
)


# --- long tokens: unlabelled AWS secrets, key bodies, base64- and hex-wrapped secrets ------------------------
def _aws_secret(token: str) -> bool:
    """An AWS secret access key with no label: 40 characters of its alphabet, all three kinds of character."""
    return (len(token) == 40 and _AWS_ALPHABET.fullmatch(token) is not None and _classes(token) >= 3
            and _entropy(token) >= 4.0)


_AWS_ALPHABET = re.compile(r"[A-Za-z0-9+/]{40}")
_KEY_BODY_STARTS = ("MII", "MIG", "MIH", "MHc", "MHQ", "b3BlbnNzaC1rZXktdjE")


def _key_body(token: str) -> bool:
    """DER of a private key starts with SEQUENCE, then the version 0 or 1 (PKCS#1, PKCS#8, SEC1);
    certificates and public keys start SEQUENCE, SEQUENCE."""
    if token.startswith("b3BlbnNzaC1rZXktdjE"):  # "openssh-key-v1"
        return True
    try:
        der = base64.b64decode(token[:16])
    except (binascii.Error, ValueError):
        return False
    i = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    return der[0] == 0x30 and der[i:i + 2] == b"\x02\x01" and der[i + 2:i + 3] in (b"\x00", b"\x01")


def _body_end(text: str, pos: int) -> int:
    """A key body runs on over following lines of base64."""
    follow = re.compile(r"\s{0,2}[A-Za-z0-9+/=]{16,100}")
    while (more := follow.match(text, pos)) is not None:
        pos = more.end()
    return pos


def _decoded(token: str, depth: int) -> str | None:
    """A base64- or hex-wrapped text, decoded, when it decodes to printable text."""
    if depth > 0 or len(token) > 700:
        return None
    try:
        if len(token) % 2 == 0 and _HEX.fullmatch(token):
            raw = bytes.fromhex(token)
        elif not token.isupper() and _A_DIGIT.search(token) or token.endswith("="):
            core = token.rstrip("=")
            alt = b"-_" if ("-" in core or "_" in core) else None
            raw = base64.b64decode(core + "=" * (-len(core) % 4), altchars=alt, validate=True)
        else:
            return None
        inner = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if len(inner) < 8 or not all(ch.isprintable() or ch in "\n\r\t" for ch in inner):
        return None
    return inner


_PEM_BASE64 = "LS0tLS1CRUdJTi"  # "-----BEGIN" in base64


def _encoded_key(token: str) -> bool:
    """base64 of a PEM private key (of any length: only its header is decoded)."""
    try:
        head = base64.b64decode(token[:96], validate=True).decode("ascii", "replace")
    except (binascii.Error, ValueError):
        return False
    return "PRIVATE KEY" in head and not _EMPTY_KEY_BLOCK.match(head.split("KEY", 1)[1])


_HEX = re.compile(r"[0-9a-fA-F]+")
_B64_ONLY = re.compile(r"[A-Za-z0-9+/_\-]+=*")


# --- the scan ----------------------------------------------------------------------------------------
# A token is a run of at least 16 of [A-Za-z0-9+/_\-.~], then up to two "=" of padding. Most are words,
# names or paths; only those with a digit, a "+" or padding (or a provider prefix, found as a needle)
# are looked at. They are found with bytes.find (fast) over the text's bytes mapped so: letters and
# "/_-.~" -> "a", digits and "+" -> "d", anything else (and "=") -> " ".
_TOKEN_ASCII = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-.~")
_TOKEN_LEAD = frozenset(b"/+._-~")  # what a token may start with before its body (stripped, as `bare`)
_TOKEN_MAP = bytes(0x64 if chr(b).isdigit() or chr(b) == "+" else 0x61 if b in _TOKEN_ASCII else 0x20
                   for b in range(256))
_RUN = b"a" * 16
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/_\-.~]+")
_TOKEN_REST = re.compile(rb"[A-Za-z0-9+/_\-.~]*")
_NUMBER = re.compile(rb"0(?:\.{0,2}0){5,40}")
# bytes of the text, one per character (non-ASCII becomes "?"): digits -> 0, separators -> ".", the rest " "
_DIGIT_MAP = bytes((0x30 if chr(b).isdigit() else 0x2E if chr(b) in " .-_/" else 0x20) for b in range(256))
_JWT = "eyJ"


@dataclass
class _Plan:
    """The rules, sorted by how each finds its places, and the needles that find them."""
    by_word: dict[bytes, list[Rule]]     # folded word -> the rules it anchors
    by_literal: dict[bytes, list[Rule]]  # folded string -> the rules it anchors
    by_prefix: dict[str, list[Rule]]
    prefixes: tuple[str, ...]
    gated: list[Rule]
    digit: list[Rule]
    everywhere: list[Rule]
    needles: Needles                     # every label stem, word, string and token prefix, folded
    # for each needle: (a label stem, the rules it anchors, a token prefix, a column's name in a header)
    actions: list[tuple[bool, tuple[Rule, ...], bool, bool]]


_plan: _Plan | None = None
_lock = threading.Lock()


def plan() -> _Plan:
    global _plan
    with _lock:
        if _plan is None:
            _plan = _make_plan(_library_rules() + list(_RULES))
    return _plan


def rules() -> list[Rule]:
    p = plan()
    seen, out = set(), []
    for group in (*p.by_word.values(), *p.by_literal.values(), *p.by_prefix.values(), p.gated, p.digit, p.everywhere):
        for rule in group:
            if id(rule) not in seen:
                seen.add(id(rule))
                out.append(rule)
    return out


def _make_plan(all_rules: list[Rule]) -> _Plan:
    by_word: dict[bytes, list[Rule]] = {}
    by_literal: dict[bytes, list[Rule]] = {}
    by_prefix: dict[str, list[Rule]] = {}
    gated, digit, everywhere = [], [], []
    for rule in all_rules:
        if rule.words or rule.literals:
            for word in rule.words:
                by_word.setdefault(privacy_words.fold_word(word), []).append(rule)
            for literal in rule.literals:
                by_literal.setdefault(privacy_words.fold_word(literal), []).append(rule)
        elif rule.digits:
            digit.append(rule)
        elif rule.token_gate is not None:
            gated.append(rule)
        elif (found := _prefixes(rule.pattern)) and all(_TOKEN_CHARS.fullmatch(_no_scheme(p)) for p in found):
            for prefix in found:
                by_prefix.setdefault(_no_scheme(prefix), []).append(rule)
        else:
            everywhere.append(rule)
    # one needle per folded string: a match of a rule holds its word folded (folding is per character),
    # and a token that starts with a prefix, in any case, starts with the prefix folded
    stems, anchors, starts = set(_STEMS), {}, set()
    for table in (by_word, by_literal):
        for key, anchored in table.items():
            anchors.setdefault(key, []).extend(anchored)
    for prefix in (*by_prefix, _JWT):
        starts.add(privacy_words.fold_word(prefix.lower()))
    columns = set(_COLUMN_NEEDLES)
    needles = Needles([*stems, *anchors, *starts, *columns])
    actions = [(n in stems, tuple(dict.fromkeys(anchors.get(n, ()))), n in starts, n in columns) for n in needles.needles]
    return _Plan(by_word, by_literal, by_prefix, tuple(by_prefix), gated, digit, everywhere, needles, actions)


def _no_scheme(prefix: str) -> str:
    return re.sub(r"^[a-z]+://", "", prefix)


def _windows(points: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Merge [start, end) windows (clipped to the text)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(points):
        lo, hi = max(lo, 0), min(hi, size)
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


# a token made of filler ("ghp_xxxxxxxx…", "AKIAXXXXXXXX…", "xoxb-your-bot-token") is a placeholder, not a
# secret. AWS's documentation keys (AKIAIOSFODNN7EXAMPLE) stay secrets: they have a real key's shape, and
# a prompt carrying one is kept local rather than guessed harmless
_FILLER = re.compile(r"(?i)x{8}|\*{6}|(?<![A-Za-z])your[-_]")
# a key block with nothing in it: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"
_EMPTY_KEY_BLOCK = re.compile(r"-{0,5}\s{0,4}(?:\.{3}|…|<[^<>\n]{0,60}>|\[[^\[\]\n]{0,60}\]|\(?snip\)?)?\s{0,4}-----END ")
# what follows a key's header when a key is there: base64 after the line break (real or escaped, in a string
# or a concatenation), past armour headers ("Proc-Type: …", "Version: …"), or a short body and its END line;
# "BEGIN RSA PRIVATE KEY and BEGIN
# PRIVATE KEY headers" in a question, or `startswith("-----BEGIN PRIVATE KEY-----")` in code, is no key
_KEY_MATERIAL = re.compile(r"""[ \-]{0,6}(?:[\s"'+,]|\\{1,4}[nr]){0,40}(?:[A-Z][\w\-]{1,30}: ?[^\n\\]{0,200}(?:\r?\n|\\{1,4}n)"""
                           r"""[\s"']{0,8}){0,6}(?:[\s"']|\\{1,4}[nr]){0,8}(?:[A-Za-z0-9+/=]{16}|[A-Za-z0-9+/=]{1,15}(?:\s|\\{1,4}[nr]){0,4}-----END )""")
_LINE_END = ("\n", "\r", "-----\n", "-----\r")  # a header that ends its line: a key, never only named


def _only_named(text: str, start: int, end: int) -> bool:
    """A private key's header with no key after it, that only names one: in prose ("BEGIN RSA PRIVATE KEY and
    BEGIN PRIVATE KEY headers"), or closed by a quote in code (`startswith("-----BEGIN PRIVATE KEY-----")`).
    A header alone, dashes and all, on its line or at the end, still counts: its key may follow unseen."""
    if text.find("BEGIN ", start, end) == -1:
        return False
    after = end + 5 if text.startswith("-----", end) else end
    following = text[after:after + 1]
    if following not in ("\"", "'", "`"):
        dashed = text.startswith("-----", start) or text.startswith("-----", max(start - 5, 0))
        if dashed or following in ("\n", "\r", ""):
            return False
    return not _KEY_MATERIAL.match(text, end)


_CHUNK = 1 << 16    # no single regex call looks at more than this (plus _OVERLAP): an interrupt lands at once
_OVERLAP = 2048     # longer than any match: one cut in two chunks is found whole in one of them


def _run(rule: Rule, text: str, lo: int, hi: int, found: list[Span]) -> None:
    for chunk in range(lo, hi, _CHUNK):
        for match in rule.pattern.finditer(text, chunk, min(chunk + _CHUNK + _OVERLAP, hi)):
            start, end = match.span(rule.group)
            if end > start and not text.startswith("[redacted", start) and not _FILLER.search(text, *((start, end) if end - start >= 8 else match.span())) and (
                    rule.check is None or rule.check(text[start:end])) and not (
                    rule.label == "a private key" and (_EMPTY_KEY_BLOCK.match(text, end) or (
                        not text.startswith(_LINE_END, end) and _only_named(text, start, end)))):
                found.append(Span(start, end, rule.label))


def _token_at(raw: bytes, at: int) -> tuple[int, int] | None:
    """The token whose body (after any leading "/+._-~") starts at `at`: (its start, its end), or None
    when `at` is not where a token's body starts or the run is shorter than a token."""
    if at < len(raw) and raw[at] in _TOKEN_LEAD:
        return None
    start = at
    while start > 0 and raw[start - 1] in _TOKEN_LEAD:
        start -= 1
    if start > 0 and raw[start - 1] in _TOKEN_ASCII:
        return None
    end = _TOKEN_REST.match(raw, at).end()
    if end - start < 16:
        return None
    return start, end + (2 if raw.startswith(b"==", end) else 1 if raw.startswith(b"=", end) else 0)


def scan(text: str, *, depth: int = 0) -> list[Span]:
    """Every secret span in `text`, in order; overlapping spans are kept (redaction merges them)."""
    made = privacy_words.prepared(text)
    found = _scan(text, depth, made)
    if depth == 0 and made.norm.runs:
        found = sorted(set(found).union(_scan_unconfused(text, made.norm.runs)), key=_order)
    return found


_CONTEXT = 1200  # around a look-alike character, how far a secret that holds it may reach


def _scan_unconfused(text: str, runs: list[tuple[int, int]]) -> list[Span]:
    """Secrets written with look-alike characters ("pаssword" with a Cyrillic "а", full-width "ｇｈｐ＿",
    a zero-width space inside a label): the text around each such character is scanned again as the
    ASCII it stands for, and what is found is reported at its place in the text."""
    changes = []  # (start, end, what it stands for)
    for first, last in runs:
        for start in range(first, last, 4096):  # a long run in pieces: an interrupt lands between them
            end = min(start + 4096, last)
            piece = text[start:end]
            if not any(map(privacy_words.stands_for_ascii, piece)):
                continue  # "—", "…", "é": nothing here stands for ASCII
            plain = "".join(map(privacy_words.unconfused, piece))
            if len(plain) == len(piece):  # one character for one: positions inside map back as they are
                changes.append((start, end, plain))
                continue
            for at in range(start, end):  # a format character went: a change per character (or stretch of them)
                plain = privacy_words.unconfused(text[at])
                if plain == text[at]:
                    continue
                if plain == "" and changes and changes[-1][1] == at and changes[-1][2] == "":
                    changes[-1] = (changes[-1][0], at + 1, "")
                else:
                    changes.append((at, at + 1, plain))
    found: list[Span] = []
    k = 0
    for lo, hi in _windows(((start - _CONTEXT, end + _CONTEXT) for start, end, _ in changes), len(text)):
        pieces, at_piece, at_text = [], [0], [lo]  # where each piece starts in the window and in the text
        pos, length = lo, 0
        while k < len(changes) and changes[k][0] < hi:
            start, end, plain = changes[k]
            pieces += [text[pos:start], plain]
            length += start - pos
            at_piece += [length, length + len(plain)]
            at_text += [start, end]
            length += len(plain)
            pos, k = end, k + 1
        pieces.append(text[pos:hi])
        window = "".join(pieces)

        def place(i: int) -> int:  # a position in the window -> in the text
            j = bisect.bisect_right(at_piece, i) - 1
            return at_text[j] + (i - at_piece[j])

        for span in _scan(window, 0, privacy_words.prepared(window, keep=False)):
            found.append(Span(place(span.start), place(span.end - 1) + 1, span.label))
    return found


def _scan(text: str, depth: int, made) -> list[Span]:
    p = plan()
    found: list[Span] = []
    raw = text.encode("ascii", "replace")  # one byte per character: positions are the text's

    # 1. needles, all in one pass: label stems ("password: ...", "Passwort lautet ..."), the words and
    # strings rules are anchored on, provider prefixes that may start a token
    label_at: list[int] = []
    column_at: list[int] = []  # where a header cell may end with a column's name
    places: dict[int, list[int]] = {}  # rule -> where its words or strings occur
    anchored: dict[int, Rule] = {}
    token_starts: set[int] = set()
    actions = p.actions
    for at, index in made.found(p.needles, in_text=True):
        stem, anchoring, starts, column = actions[index]
        if stem:
            label_at.append(at)
        if column:
            column_at.append(at)
        for rule in anchoring:
            places.setdefault(id(rule), []).append(at)
            anchored[id(rule)] = rule
        if starts and (at == 0 or raw[at - 1] not in _TOKEN_ASCII or raw[at - 1] in _TOKEN_LEAD):
            token_starts.add(at)
    if not text.isascii():
        runs = made.norm.runs if hasattr(made, "norm") else None
        label_at.extend(_non_ascii_labels(text, text if runs is None else "".join(text[a:b] for a, b in runs)))
        label_at.sort()
    found.extend(_labelled(text, label_at))
    if column_at:
        found.extend(_table_cells(text, column_at))
    for key, at in places.items():
        rule = anchored[key]
        for lo, hi in _windows(((i - rule.back, i + rule.reach) for i in at), len(text)):
            _run(rule, text, lo, hi, found)

    # 2. long tokens: provider prefixes and JSON web tokens (where a needle starts one)
    for at in sorted(token_starts):
        token = _token_at(raw, at)
        if token is None:
            continue
        end = token[1]
        bare = text[at:end]
        head = bare[:24].lower()
        if bare.startswith(p.prefixes) or head.startswith(p.prefixes):
            for prefix in p.prefixes:
                if bare.startswith(prefix) or head.startswith(prefix):
                    for rule in p.by_prefix[prefix]:
                        _run(rule, text, max(at - 1, 0), end, found)
        if bare.startswith(_JWT) and _jwt_ok(bare):
            found.append(Span(at, end, "a JSON web token"))

    # long tokens with a digit, a "+" or padding: gated shapes, unlabelled AWS secrets, key bodies,
    # base64- and hex-wrapped secrets
    for start, end in _long_tokens(raw):
        token = text[start:end]
        bare = token.lstrip("/+=._-~")
        offset = start + len(token) - len(bare)
        if not (_A_DIGIT.search(bare) or bare.endswith("=") or "+" in bare):
            continue  # a word, a name, a path: none of the shapes below is written without a digit
        if "." in bare:  # a dotted name or a host: of the shapes below only a Discord token has dots
            if bare.count(".") == 2:
                for rule in p.gated:
                    if rule.token_gate(bare):
                        _run(rule, text, max(start - 1, 0), min(end + 1, len(text)), found)
            continue
        for rule in p.gated:
            if rule.token_gate(bare):
                _run(rule, text, max(start - 1, 0), min(end + 1, len(text)), found)
        if _aws_secret(bare):
            found.append(Span(offset, end, "an AWS secret access key"))
        if bare.startswith(_KEY_BODY_STARTS) and len(bare) >= 40 and _key_body(bare):
            found.append(Span(offset, _body_end(text, end), "a private key"))
        if bare.startswith(_PEM_BASE64) and _encoded_key(bare):
            found.append(Span(offset, _body_end(text, end), "a private key (encoded)"))
        inner = (_decoded(bare, depth) if 16 <= len(bare) <= 700 and _B64_ONLY.fullmatch(bare)
                 and (not bare.islower() or _HEX.fullmatch(bare)) else None)
        if inner is not None:
            for span in scan(inner, depth=depth + 1):
                found.append(Span(offset, end, f"{span.label} (encoded)"))
                break

    # 3. runs of digits: cards, SSNs, IBANs, national IDs, Telegram bot tokens
    if p.digit and any(ch in raw for ch in b"0123456789"):
        digits = raw.translate(_DIGIT_MAP)
        places = [(m.start() - 16, m.end() + 50) for m in _NUMBER.finditer(digits)]
        if places:
            for lo, hi in _windows(places, len(text)):
                for rule in p.digit:
                    _run(rule, text, lo, hi, found)

    # 4. anything left that could not be anchored (none of ours; a future plugin, say)
    for rule in p.everywhere:
        _run(rule, text, 0, len(text), found)
    return sorted(set(found), key=_order)


def _long_tokens(raw: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each token with a digit, a "+" or "=" padding; the end after the padding."""
    mapped = raw.translate(_TOKEN_MAP)
    runs = mapped.replace(b"d", b"a")  # every token character an "a"
    find, size = runs.find, len(raw)
    start = find(_RUN)
    while start != -1:  # a run of 16 is found only at the start of a token: shorter runs hold none
        end = find(b" ", start)
        end = size if end == -1 else end
        padding = 2 if raw.startswith(b"==", end) else 1 if raw.startswith(b"=", end) else 0
        if padding or mapped.find(b"d", start, end) != -1:
            yield start, end + padding
        start = find(_RUN, end)


def _non_ascii_labels(text: str, present: str) -> list[int]:
    """Where a label with a non-ASCII letter starts ("schlüssel", "clé", "пароль", "パスワード"): around each
    place its telling letter (ü, é, п ...) occurs, compared without case. `present`: the text's non-ASCII
    characters (or the text), so that a letter the text does not hold costs no pass over it."""
    at: list[int] = []
    for word, mark, offset in _LABEL_NON_ASCII:
        for letter in {mark, mark.upper()}:
            i = text.find(letter) if letter in present else -1
            while i != -1:
                start = i - offset
                if start >= 0 and text[start:start + len(word)].lower() == word:
                    at.append(start)
                i = text.find(letter, i + 1)
    return at


_KEY_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|Private-MAC: *[0-9a-fA-F]+")


def block_ends(text: str) -> Callable[[Span], int]:
    """For redaction: where a private key that starts in a span ends — its END line (or PuTTY's
    Private-MAC line), or the end of the text when it is cut off. The ends are found once, in one pass."""
    ends: list[int] | None = None

    def end_of(span: Span) -> int:
        nonlocal ends
        head = text[span.start:span.start + 30]
        if not (head.startswith(("-----BEGIN", "BEGIN", "PuTTY-User-Key-File"))):
            return span.end
        if ends is None:
            ends = [m.end() for m in _KEY_END.finditer(text)]
        k = bisect.bisect_left(ends, span.end)
        return ends[k] if k < len(ends) else len(text)

    return end_of
