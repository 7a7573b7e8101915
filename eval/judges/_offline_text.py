"""What the offline judge reads in a text: passage units, quantities with their units, names, negations.

Passages arrive as retrieved chunks: hard-wrapped Markdown, table rows, list items, PDF lines. A
*unit* (`segments`) is one sentence of that text; wrapped lines are joined back first (a line ends a
unit only at a full stop, or when the next line starts a list item, a table row or a heading), and a
unit keeps the *lead* that scopes it (an ALL-CAPS heading, a list's "Nordy cannot:"). A *mention*
of a quantity keeps its unit, so "45 days" and "45%" differ while "45 days", "45-day" and "45 天"
agree; a number inside a name ("Volt 300", "E05", "NH-18650-35", a phone number) is not a quantity.
Names are the corpus's products, places, carriers, tiers... (`LEXICON`), codes, e-mail addresses and
other capitalised words inside a sentence. Negation cues are English ("not", "no", "never", "without",
"cannot", "n't") and Chinese (不, 没, 无, 非, 未, minus words such as 不过 "however" that only look
negative); a cue's *scope* is what it negates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.grounding import split_sentences
from rag.tokenizer import HAN

__all__ = ["CJK", "LEXICON", "Mention", "Segment", "entities", "group_names", "has_cjk", "mentions", "name_in", "negated",
           "negation_scopes", "normalise", "segments", "units"]

CJK = HAN  # a Han character, as the tokenizer reads them
_BLOCK_START = re.compile(r"^\s*(?:[-*•|>]|\d+[.)]\s|\d+\s+[A-Z]|[A-Z][A-Z &/()'-]{3,}$|Q:|A:|#)")
_TERMINAL = (".", "!", "?", ":", ";", "。", "！", "？", "；", "：")
_MARKUP = re.compile(r"^\s*(?:[-*•>#]+\s*|\d+[.)]\s+)|\*\*|\|")
_TABLE_RULE = re.compile(r"^[\s|:-]+$")
_YES = re.compile(r"\bYes\b")  # a comparison-table row states its own polarity
_ITEM = re.compile(r"^\s*(?:[-*•|]|\d+[.)]?\s)")
_COLUMNS = re.compile(r"\S\s{2,}\S")  # a plain-text table row: columns separated by runs of spaces
_ABBREVIATIONS = re.compile(r"\b(?:[ap]\.m|e\.g|i\.e)\.", re.IGNORECASE)  # full stops that end no sentence


def normalise(text: str) -> str:
    """NFKC, so full-width digits and punctuation compare equal to ASCII ones."""
    return unicodedata.normalize("NFKC", text)


def has_cjk(text: str) -> bool:
    return bool(CJK.search(text))


@dataclass(frozen=True, slots=True)
class Segment:
    """One sentence of a passage, with the lead that scopes it: the ALL-CAPS heading of its section ("WHAT
    WE DO NOT MATCH") or, for the first sentence of a list item, the list's lead-in ("Nordy cannot:")."""

    text: str
    lead: str = ""


def units(passage: str) -> list[str]:
    """The passage's sentences, with hard-wrapped lines joined and Markdown table/list markup removed."""
    return [s.text for s in segments(passage)]


def segments(passage: str) -> list[Segment]:
    """The passage's sentences with their leads (see `Segment`)."""
    out: list[Segment] = []
    heading = lead_in = ""
    for block, item in _blocks(passage):
        text = re.sub(r"\s+", " ", _MARKUP.sub(" ", block)).strip()
        if not re.search(r"\w", text):
            continue
        if not item:
            lead_in = ""
        if _is_heading(text):
            heading, lead_in = text, ""
            out.append(Segment(text))
            continue
        sentences = [s for s in split_sentences(text) if re.search(r"\w", s)]
        for number, sentence in enumerate(sentences):
            lead = " ".join(filter(None, (heading, lead_in if number == 0 else "")))
            out.append(Segment(sentence, "" if _YES.search(sentence) else lead))
        if sentences and sentences[-1].endswith((":", "：")):
            lead_in = sentences[-1]
    return out


def _blocks(passage: str) -> list[tuple[str, bool]]:
    """Lines of the passage with wrapped ones joined, each marked as a list item / table row or not."""
    blocks: list[tuple[str, bool]] = []
    text = _ABBREVIATIONS.sub(lambda m: m.group().replace(".", ""), normalise(passage))
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _TABLE_RULE.match(line):
            continue
        previous = blocks[-1][0] if blocks else ""
        wrapped = len(previous) >= 50 and not previous.endswith(_TERMINAL) and not _COLUMNS.search(previous)
        if wrapped and not previous.startswith("|") and not _BLOCK_START.match(raw) and not _COLUMNS.search(line):
            blocks[-1] = (f"{previous} {line}", blocks[-1][1])
        else:
            blocks.append((line, bool(_ITEM.match(raw))))
    return blocks


def _is_heading(text: str) -> bool:
    """An all-caps line ("WHAT WE DO NOT MATCH"): a section title of a plain-text document."""
    letters = re.sub(r"[^A-Za-z]", "", text)
    return len(letters) >= 4 and letters.isupper() and len(text) <= 60 and not has_cjk(text)


# --- numbers --------------------------------------------------------------------------------------

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "sixty": 60}
_UNIT_ALIASES = {
    "%": "%", "percent": "%", "per": "", "°c": "c", "c": "c", "°f": "f", "f": "f", "h": "hour", "hr": "hour",
    "hrs": "hour", "hour": "hour", "min": "minute", "mins": "minute", "minute": "minute", "s": "second",
    "sec": "second", "second": "second", "day": "day", "business": "day", "week": "week", "month": "month",
    "year": "year", "yr": "year", "am": "oclock", "pm": "oclock", "a": "ampere", "lumens": "lumen",
    "cycles": "cycle", "points": "point", "小时": "hour", "分钟": "minute", "天": "day", "个工作日": "day",
    "年": "year", "周": "week", "月": "month", "秒": "second", "美元": "$", "米": "m", "克": "g", "流明": "lumen",
}
_CURRENCY = r"CA\$|US\$|\$|€|£|¥"
_VALUE = r"[-−]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?)"
_NUMBER = re.compile(
    rf"(?<![\w.\-/:−])(?P<cur>{_CURRENCY})?\s?(?P<num>{_VALUE})"
    rf"(?:\s?(?:[-–]|to)\s?(?:{_CURRENCY})?(?P<num2>\d+(?:[.,]\d+)?))?"
    r"(?P<unit>[\s-]?(?:%|°\s?[CF]\b|[A-Za-z]+|个工作日|小时|分钟|美元|流明|[天年周月秒米克]))?"
)
_FUNCTION_WORDS = ("a an and or to into of for in on at by with the than from per is are was were be it its if as so but "
                   "that this then x")  # words after a number that are not its unit
