"""Language codes: the ISO 639-1 code of a document from its elements' detected languages."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["document_language", "to_iso639_1"]

_ISO3_TO_1 = {"eng": "en", "zho": "zh", "jpn": "ja", "kor": "ko", "fra": "fr", "deu": "de", "spa": "es"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def to_iso639_1(code: str) -> str:
    """'eng' -> 'en'; unknown three-letter codes keep their first two letters."""
    code = code.lower()
    return _ISO3_TO_1.get(code, code[:2])


def document_language(texts_and_codes: Iterable[tuple[str, str | None]]) -> str:
    """The language that covers most characters; CJK script wins over a detector's guess."""
    weights: Counter[str] = Counter()
    for text, code in texts_and_codes:
        cjk = len(_CJK.findall(text))
        if cjk > len(text) * 0.2:
            weights["zh"] += len(text)
        elif code:
            weights[to_iso639_1(code)] += len(text)
    return weights.most_common(1)[0][0] if weights else "en"
