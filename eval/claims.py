"""Atomic claims: an answer split into the smallest statements a judge can check one by one.

An answer is first split into sentences (`rag.grounding.split_sentences`, so "[n]" markers stay
with their sentence and are then dropped), then each sentence at the joints where it states a second
fact: ";", and ", and" / ", but" / ", so" / ", while" / ", which" followed by more words, and the
Chinese "；" and "，" before 并且 / 但是 / 而且 / 另外. A piece too short to say anything on its own
(fewer than three words, or for Chinese fewer than four characters) stays attached to the piece
before it, so "Yes, and free." does not become a claim "free". Claims keep the answer's wording:
a judge checks the answer's own words, not a paraphrase of them.
"""

from __future__ import annotations

import re

from rag.grounding import MARKER, split_sentences
from rag.tokenizer import HAN

__all__ = ["split_claims"]

_JOINTS = re.compile(
    r"\s*;\s*|\s*；\s*"
    r"|,\s+(?=(?:and|but|so|while|which|whereas|although|though)\s)"
    r"|，(?=(?:并且|但是|而且|另外|但|并))"
)
_LEADING = re.compile(r"^(?:(?:and|so)\s+|并且|而且)", re.IGNORECASE)  # a joint word that adds nothing to the claim
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*|[\u4e00-\u9fff]")


def split_claims(answer: str) -> list[str]:
    """The answer's atomic claims, in order, without citation markers; [] for an empty answer."""
    claims: list[str] = []
    for sentence in split_sentences(answer):
        pieces: list[str] = []
        for piece in _JOINTS.split(MARKER.sub("", sentence)):
            piece = _LEADING.sub("", re.sub(r"\s+([.,!?;:。，！？；：])", r"\1", piece).strip(" ,;；，"))
            if not piece:
                continue
            if pieces and not _says_enough(piece):
                pieces[-1] = f"{pieces[-1]}, {piece}"
            else:
                pieces.append(piece)
        if len(pieces) > 1 and not _says_enough(pieces[0]):
            pieces[:2] = [f"{pieces[0]}, {pieces[1]}"]
        claims += [p for p in pieces if _WORD.search(p)]
    return claims


def _says_enough(piece: str) -> bool:
    """Long enough to be a claim of its own: three words, or four Chinese characters."""
    if HAN.search(piece):
        return len(HAN.findall(piece)) >= 4
    return len(_WORD.findall(piece)) >= 3
