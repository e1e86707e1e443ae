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
import re
import unicodedata

# --- normalisation with a map back to the original ------------------------------------------------
_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"',
                         "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "\u00a0": " "})
# Cyrillic and Greek letters that look like Latin ones (one character for one: positions do not move)
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏвкмнтьгпАВЕКМНОРСТУХІЈЅαβεικνορτυχηςοΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhlbkmhtbrnabekmhopctyxijsabeikvoptuxnsoabezhikmnoptyx")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


class Normalised:
    """`text` normalised, and where each of its characters came from."""

    def __init__(self, original: str):
        self.original = original
        if original.isascii():  # the common case: nothing moves
            self.text, self._norm_starts, self._orig_starts = original.lower(), [0], [0]
            return
        pieces: list[str] = []
        norm_starts: list[int] = [0]
        orig_starts: list[int] = [0]
        length = 0
        last = 0
        for run in _NON_ASCII.finditer(original):
            if run.start() > last:
                pieces.append(original[last:run.start()].lower())
                length += run.start() - last
            chunk = _fold_run(run.group(0))
            if chunk is not None:  # same length: nothing moves
                pieces.append(chunk)
                length += len(chunk)
            else:
                for offset, ch in enumerate(run.group(0)):
                    norm_starts.append(length)
                    orig_starts.append(run.start() + offset)
                    folded = _fold_char(ch)
                    pieces.append(folded)
                    length += len(folded)
            norm_starts.append(length)
            orig_starts.append(run.end())
            last = run.end()
        pieces.append(original[last:].lower())
        self.text = "".join(pieces)
        self._norm_starts, self._orig_starts = norm_starts, orig_starts

    def position(self, index: int) -> int:
        """The index in the original text of the normalised character at `index`."""
        k = bisect.bisect_right(self._norm_starts, index) - 1
        return min(self._orig_starts[k] + (index - self._norm_starts[k]), len(self.original))


def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    return unicodedata.normalize("NFKC", ch).lower().translate(_QUOTES)


def _fold_run(run: str) -> str | None:
    """The run folded, when that keeps its length (so positions stay put); None otherwise."""
    if any(unicodedata.category(ch) == "Cf" for ch in run):
        return None
    folded = unicodedata.normalize("NFKC", run).lower().translate(_QUOTES)
    return folded if len(folded) == len(run) else None


# --- the phrases -----------------------------------------------------------------------------------
# Latin-script phrases, written plainly; `_latin` turns each into a pattern that accepts digits for
# letters (c0nfidential, pr1vate) and any run of spaces, hyphens or underscores between words.
_LEET = {"a": "[a4@]", "e": "[e3€]", "i": "[i1!|l]", "l": "[l1|i]", "o": "[o0]", "s": "[s5$]", "t": "[t7]", "g": "[g9]",
         "b": "[b8]"}

