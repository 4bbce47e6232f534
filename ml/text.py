"""Free text before any model sees it: personal data masked (`mask_pii`) and the language told (`detect_language`).

Standard library only, so ingest, the warehouse macros and the text models share one definition of what is masked.
The patterns run in Python here and, unchanged, in DuckDB (RE2) through the `cx_mask_text` macro of
`orchestration.lib.pseudonymize`; `tests/unit/test_pseudonymize.py` proves the two agree. So the patterns use
no lookarounds or backreferences, which RE2 lacks.
"""

from __future__ import annotations

import re
import unicodedata

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Phone-like runs, allowing spaces, dots, dashes and brackets between digits: an international number (a
# leading +) of 7 or more digits, or any run of 9 or more. Short national numbers written with a country code
# ("+1-555-0111") are numbers too; a bare 7-8 digit run (an order number) is not.
PHONE_RE = re.compile(r"\+\(?\d(?:[\s.\-()]*\d){6,}|\(?\d(?:[\s.\-()]*\d){8,}")
# Payment card numbers: 13-19 digits written as one run, in groups of four (16-19 digits) or as 4-6-4/4-6-5
# (Amex, Diners), separated by a space or a dash. The first digits are those of the card networks (2 for
# Mastercard's 22-27 range, 3 to 6 for the rest), so dates and compact timestamps (20240115..., 1700000000000)
# are not cards. Whole words only: `\b` keeps ids such as T0000000000123 and O-000123 intact. ASCII mode makes
# Python's `\b` and `\d` mean what RE2's do.
CARD_RE = re.compile(
    r"\b(?:"
    r"(?:[3-6]\d|2[2-7])\d\d(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?"
    r"|3\d{3}[ -]\d{6}[ -]\d{4,5}"
    r"|(?:[3-6]\d|2[2-7])\d{11,17}"
    r")\b",
    re.ASCII,
)

UNDETERMINED = "und"

# Unicode blocks of the scripts that name a language on their own (or, for Han and kana, together).
_SCRIPTS = (
    ("hangul", ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))),
    ("kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF))),
    ("cyrillic", ((0x0400, 0x052F),)),
    ("arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    ("greek", ((0x0370, 0x03FF), (0x1F00, 0x1FFF))),
    ("hebrew", ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))),
    ("thai", ((0x0E00, 0x0E7F),)),
)
_SCRIPT_LANGUAGE = {"hangul": "ko", "cyrillic": "ru", "arabic": "ar", "greek": "el", "hebrew": "he", "thai": "th"}
# One CJK character carries about as much as a short Latin word; without the weight a Korean sentence with a
# product name or two in English would count as English.
_CJK_WEIGHT = 3.0
# Share of the (weighted) letters a non-Latin script needs to name the language of a mixed text.
_SCRIPT_SHARE = 0.3

# A few dozen of each language's most frequent function words; enough to vote on a sentence, not a word.
STOPWORDS = {
    "en": frozenset(
        "the and is are was were it its this that to of in for on with my you not but have has had be been at as "
        "so very would will please me we they what when where how can could do does did an or if from your "
        "our just than then there which about after before".split()),
    "de": frozenset(
        "der die das und ist nicht ich ein eine einen mit von zu den dem des auf für sich es auch wie aber war "
        "mein meine bitte sehr noch nach bei wir sie hat haben wurde kein keine schon immer oder wenn dass "
        "ist's habe leider gut nur".split()),
    "fr": frozenset(
        "le la les et est un une des du je pas pour que qui dans avec sur mon ma mes ce cette il elle nous vous "
        "très mais ou été sont avait à au aux ne plus merci j'ai c'est n'est votre bien".split()),
    "es": frozenset(
        "el la los las y es un una por para con que pero muy mi mis del al lo se su está estoy fue como más "
        "también hay sin todo gracias pedido mí yo ha he".split()),
    "nl": frozenset(
        "de het een en is niet ik van dat die op te met voor zijn maar mijn ook nog wel er bij naar heb heeft "
        "werd geen dit deze zeer erg bestelling wat hoe graag".split()),
    "it": frozenset(
        "il lo la gli le e è un una di del della che non per con mi ma molto sono ho ha questo questa anche "
        "ancora grazie ordine più come nel alla".split()),
    "pt": frozenset(
        "o os as um uma de do da dos das e é não que com para por meu minha muito mas mais foi está isso este "
        "esta obrigado pedido também ao em no na".split()),
}
# Letters that only some of the languages use; each adds a tenth of a vote.
_LATIN_HINTS = {"de": "ßäöü", "fr": "çœèêëàâîôû", "es": "ñ¿¡", "pt": "ãõ", "it": "ìò"}


