"""Phrases that mark a prompt private ("confidential", "do not distribute", "Vertraulich", "機密"), found
however they are typed.

The text is normalised first — NFKC (full-width letters), format characters such as a zero-width
space removed, curly quotes made straight, lower case — keeping a map back to the original, so a
position we report points into the text the user wrote. Latin phrases are then matched with
confusable Cyrillic and Greek letters folded to Latin and with digits allowed for letters
("c0nfidential"); other scripts are matched as they are.

"private" alone is no signal: private methods, `private int x` and public/private key cryptography
are programming. A phrase of intent is ("this is private", "keep it private", "private notes").
"""
from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterator

# --- normalisation with a map back to the original ------------------------------------------------
_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"',
                         "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "\u00a0": " "})
# Cyrillic and Greek letters that look like Latin ones (one character for one: positions do not move)
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏвкмнтьгпАВЕКМНОРСТУХІЈЅαβεικνορτυχηςοΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhlbkmhtbrnabekmhopctyxijsabeikvoptuxnsoabezhikmnoptyx")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_QUESTION_MARKS = re.compile(rb"\?\?*")  # a literal first: `re` searches for it fast (not so for "\?+")


# the same look-alikes with their case kept (Cyrillic "А" -> "A"), for the secret scan, where case matters
_CONFUSABLES_CASED = str.maketrans({src: (dst.upper() if src.isupper() else dst)
                                    for src, dst in ((chr(k), chr(v)) for k, v in _CONFUSABLES.items())})


@functools.lru_cache(maxsize=4096)
def unconfused(ch: str) -> str:
    """A non-ASCII character as the ASCII it stands for, when it does (see stands_for_ascii): NFKC
    ("ｐ" -> "p"), nothing for a format character such as a zero-width space, a look-alike Cyrillic or
    Greek letter as Latin, case kept. Otherwise the character itself."""
    if not stands_for_ascii(ch):
        return ch
    plain = unicodedata.normalize("NFKC", ch)
    return "" if unicodedata.category(ch) == "Cf" else plain if plain.isascii() else ch.translate(_CONFUSABLES_CASED)


@functools.lru_cache(maxsize=4096)
def stands_for_ascii(ch: str) -> bool:
    """Whether a non-ASCII character can hide part of a secret or its label: a full-width or other
    compatibility form of one ASCII character ("ｐ", "＿", "："), a look-alike letter, a format character
    (a zero-width space inside a word). "…" (three dots) or "é" cannot."""
    plain = unicodedata.normalize("NFKC", ch)
    return (len(plain) == 1 and plain.isascii()) or unicodedata.category(ch) == "Cf" or ch.translate(_CONFUSABLES) != ch


