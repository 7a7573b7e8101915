"""Words for BM25 in any language: the only module that imports jieba and PyStemmer.

Text is NFKC-normalised and case-folded. Latin, Cyrillic, Greek... words are split on anything
that is not a letter or digit, English stop words are dropped and the rest stemmed (Snowball).
Chinese (Han) runs are segmented by jieba in search mode, which also emits the shorter words
inside a long one, so 退货政策 matches a question about 退货. Japanese kana and Korean hangul
runs, which jieba does not know, become overlapping character bigrams (as Lucene's CJK analyser
does). The same function tokenises passages at ingestion and questions at query time.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Any

from rag.errors import IndexCorruptError

__all__ = ["HAN", "TextTokenizer", "script_language"]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff"
_KANA_HANGUL = _KANA + _HANGUL
HAN = re.compile(f"[{_HAN}]")  # one Han (Chinese) character
_SCRIPTS = (("ja", re.compile(f"[{_KANA}]")), ("ko", re.compile(f"[{_HANGUL}]")), ("zh", HAN))
_WORD = re.compile(rf"(?P<han>[{_HAN}]+)|(?P<kana>[{_KANA_HANGUL}]+)|(?P<word>[^\W_{_HAN}{_KANA_HANGUL}]+)")
_EN_STOP = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself yourselves s t d
    ll m re ve y
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_ZH_STOP = frozenset(
    """
    的 了 是 我 你 他 她 它 吗 呢 吧 啊 呀 在 和 与 及 或 也 都 就 还 要 会 能 可以 请问
    请 一下 么 么样 这 那 这个 那个 有 没有 被 把 给 让 对 从 到 向 为 为了 着 过 得 地 之
    其 如果 怎么 怎样 什么 多少 哪 哪些 哪里
    """.split()  # noqa: SIM905
)
_lock = threading.Lock()
_jieba: Any = None


class TextTokenizer:
    """Language-aware BM25 tokens; `settings` is recorded with the index so a change is noticed."""

    def __init__(self, *, stem: bool = True, stopwords: bool = True) -> None:
        self._stem = stem
        self._stopwords = stopwords
        self._stemmer: Any = None
        if stem:
            import Stemmer  # PyStemmer: Snowball stemmers in C

            self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> TextTokenizer:
        """The tokenizer an index was built with (its manifest's `lexical.tokenizer`)."""
        if settings.get("name") != "text" or settings.get("version") != 1:
            raise IndexCorruptError(f"unknown BM25 tokenizer {settings}: rebuild the index with `rag ingest --full`")
        return cls(stem=bool(settings.get("stem", True)), stopwords=bool(settings.get("stopwords", True)))

    @property
    def settings(self) -> dict[str, Any]:
        return {"name": "text", "version": 1, "stem": self._stem, "stopwords": self._stopwords}

    def tokens(self, text: str) -> list[str]:
        """The BM25 terms of `text`, in order, repeats kept (BM25 counts them)."""
        normal = unicodedata.normalize("NFKC", text).casefold()
        terms: list[str] = []
        for match in _WORD.finditer(normal):
            kind, run = match.lastgroup, match.group()
            if kind == "han":
                terms.extend(t for t in _segment(run) if not (self._stopwords and t in _ZH_STOP))
            elif kind == "kana":
                terms.extend(_bigrams(run))
            elif not (self._stopwords and run in _EN_STOP):
                terms.append(run)
        if self._stemmer is not None:
            terms = self._stemmer.stemWords(terms)
        return terms


def script_language(text: str) -> str:
    """'ja', 'ko' or 'zh' when the text has kana, hangul or Han characters (in that order), else 'en'."""
    return next((language for language, chars in _SCRIPTS if chars.search(text)), "en")


def _segment(run: str) -> list[str]:
    """jieba's search-mode words of a run of Han characters (dictionary loaded on first use)."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return [word for word in _jieba.cut_for_search(run) if word.strip()]


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
