"""The offline judge's evidence for one claim: where the passages state it, and whether that place agrees
on its numbers, names and polarity.

The passages are cut into units (`_offline_text.segments`: sentences, list items, table rows) and
windows of one or two adjacent units. A claim's *evidence* is the window holding the largest share of
its terms and quantities; its *neighbourhood* adds one unit either side and the lead of the list or
section. A claim that continues the one before it (", which costs $19.00") is located together with
that claim, but only its own numbers, names and polarity are checked. Features, all 0..1:

    lexical           share of the claim's terms (stemmed words) in the evidence (0 for Chinese)
    lexical_any       share of its terms anywhere in the passages
    embedding         MiniLM cosine of the claim with its evidence (0 for Chinese: MiniLM reads English)
    lexical_zh        for a Chinese claim: share of its terms (jieba words and character bigrams) in the evidence
    numbers           1 when every quantity (value + unit, "45 days" is not "45%") is stated in the neighbourhood
    numbers_any       1 when every quantity is stated somewhere in the passages
    entities          1 when no name conflicts with the neighbourhood (see `_conflicts`)
    entities_any      1 when no name conflicts with the passages as a whole
    negation_added    the claim negates terms its evidence states plainly
    negation_dropped  the evidence negates terms the claim states plainly
    unknown_terms     the claim's words no passage uses (names the passages never mention left out), / 5, capped
    cjk               the claim is Chinese

The question's own quantities ("I'm 193 cm tall") are the asker's and are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from eval.judges._offline_text import (
    Mention,
    Segment,
    entities,
    group_names,
    has_cjk,
    mentions,
    name_in,
    negated,
    negation_scopes,
    normalise,
    segments,
)
from rag.tokenizer import TextTokenizer

__all__ = ["FEATURES", "ClaimEvidence", "PassageSet", "TermCache", "claim_evidence", "matched"]

FEATURES = ("lexical", "lexical_any", "embedding", "lexical_zh", "numbers", "numbers_any", "entities",
            "entities_any", "negation_added", "negation_dropped", "unknown_terms", "cjk")  # the model's inputs, in order
NEAR = 1  # units either side of the evidence in which its numbers and names are looked for
ALIGNED = 0.5  # share of the claim's terms its evidence window must hold before their polarities are compared
CANDIDATES = 1  # windows per claim whose embedding is compared with the claim's (more cost time, gained nothing)
_NON_CONTENT = frozenset({"cannot", "never", "without", "none", "unabl", "n't", "yes", "ok", "okay", "sure", "sorri",
                          "unfortun"})  # negation cues and reply words: no content of their own
_DIGITS = re.compile(r"^[\d.,]+$")
_PARENTHESES = re.compile(r"\([^)]*\)")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


class TermCache:
    """Terms of a text, computed once per text: stemmed content words and Chinese character bigrams."""

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self._tokenizer = tokenizer
        self._cache: dict[str, frozenset[str]] = {}

    def __call__(self, text: str) -> frozenset[str]:
        found = self._cache.get(text)
        if found is None:
            words = {t for t in self._tokenizer.tokens(text) if not _DIGITS.match(t) and t not in _NON_CONTENT}
            bigrams = {run[i : i + 2] for run in _CJK_RUN.findall(normalise(text)) for i in range(len(run) - 1)}
            found = self._cache[text] = frozenset(words | bigrams)
        return found


@dataclass(frozen=True, slots=True)
class Window:
    """One or two adjacent units of one passage."""

    passage: int
    start: int
    size: int
    text: str
    terms: frozenset[str]
    numbers: tuple[Mention, ...]


@dataclass(slots=True)
class PassageSet:
    """An item's passages, cut into units and windows once for all of its claims."""

    units: list[list[Segment]]
    windows: list[Window]
    all_terms: frozenset[str]
    all_numbers: tuple[Mention, ...]
    text: str
    _unit_terms: list[list[frozenset[str]]] = field(default_factory=list)

    @classmethod
    def of(cls, contexts: Sequence[str], terms: TermCache) -> PassageSet:
        cut = [segments(c) or [Segment(normalise(c))] for c in contexts]
        unit_terms = [[terms(u.text) for u in passage] for passage in cut]
        windows = [Window(p, i, size, " ".join(u.text for u in passage[i : i + size]),
                          frozenset().union(*unit_terms[p][i : i + size]),
                          tuple(m for u in passage[i : i + size] for m in mentions(u.text)))
                   for p, passage in enumerate(cut) for size in (1, 2) for i in range(len(passage) - size + 1)]
        every = frozenset().union(*(t for p in unit_terms for t in p))
        text = normalise("\n".join(contexts))
        return cls(cut, windows, every, tuple(mentions(text)), text, unit_terms)

    def neighbourhood(self, window: Window) -> str:
        """The window, NEAR units either side, and the lead of its first unit."""
        passage = self.units[window.passage]
        near = passage[max(0, window.start - NEAR) : window.start + window.size + NEAR]
        return " ".join([passage[window.start].lead, *(u.text for u in near)])

    def window_units(self, window: Window) -> list[Segment]:
        return self.units[window.passage][window.start : window.start + window.size]


