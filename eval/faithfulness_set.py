"""A labelled faithfulness set: hand-written answers plus corruptions generated from the faithful ones.

`eval/suites/faithfulness.jsonl` holds answers an annotator wrote against passages copied from the
sample corpus, each labelled faithful or unfaithful with its kind (faithful, paraphrase, number,
entity, negation, added-claim, subtle) and, when unfaithful, the claims (as `split_claims` gives
them) the passages do not support. `corrupt` turns a faithful answer into an unfaithful one of a
given kind; `labelled_set` is the hand items plus every corruption of every faithful one, the same
for the same seed. `split_of` puts an id in "train" or "held-out" by a hash of its group (the id up
to its last "."), so an answer, its variants and their corruptions always fall on the same side.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.claims import split_claims
from eval.judges._offline_text import LEXICON, has_cjk, units
from rag.errors import InputError
from rag.grounding import MARKER, split_sentences

__all__ = ["CORRUPTIONS", "KINDS", "SUITE", "corrupt", "labelled_set", "load_items", "split_of"]

SUITE = Path(__file__).with_name("suites") / "faithfulness.jsonl"
KINDS = ("faithful", "paraphrase", "number", "entity", "negation", "added-claim", "subtle")
CORRUPTIONS = ("number", "entity", "negation", "added-claim")
Item = dict[str, Any]
_REQUIRED = ("id", "question", "contexts", "answer", "label", "kind")
_HELD_OUT_SHARE = 50  # percent of groups


def load_items(path: Path | str = SUITE) -> list[Item]:
    """The hand-written items, each checked: fields present, kind known, unsupported claims real claims."""
    items: list[Item] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            items.append(_checked(json.loads(line), f"{path}:{number}"))
    return items


def _checked(item: Item, where: str) -> Item:
    missing = [k for k in _REQUIRED if k not in item]
    if missing or item["kind"] not in KINDS:
        raise InputError(f"{where}: needs {', '.join(_REQUIRED)} and a kind among {', '.join(KINDS)}")
    faithful = item["kind"] in ("faithful", "paraphrase")
    if item["label"] != ("faithful" if faithful else "unfaithful"):
        raise InputError(f"{where}: kind {item['kind']!r} goes with label {'faithful' if faithful else 'unfaithful'}")
    claims = split_claims(item["answer"])
    stray = [c for c in item.get("unsupported_claims", []) if c not in claims]
    if stray or (not faithful and not item.get("unsupported_claims")):
        raise InputError(f"{where}: unsupported_claims must list claims of the answer as split_claims gives them")
    return item


def split_of(item_id: str) -> str:
    """"train" or "held-out", by a stable hash of the item's group (its id up to the last ".")."""
    group = item_id.split("~")[0].rsplit(".", 1)[0]
    bucket = int.from_bytes(hashlib.blake2b(group.encode(), digest_size=4).digest(), "little") % 100
    return "held-out" if bucket < _HELD_OUT_SHARE else "train"


def labelled_set(path: Path | str = SUITE, seed: int = 0) -> list[Item]:
    """The hand items (origin "hand") then every corruption of every faithful one (origin "generated")."""
    items = load_items(path)
    pool = list(dict.fromkeys(c for item in items for c in item["contexts"]))
    out = [{**item, "origin": "hand"} for item in items]
    for item in items:
        if item["label"] != "faithful":
            continue
        for kind in CORRUPTIONS:
            made = corrupt(item, kind, random.Random(f"{seed}/{item['id']}/{kind}"), pool=pool)
            if made is not None:
                out.append(made)
    return out


def corrupt(item: Item, kind: str, rng: random.Random, *, pool: Sequence[str] = ()) -> Item | None:
    """An unfaithful variant of a faithful item, or None when the answer offers nothing to corrupt.

    number: one quantity changed to another plausible one; entity: one name swapped for another of the
    same sort that no passage mentions; negation: one statement's polarity flipped; added-claim: a
    sentence of an unrelated passage from `pool` appended.
    """
    if kind not in _MAKERS:
        raise InputError(f"no corruption {kind!r}: choose one of {', '.join(CORRUPTIONS)}")
    answer = _MAKERS[kind](item, rng, pool)
    if answer is None:
        return None
    before = set(split_claims(item["answer"]))
    changed = [c for c in split_claims(answer) if c not in before]
    if not changed:
        return None
    return {"id": f"{item['id']}~{kind}", "question": item["question"], "contexts": list(item["contexts"]),
            "answer": answer, "label": "unfaithful", "kind": kind, "unsupported_claims": changed,
            "origin": "generated", "source_id": item["id"]}


# --- number ---------------------------------------------------------------------------------------

_QUANTITY = re.compile(r"(?<![\w.\-/:$€])(\$|€|CA\$)?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w-]*\])(?!\.\d)")
_NAMED_NUMBER = re.compile(r"\b(?:Volt 300|Solis 60|Driftwood 20|18650|20\d\d)\b|\[\d+\]|\d-\d{3}-\d{3}-\d{4}")


def _number(item: Item, rng: random.Random, _pool: Sequence[str]) -> str | None:
    answer: str = item["answer"]
    protected = [m.span() for m in _NAMED_NUMBER.finditer(answer)]
    spots = [m for m in _QUANTITY.finditer(answer)
             if not any(a <= m.start(2) < b for a, b in protected) and not _is_marker(answer, m.start(2))]
    if not spots:
        return None
    spot = rng.choice(spots)
    old = spot.group(2)
    new = _other_value(old, rng, {s.group(2) for s in spots})
    return answer[: spot.start(2)] + new + answer[spot.end(2) :]