_NOT_UNITS = frozenset(_FUNCTION_WORDS.split())
_WORD_NUMBER = re.compile(rf"\b(?P<word>{'|'.join(_WORDS)})(?P<half> and a half)?[\s-](?P<unit>[a-z]+)", re.IGNORECASE)
_HALF_HOUR = re.compile(r"\bhalf an hour\b", re.IGNORECASE)
_NOT_QUANTITIES = re.compile(
    r"\b(?:Volt 300|Solis 60|Driftwood 20|Cascade 2P|Hearth [TR][S\d]\d?|Tidal BT5|Aurora X2)\b"  # products
    r"|\b\d{1,3}-\d{3}-\d{3}-\d{4}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d+\.\d+\.\d+\b"  # phone numbers, dates, versions
    r"|\b(?:Policy|Android|iOS|version|firmware)\s\d+\b|\[\d+\]",  # names with a number, citation markers
)
_QUANTITY_UNITS = {"day", "week", "month", "year", "hour", "minute", "second", "time", "panel", "cell", "stage",
                   "sensor", "card", "payment", "point", "device", "phone", "stake", "period"}

Mention = tuple[float, str]  # (value, canonical unit or "")


def _unit(raw: str | None, currency: str | None) -> str:
    if currency:
        return "$" if "$" in currency else currency
    raw = (raw or "").strip(" -")
    word = raw.casefold().replace(" ", "")
    if not word or (word in _NOT_UNITS and raw != "A"):
        return ""
    if word in _UNIT_ALIASES:
        return _UNIT_ALIASES[word]
    singular = word[:-1] if word.endswith("s") and len(word) > 3 else word
    return _UNIT_ALIASES.get(singular, singular)


def mentions(text: str) -> list[Mention]:
    """Every quantity the text states, as (value, unit); a range ("5–10 days") gives both ends the unit."""
    text = _NOT_QUANTITIES.sub(" ", normalise(text))
    found: list[Mention] = []
    for match in _NUMBER.finditer(text):
        unit = _unit(match["unit"], match["cur"])
        ends = [match["num"], match["num2"]] if match["num2"] else [match["num"]]
        found += [(float(v.replace(",", "").replace("−", "-")), unit) for v in ends]
    for match in _WORD_NUMBER.finditer(text):
        unit = _unit(match["unit"], None)
        if unit in _QUANTITY_UNITS:
            found.append((_WORDS[match["word"].casefold()] + (0.5 if match["half"] else 0.0), unit))
    found += [(30.0, "minute") for _ in _HALF_HOUR.finditer(text)]
    return found


# --- names ----------------------------------------------------------------------------------------