LATIN = [
    # English
    r"confidential\w*", r"proprietary", r"internal[ ]only", r"internal[ ]use[ ]only", r"for[ ]internal[ ]use",
    r"ndas?", r"under[ ]nda", r"non[ ]?disclosure", r"personal[ ]data", r"personally[ ]identifiable",
    r"(?:contains?|containing|with|includes?|including|has|have)[ ](?:some[ ])?(?:pii|phi|patient[ ]data|customer[ ]data|"
    r"health[ ]data|medical[ ]records?|employee[ ]data|salary[ ]data)",
    r"sensitive[ ](?:data|information|info|code|document\w*|material\w*|details|content|file\w*|customer\w*)",
    r"trade[ ]secrets?", r"top[ ]secret", r"classified[ ](?:information|document\w*|material)", r"restricted[ ]distribution",
    r"(?:do[ ]?n'?t|do[ ]not|never|please[ ]don'?t|must[ ]not|should[ ]not|shouldn'?t|can'?t|cannot|may[ ]not)[ ]"
    r"(?:be[ ])?(?:send|sent|share|shared|upload\w*|distribut\w*|forward\w*|disclos\w*|publish\w*|post|posted|leak\w*|"
    r"circulat\w*|copy|copied|repost|reveal\w*|pass[ ](?:this|it)[ ]on|tell[ ]anyone)",
    r"not[ ]for[ ](?:distribution|publication|public[ ]\w+|external[ ]\w+|sharing|circulation|release)",
    r"keep[ ](?:this|it|that|these|them|everything)[ ](?:secret|private|confidential|local|offline|between[ ]us|"
    r"to[ ]yourself|on[ ](?:this|my|the)[ ]machine|internal|under[ ]wraps|quiet)",
    r"(?:stay|stays|remain|remains|must[ ]stay|kept|be[ ]kept)[ ](?:local|on[ ](?:this|my|the)[ ]machine|on[ ]?prem\w*|"
    r"offline|confidential|secret)",
    r"(?:process|run|handle|answer|analy[sz]e|do|treat)[ ](?:this|it|that|these|them)?[ ]?(?:only[ ])?locally",
    r"local[ ]only", r"on[ ]?prem(?:ise)?s?[ ]only", r"offline[ ]only", r"not[ ]leave[ ](?:this|my|the|our)[ ]"
    r"(?:machine|computer|laptop|network|device|building|company|premises)",
    r"privately", r"private[ ](?:and|&)[ ]confidential",
    r"private[ ](?:data|information|info|notes?|documents?|conversation|matters?|messages?|details|records?|diary|"
    r"journal|thoughts|emails?|correspondence|memo|files?|photos?|letters?|medical|health|financial|family|life)",
    r"(?:this|it|that|these|which)[ ](?:is|are|was|stays|remains)[ ](?:strictly[ ]|very[ ]|highly[ ])?(?:private|secret|"
    r"confidential|sensitive)", r"(?:it'?s|that'?s|this'?s)[ ](?:strictly[ ]|very[ ])?(?:private|secret)",
    r"(?:strictly|highly)[ ](?:private|confidential|secret)", r"(?:for[ ]your|for[ ]my)[ ]eyes[ ]only", r"eyes[ ]only",
    r"between[ ](?:you[ ]and[ ]me|us)", r"off[ ]the[ ]record", r"(?:under|subject[ ]to)[ ](?:an[ ])?(?:nda|embargo)",
    r"embargoed", r"need[ ]to[ ]know[ ]basis",
    # German
    r"vertraulich\w*", r"geheimhaltung\w*", r"streng[ ]geheim", r"geheim[ ]?halten", r"(?:ist|sind|bleibt)[ ]geheim",
    r"verschlusssache", r"nur[ ]f(?:ü|u|ue)r[ ]den[ ]internen[ ]gebrauch", r"nur[ ]intern", r"interne?[ ]verwendung",
    r"nicht[ ](?:weitergeben|weiterleiten|teilen|versenden|hochladen|ver(?:ö|o|oe)ffentlichen|verbreiten|senden)",
    r"personenbezogene\w*[ ]daten", r"betriebsgeheimnis\w*", r"gesch(?:ä|a|ae)ftsgeheimnis\w*",
    r"(?:ist|sind)[ ](?:streng[ ])?privat", r"privatsache",
    # French
    r"confidentiel\w*", r"confidentialit(?:é|e)", r"(?:à|a)[ ]usage[ ]interne", r"usage[ ]interne",
    r"ne[ ](?:pas|jamais)[ ](?:partager|diffuser|divulguer|envoyer|transmettre|publier|communiquer)",
    r"ne[ ](?:le[ ]|la[ ]|les[ ]|l')?(?:partagez|diffusez|divulguez|envoyez|transmettez|publiez)[ ](?:pas|jamais)",
    r"donn(?:é|e)es[ ](?:personnelles|sensibles)", r"secret[ ](?:professionnel|d(?:é|e)fense|d'affaires|industriel)",
    r"(?:c'est|ceci[ ]est|est)[ ](?:strictement[ ])?priv(?:é|e)e?", r"strictement[ ]priv(?:é|e)e?", r"garde[rz][ ](?:ça|ca|cela|ceci)[ ]secret",
    # Spanish
    r"confidencial\w*", r"(?:de[ ]|para[ ])?uso[ ]interno", r"no[ ](?:compartir|distribuir|divulgar|enviar|difundir|publicar|"
    r"reenviar|lo[ ]compartas|la[ ]compartas|compartas|difundas|env(?:í|i)es)",
    r"datos[ ](?:personales|sensibles)", r"secreto[ ](?:comercial|profesional|industrial)", r"(?:es|son)[ ](?:privado|privada|secreto)",
    r"mant(?:é|e)n(?:lo|gan|er)?[ ](?:esto[ ]|en[ ])?(?:en[ ])?secreto",
    # Italian
    r"riservat\w*", r"confidenziale", r"(?:ad[ ]|per[ ])?uso[ ]interno", r"non[ ](?:condividere|divulgare|diffondere|inoltrare|"
    r"inviare|pubblicare|distribuire)", r"dati[ ](?:personali|sensibili)", r"segreto[ ](?:aziendale|industriale|professionale)",
    r"(?:è|e')[ ](?:privato|privata|segreto)",
    # Portuguese
    r"sigilos\w*", r"sigilo", r"n(?:ã|a)o[ ](?:compartilhe|compartilhar|divulgar|divulgue|enviar|envie|distribuir|partilhar|"
    r"partilhe|repassar|repasse)", r"dados[ ](?:pessoais|sens(?:í|i)veis)", r"segredo[ ](?:comercial|industrial|profissional)",
    r"(?:é|e)[ ](?:privado|privada|secreto)",
    # Dutch
    r"vertrouwelijk\w*", r"geheimhouding\w*", r"(?:alleen[ ]voor[ ])?intern[ ]gebruik", r"niet[ ](?:delen|verspreiden|"
    r"doorsturen|versturen|openbaar[ ]maken|publiceren|doorgeven)", r"persoonsgegevens", r"bedrijfsgeheim\w*",
    r"(?:is|zijn)[ ](?:strikt[ ])?priv(?:é|e)",
]
# other scripts, as written (no case, no digits for letters); 秘密 alone is left out: 秘密鍵 is "private key"
OTHER = [
    # Japanese
    r"機密", r"社外秘", r"部外秘", r"極秘", r"内密", r"社内限定", r"内部限定", r"関係者外秘", r"非公開", r"口外禁止",
    r"個人情報", r"共有しないで", r"送らないで", r"外部に(?:出|送|漏ら)さないで", r"他言無用", r"秘密に(?:して|しておいて)",
    # Chinese
    r"机密", r"保密", r"绝密", r"機密", r"內部使用", r"内部使用", r"仅限内部", r"僅限內部", r"请勿外传", r"請勿外傳", r"勿外传",
    r"不要(?:分享|外传|上传|发送|泄露)", r"不得外传", r"个人信息", r"個人資料", r"隐私", r"私密", r"商业秘密", r"商業秘密",
    # Korean
    r"기밀", r"대외비", r"극비", r"내부용", r"내부[ ]?전용", r"공유하지[ ]?마", r"외부[ ]?유출[ ]?금지", r"개인[ ]?정보", r"비밀로",
    # Russian
    r"конфиденциальн\w*", r"секретн\w*", r"совершенно[ ]секретно", r"для[ ]служебного[ ]пользования",
    r"не[ ](?:распространять|разглашать|передавать|пересылать|делиться|публиковать|отправлять)", r"персональн\w*[ ]данн\w*",
    r"коммерческ\w*[ ]тайн\w*", r"строго[ ]между[ ]нами", r"только[ ]для[ ]внутреннего", r"(?:это[ ])?лично[ ]и[ ]конфиденциально",
]