@dataclass(frozen=True, slots=True)
class ClaimEvidence:
    """What the passages say about one claim, before the embedding similarity is known."""

    claim: str
    read: str  # the text located and embedded: the claim, after the claim it continues if any
    terms: frozenset[str]
    values: dict[str, float]
    candidates: tuple[str, ...]  # window texts to compare embeddings with
    missing_numbers: tuple[Mention, ...]
    missing_entities: tuple[str, ...]
    evidence: str

    @property
    def checkable(self) -> bool:
        """False for a claim with no content word ("Yes.", "No, it cannot."): nothing to look up."""
        return bool(self.terms)


def matched(wanted: Mention, stated: Sequence[Mention]) -> bool:
    """A quantity is stated when its value is, with the same unit or with no unit on either side."""
    value, unit = wanted
    return any(abs(v - value) < 1e-9 and (u == unit or not u or not unit) for v, u in stated)


def claim_evidence(claim: str, passages: PassageSet, terms: TermCache, *, before: str = "",
                   given: Sequence[Mention] = ()) -> ClaimEvidence:
    """The claim's features against the passages (all but `embedding`, filled in once embeddings exist);
    `before` is the claim it continues, `given` the question's quantities."""
    read = f"{before} {claim}" if before else claim
    wanted, own = terms(read), terms(claim)
    ranked = _ranked(passages, wanted, mentions(read))
    if not ranked:
        return ClaimEvidence(claim, read, own, dict.fromkeys(FEATURES, 0.0), (), (), (), "")
    best = ranked[0]
    quantities = [n for n in mentions(claim) if not matched(n, given)]
    located = [best, *_ranked(passages, own, quantities)[:1]] if before else [best]
    stated = [m for w in located for m in mentions(passages.neighbourhood(w))]
    missing_numbers = tuple(n for n in quantities if not matched(n, stated))
    names = entities(claim)
    near = passages.neighbourhood(best)
    missing_names = tuple(n for n, group in sorted(names.items()) if _conflicts(n, group, near, passages.text))
    silent = frozenset().union(*(terms(n) for n in names if not name_in(n, passages.text)))
    units = passages.window_units(best)
    values = _values(claim, own, wanted - silent, best, passages, terms, units)
    values |= {"numbers": float(not missing_numbers), "entities": float(not missing_names),
               "numbers_any": float(all(matched(n, passages.all_numbers) for n in quantities)),
               "entities_any": float(not any(_conflicts(n, g, passages.text, passages.text) for n, g in names.items()))}
    candidates = () if values["cjk"] else tuple(w.text for w in ranked[:CANDIDATES])
    evidence = max(units, key=lambda u: len(own & terms(u.text))).text
    return ClaimEvidence(claim, read, own, values, candidates, missing_numbers, missing_names, evidence)