def _non_ascii_runs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of non-ASCII characters in `text`. Encoding with "?" for each of them and
    searching the bytes for "?" is a fast literal search; a character-class scan over the text is not
    (~15 ms per MB). A "?" the text really has is told apart from a replaced character here."""
    for marks in _QUESTION_MARKS.finditer(text.encode("ascii", "replace")):
        start, end = marks.span()
        if "?" not in text[start:end]:
            yield start, end
        else:
            for run in _NON_ASCII.finditer(text, start, end):
                yield run.span()


class Normalised:
    """`text` normalised, and where each of its characters came from."""

    def __init__(self, original: str):
        self.original = original
        self.runs: list[tuple[int, int]] = []  # (start, end) of each run of non-ASCII characters
        if original.isascii():  # the common case: nothing moves
            self.text = self.latin = original.lower()
            self._norm_starts, self._orig_starts = [0], [0]
            self.aligned = True
            return
        pieces: list[str] = []
        latin: list[str] = []  # the same, with Cyrillic and Greek look-alikes as Latin letters
        norm_starts: list[int] = [0]
        orig_starts: list[int] = [0]
        length = 0
        last = 0
        for start, end in _non_ascii_runs(original):
            self.runs.append((start, end))
            run = original[start:end]
            if start > last:
                pieces.append(original[last:start].lower())
                latin.append(pieces[-1])
                length += start - last
            chunk = _fold_run(run)
            if chunk is not None:  # same length: nothing moves
                pieces.append(chunk)
                latin.append(chunk.translate(_CONFUSABLES))
                length += len(chunk)
            else:
                for offset, ch in enumerate(run):
                    norm_starts.append(length)
                    orig_starts.append(start + offset)
                    folded = _fold_char(ch)
                    pieces.append(folded)
                    latin.append(folded.translate(_CONFUSABLES))
                    length += len(folded)
            norm_starts.append(length)
            orig_starts.append(end)
            last = end
        pieces.append(original[last:].lower())
        latin.append(pieces[-1])
        self.text, self.latin = "".join(pieces), "".join(latin)
        self._norm_starts, self._orig_starts = norm_starts, orig_starts
        self.aligned = norm_starts == orig_starts  # nothing moved: a position here is one in the original

    def position(self, index: int) -> int:
        """The index in the original text of the normalised character at `index`."""
        k = bisect.bisect_right(self._norm_starts, index) - 1
        return min(self._orig_starts[k] + (index - self._norm_starts[k]), len(self.original))


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", ch).lower().translate(_QUOTES)
    # a ligature ("ﬁ") becomes its letters; "…", "½" or "™" stay one character, so positions do not move
    return folded if len(folded) == 1 or folded.isalpha() else ch.lower()


@functools.lru_cache(maxsize=4096)  # the same few runs ("—", "é", "→") recur throughout a text
def _fold_run(run: str) -> str | None:
    """The run folded, when that keeps its length (so positions stay put); None otherwise."""
    if any(unicodedata.category(ch) == "Cf" for ch in run):
        return None
    folded = unicodedata.normalize("NFKC", run).lower().translate(_QUOTES)
    return folded if len(folded) == len(run) else None


# --- the phrases -----------------------------------------------------------------------------------
# Latin-script phrases as (trigger, pattern). The scan folds the text (lower case, digits and look-alike
# symbols to letters: c0nfidential -> confidentiai, l -> i) and runs a pattern only around its trigger
# word, so a megabyte costs one pass to list the words plus a little per trigger found. A trigger ending
# in "*" is a prefix. Patterns are written plainly; `_compile` folds them the same way, lets `[ ]` be any
# run of spaces, hyphens or underscores, and lets any non-ASCII letter stand for itself.
_NEGATED = (r"(?:do[ ]?n'?t|do[ ]not|never|please[ ]don'?t|must[ ]not|should[ ]not|shouldn'?t|can'?t|cannot|may[ ]not|"
            r"not[ ]to)[ ](?:be[ ])?(?:send|sent|share|shared|upload\w*|distribut\w*|forward\w*|disclos\w*|publish\w*|post|"
            r"posted|leak\w*|circulat\w*|copy|copied|repost|reveal\w*|pass[ ](?:this|it)[ ]on|tell[ ]anyone)")
LATIN: list[tuple[str, str]] = [
    # English
    ("confidential*", r"confidential\w*"), ("proprietary", r"proprietary"),
    ("internal", r"internal[ ](?:use[ ])?only|for[ ]internal[ ]use"),
    ("nda", r"nda"), ("ndas", r"ndas"), ("disclosure", r"non[ ]?disclosure"), ("nondisclosure", r"nondisclosure"),
    ("personal", r"personal[ ]data"), ("personally", r"personally[ ]identifiable"),
    ("pii", r"(?:contains?|containing|with|includes?|including|has|have)[ ](?:some[ ])?pii"),
    ("phi", r"(?:contains?|containing|with|includes?|including|has|have)[ ](?:some[ ])?phi"),
    *((word, r"(?:contains?|containing|includes?|including)[ ](?:our[ ]|some[ ])?(?:patient|customer|health|employee|"
             r"salary|medical|client)[ ]data") for word in ("patient", "customer", "health", "employee", "salary",
                                                             "medical", "client")),
    ("records", r"medical[ ]records"),
    ("sensitive", r"sensitive[ ](?:data|information|info|code|document\w*|material\w*|details|content|file\w*|customer\w*)"),
    ("secret", r"trade[ ]secret|top[ ]secret|keep[ ](?:this|it|that|these|them|everything)[ ]secret|"
               r"(?:this|it|that|these|which)[ ](?:is|are|was|stays|remains)[ ](?:strictly[ ]|very[ ]|highly[ ])?secret|"
               r"(?:it'?s|that'?s|this'?s)[ ](?:strictly[ ]|very[ ])?secret|(?:strictly|highly)[ ]secret|"
               r"(?:stay|stays|remain|remains|must[ ]stay|kept|be[ ]kept)[ ]secret"),
    ("secrets", r"trade[ ]secrets"),
    ("classified", r"classified[ ](?:information|document\w*|material)"),
    ("distribution", r"restricted[ ]distribution|not[ ]for[ ](?:public[ ])?distribution"),
    *((verb, _NEGATED) for verb in ("send", "sent", "share", "shared", "upload*", "distribut*", "forward*", "disclos*",
                                     "publish*", "post", "posted", "leak*", "circulat*", "copy", "copied", "repost",
                                     "reveal*", "pass", "tell")),
    *((word, r"not[ ]for[ ](?:distribution|publication|public[ ]\w+|external[ ]\w+|sharing|circulation|release)")
      for word in ("distribution", "publication", "public", "external", "sharing", "circulation", "release")),
    ("leave", r"not[ ]leave[ ](?:this|my|the|our)[ ](?:machine|computer|laptop|network|device|building|company|premises)"),
    ("keep", r"keep[ ](?:this|it|that|these|them|everything)[ ](?:private|confidential|local|offline|between[ ]us|"
             r"to[ ]yourself|on[ ](?:this|my|the)[ ]machine|internal|under[ ]wraps|quiet)"),
    ("local", r"(?:stay|stays|remain|remains|must[ ]stay|kept|be[ ]kept)[ ](?:local|on[ ](?:this|my|the)[ ]machine)|"
              r"local[ ]only"),
    ("machine", r"(?:stay|stays|remain|remains|must[ ]stay|kept|be[ ]kept|keep[ ]it)[ ]on[ ](?:this|my|the)[ ]machine"),
    ("offline", r"(?:stay|stays|remain|remains|must[ ]stay|kept|be[ ]kept|keep[ ]it|keep[ ]this)[ ]offline|offline[ ]only"),
    ("locally", r"(?:process|run|handle|answer|analy[sz]e|do|treat)[ ](?:this|it|that|these|them)?[ ]?(?:only[ ])?locally"),
    ("prem*", r"on[ ]?prem(?:ise)?s?[ ]only|(?:stay|stays|remain|kept)[ ]on[ ]?prem\w*"),
    ("privately", r"privately"),
    ("private", r"private[ ](?:and|&)[ ]confidential|"
                r"private[ ](?:data|information|info|notes?|documents?|conversation|matters?|messages?|details|records?|"
                r"diary|journal|thoughts|emails?|correspondence|memo|files?|photos?|letters?|medical|health|financial|"
                r"family|life)|"
                r"(?:this|it|that|these|which)[ ](?:is|are|was|stays|remains)[ ](?:strictly[ ]|very[ ]|highly[ ])?private|"
                r"(?:it'?s|that'?s|this'?s)[ ](?:strictly[ ]|very[ ])?private|(?:strictly|highly)[ ]private|"
                r"keep[ ](?:this|it|that|these|them|everything)[ ]private"),
    ("sensitive", r"(?:this|it|that|these|which)[ ](?:is|are|was)[ ](?:strictly[ ]|very[ ]|highly[ ])?(?:confidential|"
                  r"sensitive)|(?:strictly|highly)[ ]confidential"),
    ("eyes", r"eyes[ ]only"), ("between", r"between[ ](?:you[ ]and[ ]me|us)"), ("record", r"off[ ]the[ ]record"),
    ("embargo", r"(?:under|subject[ ]to)[ ](?:an[ ])?embargo"), ("embargoed", r"embargoed"),
    ("basis", r"need[ ]to[ ]know[ ]basis"),
    # German
    ("vertraulich*", r"vertraulich\w*"), ("geheimhaltung*", r"geheimhaltung\w*"),
    ("geheim", r"streng[ ]geheim|geheim[ ]?halten|(?:ist|sind|bleibt)[ ]geheim"), ("geheimhalten", r"geheimhalten"),
    ("verschlusssache", r"verschlusssache"), ("intern", r"nur[ ]intern"),
    ("internen", r"nur[ ]f(?:.|u|ue)r[ ]den[ ]internen[ ]gebrauch"), ("verwendung", r"interne?[ ]verwendung"),
    *((verb, r"nicht[ ](?:weitergeben|weiterleiten|teilen|versenden|hochladen|ver(?:.|o|oe)ffentlichen|verbreiten|senden)")
      for verb in ("weitergeben", "weiterleiten", "teilen", "versenden", "hochladen", "verbreiten", "senden", "ver")),
    ("daten", r"personenbezogene\w*[ ]daten"), ("betriebsgeheimnis*", r"betriebsgeheimnis\w*"),
    ("gesch*", r"gesch(?:.|a|ae)ftsgeheimnis\w*"), ("privat", r"(?:ist|sind)[ ](?:streng[ ])?privat"),
    ("privatsache", r"privatsache"),
    # French
    ("confidentiel*", r"confidentiel\w*"), ("confidentialit*", r"confidentialit(?:.|e)"),
    ("interne", r"(?:.|a)[ ]usage[ ]interne|usage[ ]interne"),
    *((verb, r"ne[ ](?:pas|jamais)[ ](?:partager|diffuser|divulguer|envoyer|transmettre|publier|communiquer)|"
             r"ne[ ](?:le[ ]|la[ ]|les[ ]|l')?(?:partagez|diffusez|divulguez|envoyez|transmettez|publiez)[ ](?:pas|jamais)")
      for verb in ("partager", "diffuser", "divulguer", "envoyer", "transmettre", "publier", "communiquer", "partagez",
                   "diffusez", "divulguez", "envoyez", "transmettez", "publiez")),
    ("donn*", r"donn(?:.|e)es[ ](?:personnelles|sensibles)"),
    ("secret", r"secret[ ](?:professionnel|d(?:.|e)fense|d'affaires|industriel)"),
    ("priv", r"(?:c'est|ceci[ ]est|est)[ ](?:strictement[ ])?priv(?:.|e)e?|strictement[ ]priv(?:.|e)e?"),
    ("gardez", r"gardez[ ](?:.a|ca|cela|ceci)[ ]secret"), ("garder", r"garder[ ](?:.a|ca|cela|ceci)[ ]secret"),
    # Spanish
    ("confidencial*", r"confidencial\w*"), ("interno", r"(?:de[ ]|para[ ])?uso[ ]interno"),
    *((verb, r"no[ ](?:compartir|distribuir|divulgar|enviar|difundir|publicar|reenviar|lo[ ]compartas|la[ ]compartas|"
             r"compartas|difundas|env(?:.|i)es)")
      for verb in ("compartir", "distribuir", "divulgar", "enviar", "difundir", "publicar", "reenviar", "compartas",
                   "difundas", "env")),
    ("datos", r"datos[ ](?:personales|sensibles)"), ("secreto", r"secreto[ ](?:comercial|profesional|industrial)|"
                                                            r"(?:es|son)[ ]secreto|mant(?:.|e)n\w*[ ](?:esto[ ]|en[ ])?(?:en[ ])?secreto"),
    ("privado", r"(?:es|son)[ ]privado"), ("privada", r"(?:es|son)[ ]privada"),
    # Italian
    ("riservat*", r"riservat\w*"), ("confidenziale", r"confidenziale"),
    *((verb, r"non[ ](?:condividere|divulgare|diffondere|inoltrare|inviare|pubblicare|distribuire)")
      for verb in ("condividere", "divulgare", "diffondere", "inoltrare", "inviare", "pubblicare", "distribuire")),
    ("dati", r"dati[ ](?:personali|sensibili)"), ("segreto", r"segreto[ ](?:aziendale|industriale|professionale)|"
                                                          r"(?:.|e')[ ]segreto"),
    ("privato", r"(?:.|e')[ ]privato"), ("privata", r"(?:.|e')[ ]privata"),
    # Portuguese
    ("sigilo*", r"sigilo\w*"),
    *((verb, r"n(?:.|a)o[ ](?:compartilhe|compartilhar|divulgar|divulgue|enviar|envie|distribuir|partilhar|partilhe|"
             r"repassar|repasse)")
      for verb in ("compartilhe", "compartilhar", "divulgar", "divulgue", "enviar", "envie", "distribuir", "partilhar",
                   "partilhe", "repassar", "repasse")),
    ("dados", r"dados[ ](?:pessoais|sens(?:.|i)veis)"), ("segredo", r"segredo[ ](?:comercial|industrial|profissional)"),
    # Dutch
    ("vertrouwelijk*", r"vertrouwelijk\w*"), ("geheimhouding*", r"geheimhouding\w*"),
    ("gebruik", r"(?:alleen[ ]voor[ ])?intern[ ]gebruik"),
    *((verb, r"niet[ ](?:delen|verspreiden|doorsturen|versturen|openbaar[ ]maken|publiceren|doorgeven)")
      for verb in ("delen", "verspreiden", "doorsturen", "versturen", "openbaar", "publiceren", "doorgeven")),
    ("persoonsgegevens", r"persoonsgegevens"), ("bedrijfsgeheim*", r"bedrijfsgeheim\w*"),
    ("priv", r"(?:is|zijn)[ ](?:strikt[ ])?priv(?:.|e)"),
]
# other scripts, as written (no case, no digits for letters); 秘密 alone is left out: 秘密鍵 is "private key"
OTHER = [
    # Japanese
    "機密", "社外秘", "部外秘", "極秘", "内密", "社内限定", "内部限定", "関係者外秘", "非公開", "口外禁止", "個人情報",
    "共有しないで", "送らないで", "外部に出さないで", "外部に送らないで", "外部に漏らさないで", "他言無用", "秘密にして",
    # Chinese
    "机密", "保密", "绝密", "內部使用", "内部使用", "仅限内部", "僅限內部", "请勿外传", "請勿外傳", "勿外传", "不要分享",
    "不要外传", "不要上传", "不要发送", "不要泄露", "不得外传", "个人信息", "個人資料", "隐私", "私密", "商业秘密", "商業秘密",
    # Korean
    "기밀", "대외비", "극비", "내부용", "내부 전용", "공유하지 마", "외부 유출 금지", "개인정보", "개인 정보", "비밀로",
    # Russian (stems: конфиденциально, конфиденциальность ...)
    "конфиденциальн", "секретн", "для служебного пользования", "не распространять", "не разглашать", "не передавать",
    "не пересылать", "не делиться", "не публиковать", "не отправлять", "персональные данные", "персональных данных",
    "коммерческая тайна", "коммерческую тайну", "строго между нами", "только для внутреннего", "лично и конфиденциально",
]


# the text's fold: lower case, digits and symbols that stand in for letters, and "l" (which "1" also
# stands for) to "i"; one byte per character, so positions stay put
_FOLD = bytes(range(256)).lower().translate(bytes.maketrans(b"0134578@$l", b"oieastbasi"))
_WORDS = bytes((b if 0x61 <= b <= 0x7A else 0x20) for b in range(256))  # letters stay, the rest is a space


def _fold_pattern(pattern: str) -> str:
    """Fold a plain pattern like the text: "l" -> "i", `[ ]` -> runs of spaces, hyphens or underscores,
    any non-ASCII letter -> any one character (the folded text holds "?" there)."""
    pattern = pattern.replace("[ ]?", r"[\s_\-.]{0,3}").replace("[ ]", r"[\s_\-.]{1,3}").replace("l", "i")
    return "".join(ch if ch.isascii() else "." for ch in pattern)


_TRIGGERS: dict[str, list[re.Pattern]] = {}
for _trigger, _pattern in LATIN:
    _TRIGGERS.setdefault(_fold_pattern(_trigger), []).append(
        re.compile(rb"(?<![a-z])(?:" + _fold_pattern(_pattern).encode() + rb")(?![a-z])"))
_TRIGGERS = {k.encode(): v for k, v in _TRIGGERS.items()}
# each trigger as a needle: the word (exact: a whole word), or a stem (only its start is a word boundary)
_NEEDLE_KEYS: dict[bytes, list[tuple[bytes, bool]]] = {}
for _key in _TRIGGERS:
    _NEEDLE_KEYS.setdefault(_key.rstrip(b"*"), []).append((_key, not _key.endswith(b"*")))
_needles = None  # needles.Needles of the triggers, built at the first search
_OTHER = tuple(OTHER)
# one alternation: `re` skips to the characters phrases start with, one pass for all of them
_OTHER_ANY = re.compile("|".join(map(re.escape, OTHER)))
# the scripts of OTHER, and forms NFKC turns into them (enclosed and half-width CJK, compatibility ideographs)
_HAS_OTHER_SCRIPT = re.compile(r"[\u0400-\u04ff\u3040-\u30ff\u3200-\u33ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
                               r"\uff61-\uffdc]")
_LETTER = frozenset(range(0x61, 0x7B))


def folded(text: str) -> bytes:
    """`text` folded (lower case, look-alike digits and symbols as letters), one byte per character."""
    return text.encode("ascii", "replace").translate(_FOLD)


def fold_word(word: str) -> bytes:
    return word.encode().translate(_FOLD)


class _Prepared:
    """One prompt, normalised and folded: made once for the secret scan and the phrase search
    (classify runs both on the same string), with the needles found in each fold."""

    def __init__(self, text: str, *, scan_only: bool = False):
        self.text = text
        if scan_only:  # only the secret scan's fold (`norm` and `fold` are the phrase search's)
            self.text_fold = folded(text)
            self._found = {}
            return
        self.norm = Normalised(text)
        self.fold = folded(self.norm.latin)   # positions are the normalised text's
        # the same positions as the text's when nothing moved: the scan shares it
        self.text_fold = self.fold if self.norm.aligned else folded(text)
        self._found: dict[tuple[int, bool], list[tuple[int, int]]] = {}
        self.triggers: list[tuple[int, int]] | None = None  # where a trigger word starts (see find)

    def found(self, needles, *, in_text: bool) -> list[tuple[int, int]]:
        """(start, needle index) of every needle in the text's fold (in_text) or the normalised one."""
        key = (id(needles), True if in_text else self.norm.aligned)
        if key not in self._found:
            self._found[key] = needles.find(self.text_fold if in_text else self.fold)
        return self._found[key]