def _latin(phrase: str) -> str:
    out, i = [], 0
    while i < len(phrase):
        ch = phrase[i]
        if ch == "\\" or ch == "[" or ch == "(" and phrase[i:i + 3] == "(?:":
            # copy escapes, classes and group openers untouched
            if ch == "\\":
                out.append(phrase[i:i + 2])
                i += 2
                continue
            if ch == "[":
                close = phrase.index("]", i)
                cls = phrase[i:close + 1]
                i = close + 1
                if cls == "[ ]" and phrase[i:i + 1] == "?":
                    out.append(r"[\s_\-.]{0,3}")
                    i += 1
                else:
                    out.append(r"[\s_\-.]{1,3}" if cls == "[ ]" else cls)
                continue
            out.append("(?:")
            i += 3
            continue
        if ch == "'":
            out.append("'?")
        else:
            out.append(_LEET.get(ch, ch))
        i += 1
    return "".join(out)


_LATIN_RE = re.compile(r"(?<![^\W\d_])(?:" + "|".join(_latin(p) for p in LATIN) + r")(?![^\W\d_])")
_OTHER_RE = re.compile("|".join(p.replace("[ ]", r"\s{0,2}") for p in OTHER))
_HAS_OTHER_SCRIPT = re.compile(r"[\u0400-\u04ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def find(text: str) -> tuple[int, int, str] | None:
    """The first phrase that marks `text` private: (start, end, the phrase as written), positions in `text`."""
    norm = Normalised(text)
    hits = []
    latin = _LATIN_RE.search(norm.text.translate(_CONFUSABLES))
    if latin:
        hits.append(latin.span())
    if not norm.text.isascii() and _HAS_OTHER_SCRIPT.search(norm.text):
        other = _OTHER_RE.search(norm.text)
        if other:
            hits.append(other.span())
    if not hits:
        return None
    start, end = min(hits)
    start, end = norm.position(start), norm.position(end - 1) + 1
    return start, end, text[start:end]