def _voters() -> dict[str, tuple[str, ...]]:
    """Each function word and the languages it belongs to: a word shared by k languages gives each 1/k."""
    out: dict[str, list[str]] = {}
    for language, words in STOPWORDS.items():
        for word in words:
            out.setdefault(word, []).append(language)
    return {word: tuple(languages) for word, languages in out.items()}


_VOTERS = _voters()
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def mask_pii(text: str | None) -> str | None:
    """`text` with card numbers, then e-mail addresses, then phone numbers replaced by `[card]`, `[email]` and
    `[phone]`. Cards go first because a grouped card number is also a phone-like run. Idempotent."""
    if text is None:
        return None
    return PHONE_RE.sub("[phone]", EMAIL_RE.sub("[email]", CARD_RE.sub("[card]", text)))


def _script(codepoint: int) -> str | None:
    for name, blocks in _SCRIPTS:
        for low, high in blocks:
            if low <= codepoint <= high:
                return name
    return None


def detect_language(text: str | None) -> str:
    """ISO 639-1 code of the text's language, or "und" when it cannot be told. Offline and fast.

    Scripts that belong to one language decide alone (Hangul → ko, kana → ja, Han without kana → zh, Cyrillic
    → ru, Arabic → ar, Greek → el, Hebrew → he, Thai → th) once they make up a fair share of the letters. Latin
    text is decided by a vote of function words among en, de, fr, es, nl, it and pt; no such word, or a tie,
    gives "und".
    """
    if not text:
        return UNDETERMINED
    counts: dict[str, float] = {}
    latin = 0
    for char in text:
        if not char.isalpha():
            continue
        codepoint = ord(char)
        if codepoint < 0x0250 or 0x1E00 <= codepoint <= 0x1EFF:
            latin += 1
            continue
        script = _script(codepoint)
        if script is not None:
            counts[script] = counts.get(script, 0.0) + 1.0
    if counts:
        cjk = counts.get("hangul", 0.0) + counts.get("kana", 0.0) + counts.get("han", 0.0)
        other = {k: v for k, v in counts.items() if k not in ("hangul", "kana", "han")}
        weighted = {"cjk": cjk * _CJK_WEIGHT, **other}
        script, amount = max(weighted.items(), key=lambda kv: (kv[1], kv[0]))
        if amount >= _SCRIPT_SHARE * (amount + latin):
            if script != "cjk":
                return _SCRIPT_LANGUAGE[script]
            if counts.get("hangul", 0.0) >= counts.get("kana", 0.0) and counts.get("hangul", 0.0) > 0:
                return "ko"
            return "ja" if counts.get("kana", 0.0) > 0 else "zh"
    if latin == 0:
        return UNDETERMINED
    return _latin_language(text)


def _latin_language(text: str) -> str:
    lowered = unicodedata.normalize("NFC", text.lower()).replace("\u2019", "'")
    votes = dict.fromkeys(STOPWORDS, 0.0)
    for word in _WORD_RE.findall(lowered):
        languages = _VOTERS.get(word)
        if languages:
            for language in languages:
                votes[language] += 1.0 / len(languages)
    for language, letters in _LATIN_HINTS.items():
        votes[language] += 0.1 * sum(lowered.count(letter) for letter in letters)
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    (best, top), (_, second) = ranked[0], ranked[1]
    if top <= 0 or top == second:
        return UNDETERMINED
    return best