def _values(claim: str, own: frozenset[str], counted: frozenset[str], best: Window, passages: PassageSet,
            terms: TermCache, units: Sequence[Segment]) -> dict[str, float]:
    """The lexical and polarity features; `counted` are the terms that count (names the passages never use
    left out: a passage silent on the product does not make the claim less supported)."""
    lexical = _share(counted, best.terms)
    added, dropped = _polarity(own, claim, units, terms) if lexical >= ALIGNED else (False, False)
    chinese = has_cjk(claim)
    novel = {t for t in (own & counted) - passages.all_terms if not (_CJK_RUN.fullmatch(t) and len(t) == 2)}
    return {"lexical": 0.0 if chinese else lexical, "lexical_any": _share(counted, passages.all_terms),
            "embedding": 0.0, "lexical_zh": lexical if chinese else 0.0, "negation_added": float(added),
            "negation_dropped": float(dropped), "unknown_terms": min(len(novel), 5) / 5, "cjk": float(chinese)}


def _ranked(passages: PassageSet, wanted: frozenset[str], numbers: Sequence[Mention]) -> list[Window]:
    """Windows by the share of the claim's terms and quantities they hold; single units first on ties."""
    return sorted(passages.windows, key=lambda w: _window_score(wanted, numbers, w), reverse=True)


def _conflicts(name: str, group: str, near: str, everywhere: str) -> bool:
    """Whether a name of the claim goes against the passages. A product, place, carrier... (a LEXICON group)
    conflicts when it is missing near the evidence while another of its sort is there, or missing from all
    passages while they name another of its sort; a passage silent on the sort does not contradict it. A
    code or e-mail conflicts when no passage has it or another code of its kind (E.., NH-..) stands in
    its place; another capitalised word when no passage has it."""
    if name_in(name, near):
        return False
    if group in ("code", "email"):
        prefix = re.match(r"[a-z]*", name).group()  # type: ignore[union-attr]
        rivals = [c for c, g in entities(near).items() if g == group and c.startswith(prefix) and c != name]
        return bool(rivals) or not name_in(name, everywhere)
    if group == "word":
        return not name_in(name, everywhere)
    others = [o for o in group_names(group) if o != name and o not in name and name not in o]
    if any(name_in(o, near) for o in others):
        return True
    return not name_in(name, everywhere) and any(name_in(o, everywhere) for o in others)


def _polarity(own: frozenset[str], claim: str, units: Sequence[Segment], terms: TermCache) -> tuple[bool, bool]:
    """(the claim negates what its evidence states plainly, the evidence negates what the claim states plainly),
    each when a negation's scope shares at least two terms with the other side. A unit under a negated lead
    ("WHAT WE DO NOT MATCH", "Nordy cannot:") is negated as a whole, and differs only from a claim without
    any negation."""
    claim_scopes = [terms(s) for s in negation_scopes(claim)]
    claim_negated = frozenset().union(*claim_scopes)
    stated: set[str] = set()
    unit_scopes: list[frozenset[str]] = []
    for unit in units:
        if negated(_PARENTHESES.sub("", unit.lead)):
            unit_scopes += [] if claim_scopes else [terms(unit.text)]
            continue
        unit_scopes += [terms(s) for s in negation_scopes(unit.text)]
        stated |= terms(unit.text)
    plain = stated - frozenset().union(*unit_scopes)
    added = any(len(scope & plain) >= 2 for scope in claim_scopes)
    dropped = any(len(scope & (own - claim_negated)) >= 2 for scope in unit_scopes)
    return added, dropped


def _window_score(wanted: frozenset[str], numbers: Sequence[Mention], window: Window) -> tuple[float, int]:
    hits = len(wanted & window.terms) + sum(matched(n, window.numbers) for n in numbers)
    return hits / max(1, len(wanted) + len(numbers)), -window.size


def _share(wanted: frozenset[str], found: frozenset[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0