_last: _Prepared | None = None


def _prepared(text: str) -> _Prepared:
    global _last
    last = _last
    if last is not None and last.text is text:
        return last
    _last = made = _Prepared(text)
    return made


def prepared(text: str, *, keep: bool = True) -> _Prepared:
    """`text` normalised and folded (`text_fold`: one byte per character of `text`), kept for the next
    check. With keep=False (a piece of a text, scanned once, which must not push the text out), only
    folded for the secret scan."""
    return _prepared(text) if keep else _Prepared(text, scan_only=True)


def _trigger_needles():
    global _needles
    if _needles is None:
        from .needles import Needles

        # each needle with a space in front, searched for in the fold with every non-letter a space: only
        # where a word starts is reported ("not" in "another" is not)
        _needles = Needles(b" " + key for key in _NEEDLE_KEYS)
    return _needles


def find(text: str) -> tuple[int, int, str] | None:
    """The first phrase that marks `text` private: (start, end, the phrase as written), positions in `text`."""
    made = _prepared(text)
    norm, fold = made.norm, made.fold
    needles = _trigger_needles()
    best: tuple[int, int] | None = None
    if made.triggers is None:
        made.triggers = needles.find(b" " + fold.translate(_WORDS))  # a match at i: the word starts at i
    for at, index in made.triggers:
        if best is not None and at - 40 >= best[0]:
            break
        needle = needles.needles[index][1:]
        end = at + len(needle)
        whole = end >= len(fold) or fold[end] not in _LETTER
        lo, hi = max(at - 40, 0), min(end + 60, len(fold))
        for key, exact in _NEEDLE_KEYS[needle]:
            if exact and not whole:
                continue
            for pattern in _TRIGGERS[key]:
                match = pattern.search(fold, lo, hi)
                if match and (best is None or match.start() < best[0]):
                    best = match.span()
    # looked for in the text's own non-ASCII runs: a search over the whole text costs ~6 ms per MB
    if any(_HAS_OTHER_SCRIPT.search(text, start, end) for start, end in norm.runs):
        found = _OTHER_ANY.search(norm.text)
        if found is not None and (best is None or found.start() < best[0]):
            best = found.span()
    if best is None:
        return None
    start, end = norm.position(best[0]), norm.position(best[1] - 1) + 1
    return start, end, text[start:end]