LEXICON: dict[str, tuple[str, ...]] = {
    "product": ("Aurora X2", "Tidal BT5", "Hearth T4", "Hearth RS1", "BrewPoint", "Volt 300", "Solis 60",
                "Cascade 2P", "Driftwood 20"),
    "place": ("Canada", "European Union", "EU", "United States", "US", "Portland", "Hong Kong", "Singapore", "Taiwan",
              "Hawaii", "Alaska", "Puerto Rico", "Germany", "France", "California", "Oregon", "Japan"),
    "carrier": ("UPS", "USPS", "DHL", "Canada Post"),
    "tier": ("Base Camp", "Ridge", "Summit"),
    "app": ("Nordhaven Home", "Nordhaven Sound"),
    "payment": ("Klarna", "PayPal", "Apple Pay", "Google Pay", "Visa", "Mastercard", "American Express", "iDEAL"),
    "rating": ("IPX7", "IP67", "IP65"),
    "connector": ("XT60", "Anderson", "USB-C", "USB-A", "Schuko"),
    "zh-place": ("香港", "新加坡", "台湾", "日本", "韩国", "中国大陆", "波特兰", "美国", "加拿大", "欧盟"),
}
_CODE = re.compile(r"\b(?:[A-Z]{1,4}-)*[A-Z]{1,4}\d+[A-Z0-9]*(?:-[A-Z0-9]+)*\b|\bNH-[A-Z0-9-]*[A-Z0-9]\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CAPITALISED = re.compile(r"(?<=[a-z,;:)] )[A-Z][A-Za-z0-9]+(?![\w-])")
_EVERYDAY_CAPITALISED = (  # modes, buttons, weekdays...: capitalised, but no name a claim could get wrong
    "I High Medium Low Red SOS Start Power Temp Keep Warm MAX MIN Eco AC DC LED Wi-Fi Bluetooth Pacific Time "
    "Standard Ground Expedited Overnight Celsius Fahrenheit Monday Tuesday Wednesday Thursday Friday Saturday "
    "Sunday Yes No Customer Care Returns Policy Limited Warranty"
)
_COMMON_CAPITALISED = frozenset(_EVERYDAY_CAPITALISED.split())


def entities(text: str) -> dict[str, str]:
    """The names the text mentions, case-folded, with their sort: a LEXICON group for the corpus's products,
    places, carriers..., "code" (E05, NH-YPAR, RMA-...), "email", or "word" for another capitalised word
    inside a sentence (everyday capitalised words such as modes and buttons left out)."""
    text = normalise(text)
    found: dict[str, str] = {}
    for group, names in LEXICON.items():
        for name in names:
            if _contains_name(text, name):
                found[name] = group
                text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", " ", text)
    found |= {code: "code" for code in _CODE.findall(text)} | {mail: "email" for mail in _EMAIL.findall(text)}
    text = _CODE.sub(" ", _EMAIL.sub(" ", text))
    found |= {w: "word" for w in _CAPITALISED.findall(text) if w not in _COMMON_CAPITALISED and w not in found}
    return {name.casefold(): group for name, group in found.items()}


def group_names(group: str) -> tuple[str, ...]:
    """The case-folded lexicon names of a group."""
    return tuple(n.casefold() for n in LEXICON.get(group, ()))


def _contains_name(text: str, name: str) -> bool:
    if has_cjk(name):
        return name in text
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def name_in(name: str, text: str) -> bool:
    """Whether a case-folded name, another name for it ("us" / "united states") or, for a single word of five
    letters or more, a derived form ("canadian", "sundays") occurs in the text."""
    folded = normalise(text).casefold()
    if any(_contains_name(folded, n) for n in _ALIASES.get(name, (name,))):
        return True
    stem = re.escape(name[:-1])
    return len(name) >= 5 and name.isalpha() and re.search(rf"(?<![\w-]){stem}[a-z]*", folded) is not None


_ALIASES = {"us": ("us", "united states", "usa"), "united states": ("united states", "us", "usa"),
            "eu": ("eu", "european union"), "european union": ("european union", "eu")}


# --- negation -------------------------------------------------------------------------------------

SCOPE_WORDS = 4  # words after an English cue that it negates (up to a comma or the end of the clause)
_EN_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|unable)\b|n't\b", re.IGNORECASE)
_ZH_NEGATION = re.compile(r"[不没无非未勿别]")
_ZH_NOT_NEGATION = re.compile(r"不过|不同|非常|无论|不仅|不管|别的|无线|除非")
_ZH_CLAUSE_END = re.compile(r"[,.;:!?()。，；：！？、]")
_REPLY = re.compile(r"^\s*(?:yes|no|sorry,? no|unfortunately(?: not)?|not really|not entirely)\b[,:.;—-]*\s*"
                    r"|^(?:可以|不能|不可以|是的|不是)[，,：:]", re.IGNORECASE)


def negated(text: str) -> bool:
    """Whether the statement holds a negation (a leading "Yes," / "No," that only answers the question aside)."""
    return bool(negation_scopes(text))


def negation_scopes(text: str) -> list[str]:
    """What each negation cue of the statement negates: the next SCOPE_WORDS words, up to a comma or the end
    of the clause (Chinese: the next four characters). A leading "Yes," / "No," answering the question is skipped."""
    text = _REPLY.sub("", normalise(text), count=1)
    scopes = [_clause(text[m.end() :]) for m in _EN_NEGATION.finditer(text)]
    masked = _ZH_NOT_NEGATION.sub(lambda m: "_" * len(m.group()), text)
    scopes += [_ZH_CLAUSE_END.split(text[m.end() : m.end() + 4])[0] for m in _ZH_NEGATION.finditer(masked)]
    return [s for s in scopes if s.strip()]


def _clause(rest: str) -> str:
    words = re.split(r"[,.;:!?()—]", rest, maxsplit=1)[0].split()
    return " ".join(words[:SCOPE_WORDS])