def _is_marker(text: str, at: int) -> bool:
    return text[max(0, at - 1) : at] == "[" and bool(re.match(r"\d+\]", text[at:]))


def _other_value(old: str, rng: random.Random, taken: set[str]) -> str:
    """A different, plausible value written like the old one (decimals kept, thousands separators kept)."""
    value = float(old.replace(",", ""))
    decimals = len(old.split(".")[1]) if "." in old else 0
    if value <= 12 and not decimals:
        options = [value + 1, value + 2, value * 2, value - 1]
    else:
        options = [value * 1.5, value * 2, value / 2, value + (5 if value >= 10 else 1)]
    written = []
    for option in options:
        if option <= 0:
            continue
        if not decimals and value >= 20 and value % 5 == 0:
            option = round(option / 5) * 5
        text = f"{option:,.{decimals}f}" if "," in old else f"{option:.{decimals}f}"
        if text != old and text not in taken and text not in written:
            written.append(text)
    return rng.choice(written)


# --- entity ---------------------------------------------------------------------------------------

def _entity(item: Item, rng: random.Random, _pool: Sequence[str]) -> str | None:
    answer, context = item["answer"], "\n".join(item["contexts"])
    found = [(group, name) for group, names in LEXICON.items() for name in names if _word_in(name, answer)]
    rng.shuffle(found)
    for group, name in found:
        others = [n for n in LEXICON[group] if n != name and not _word_in(n, context) and not _word_in(n, answer)
                  and not (name in n or n in name)]
        if others:
            new = rng.choice(others)
            return _replace_word(answer, name, new)
    return None


def _word_in(name: str, text: str) -> bool:
    if has_cjk(name):
        return name in text
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def _replace_word(text: str, old: str, new: str) -> str:
    if has_cjk(old):
        return text.replace(old, new, 1)
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text, count=1)


# --- negation -------------------------------------------------------------------------------------

_FLIPS: tuple[tuple[str, str], ...] = (
    # negated -> affirmative
    (r"\bcannot\b", "can"), (r"\bcan't\b", "can"), (r"\bdoes not\b", "does"), (r"\bdo not\b", "do"),
    (r"\bdoesn't\b", "does"), (r"\bdon't\b", "do"), (r"\bis not\b", "is"), (r"\bisn't\b", "is"),
    (r"\bare not\b", "are"), (r"\baren't\b", "are"), (r"\bwon't\b", "will"), (r"\bnever\s", ""),
    (r"\bnot\s", ""), (r"不能", "能"), (r"不会", "会"), (r"不需要", "需要"), (r"无法", "可以"), (r"没有", "有"),
    # affirmative -> negated
    (r"\bcan\b", "cannot"), (r"\bis\b", "is not"), (r"\bare\b", "are not"), (r"\bwill\b", "will not"),
    (r"\bmust\b", "must not"), (r"\bshould\b", "should not"), (r"\bmay\b", "may not"),
    (r"可以", "不可以"), (r"需要", "不需要"), (r"适用", "不适用"), (r"会", "不会"), (r"由", "不由"), (r"为", "不为"),
)


def _negation(item: Item, rng: random.Random, _pool: Sequence[str]) -> str | None:
    answer: str = item["answer"]
    sentences = split_sentences(answer)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    for index in order:
        sentence = sentences[index]
        for pattern, replacement in _FLIPS:
            match = re.search(pattern, sentence)
            if match and not _inside_negated_cjk(sentence, match.start()):
                flipped = sentence[: match.start()] + replacement + sentence[match.end() :]
                return answer.replace(sentence, _capitalised(flipped, sentence), 1)
    return None


def _inside_negated_cjk(sentence: str, at: int) -> bool:
    """Whether a Chinese match already follows 不/没 (so 不可以 is not made 不不可以)."""
    return at > 0 and sentence[at - 1] in "不没无非"


def _capitalised(flipped: str, original: str) -> str:
    return flipped[:1].upper() + flipped[1:] if original[:1].isupper() else flipped


# --- added claim ----------------------------------------------------------------------------------

def _added_claim(item: Item, rng: random.Random, pool: Sequence[str]) -> str | None:
    answer, contexts = item["answer"], set(item["contexts"])
    chinese = has_cjk(answer)
    names = {n for names in LEXICON.values() for n in names if _word_in(n, answer)}
    candidates = [s for passage in pool if passage not in contexts and not any(_word_in(n, passage) for n in names)
                  for s in units(passage) if _reads_as_claim(s, chinese)]
    candidates = [s for s in candidates if not any(s in c for c in contexts)]
    if not candidates:
        return None
    addition = rng.choice(sorted(set(candidates)))
    joiner = "" if chinese else " "
    return f"{answer.rstrip()}{joiner}{addition}"


def _reads_as_claim(sentence: str, chinese: bool) -> bool:
    """A full sentence that states something: ends with a full stop, 6-30 words (Chinese: 10-60 characters)."""
    if chinese != has_cjk(sentence) or not sentence.endswith((".", "。")) or MARKER.search(sentence):
        return False
    if chinese:
        return 10 <= len(sentence) <= 60
    words = sentence.split()
    return 6 <= len(words) <= 30 and sentence[:1].isupper() and ":" not in sentence[:25]


_MAKERS: dict[str, Callable[[Item, random.Random, Sequence[str]], str | None]] = {
    "number": _number, "entity": _entity, "negation": _negation, "added-claim": _added_claim,
}
