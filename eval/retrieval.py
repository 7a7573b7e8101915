"""Retrieval evaluation: run a suite through one or more retrievers and score the documents they rank.

Scoring is per document, not per chunk: a retriever is asked for 3·k chunks, a document counts
once, at the rank of its first (best) chunk in the retriever's order, and the list is cut at k
documents. A suite's source `r` matches a retrieved source `s` when `s == r` or `s` ends with
"/" + r, so a suite written relative to `samples/corpus` also fits an index whose ids start with
`corpus/`. With `aliases` (source -> near-duplicate group, from `ChunkStore.duplicate_groups()`),
both sides are mapped to their group first, so a group of duplicate tickets is one document.

Cut-offs above k are not reported: they would need documents past the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

from eval.metrics import hit_at, ndcg_at, percentile, recall_at, reciprocal_rank
from eval.suite import SuiteCase
from rag.errors import InputError
from rag.protocols import Retriever
from rag.types import ScoredChunk

__all__ = [
    "CaseResult",
    "ModeResults",
    "RetrievalResults",
    "RetrievedDocument",
    "SourceMatcher",
    "evaluate",
    "headline_ndcg",
    "source_matches",
]

OVERFETCH = 3  # chunks asked for per scored document, so collapsing chunks still leaves k documents
Metrics = dict[str, float | int | None]
Progress = Callable[[str, int, int], None]  # (mode, cases done, cases in all)
_Ranking = Callable[[Sequence[str], Collection[str]], float]


def source_matches(retrieved: str, relevant: str) -> bool:
    """True when a retrieved source id is the suite's source, possibly below a longer root."""
    return retrieved == relevant or retrieved.endswith("/" + relevant)


class SourceMatcher:
    """Compares retrieved source ids with a suite's, through suffixes and near-duplicate groups."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self._aliases = dict(aliases or {})

    def document(self, source: str) -> str:
        """The id a retrieved source is scored under: its duplicate group, or itself."""
        return self._aliases.get(source, source)

    def relevant(self, sources: Sequence[str]) -> tuple[str, ...]:
        """The suite's sources as scoring ids: the group of the stored source each one names, or itself."""
        return tuple(dict.fromkeys(self._group_of(source) for source in sources))

    def label(self, document: str, relevant: Sequence[str]) -> str:
        """The relevant id a retrieved document matches, else the document's own id."""
        return next((r for r in relevant if source_matches(document, r)), document)

    def _group_of(self, source: str) -> str:
        if source in self._aliases:
            return self._aliases[source]
        return next((group for stored, group in self._aliases.items() if source_matches(stored, source)), source)


@dataclass(frozen=True, slots=True)
class RetrievedDocument:
    """One document of a ranking: the source of its best chunk, that chunk's score, and the verdict."""

    source: str
    score: float
    relevant: bool


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What one retriever did with one case; `scores` is empty for an unanswerable case."""

    case: SuiteCase
    retrieved: tuple[RetrievedDocument, ...]
    first_relevant_rank: int | None
    scores: Mapping[str, float]
    latency_ms: float
    top_score: float | None

    def as_dict(self, k: int) -> dict[str, Any]:
        """The JSON item: the case, the ranking with verdicts, and this case's recall@k and nDCG."""
        ndcg = {name: _round(self.scores.get(name)) for name in _ranking_metrics(k) if name.startswith("ndcg@")}
        return {
            "id": self.case.id, "question": self.case.question, "tags": list(self.case.tags),
            "relevant": list(self.case.relevant_sources or ()),
            "retrieved": [{"source": d.source, "score": _round(d.score), "relevant": d.relevant} for d in self.retrieved],
            "first_relevant_rank": self.first_relevant_rank, f"recall@{k}": _round(self.scores.get(f"recall@{k}")),
            **ndcg, "latency_ms": _round(self.latency_ms), "top_score": _round(self.top_score),
        }


@dataclass(frozen=True, slots=True)
class ModeResults:
    """Every case's result for one retrieval mode, with the averages over them."""

    k: int
    cases: tuple[CaseResult, ...]

    def metrics(self) -> Metrics:
        """Mean ranking metrics over the answerable cases, latency percentiles over all, and the counts."""
        latencies = [result.latency_ms for result in self.cases]
        latency: Metrics = {"latency_ms_p50": percentile(latencies, 50), "latency_ms_p95": percentile(latencies, 95)}
        return _summary(self.cases, self.k, extra=latency)

    def by_tag(self) -> dict[str, Metrics]:
        """The same ranking metrics for each tag's cases, tags in alphabetical order."""
        tags = sorted({tag for result in self.cases for tag in result.case.tags})
        return {tag: _summary([r for r in self.cases if tag in r.case.tags], self.k) for tag in tags}

    def misses(self, within: int = 5) -> list[CaseResult]:
        """Answerable cases whose first relevant document is not in the top `within`."""
        return [r for r in self.cases if r.case.answerable
                and (r.first_relevant_rank is None or r.first_relevant_rank > within)]

    def as_dict(self) -> dict[str, Any]:
        """{"metrics", "by_tag", "items"}, floats rounded to 4 digits."""
        return {"metrics": _rounded(self.metrics()),
                "by_tag": {tag: _rounded(values) for tag, values in self.by_tag().items()},
                "items": [result.as_dict(self.k) for result in self.cases]}


@dataclass(frozen=True, slots=True)
class RetrievalResults:
    """The results of every mode run on one suite; the primary mode is the headline of the JSON."""

    k: int
    modes: Mapping[str, ModeResults]

    @property
    def primary(self) -> str:
        """"hybrid" when it was run, else the first mode."""
        return "hybrid" if "hybrid" in self.modes else next(iter(self.modes))

    def as_dict(self, **about: str) -> dict[str, Any]:
        """The JSON report: `about` (suite, index, index_version) first, the primary mode on top, then every mode."""
        modes = {name: mode.as_dict() for name, mode in self.modes.items()}
        return {**about, "k": self.k, "mode": self.primary, **modes[self.primary], "modes": modes}


def evaluate(
    retrievers: Mapping[str, Retriever],
    cases: Sequence[SuiteCase],
    *,
    k: int = 10,
    aliases: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> RetrievalResults:
    """Run every case through every retriever, one mode after the other so latencies do not mix.

    Cases without `relevant_sources` (unknown, not empty) are not scored: there is nothing to rank against."""
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}: pass e.g. --k 10")
    cases = [case for case in cases if case.relevant_sources is not None]
    if not retrievers or not cases:
        raise InputError("nothing to evaluate: give at least one retriever (mode) and one suite case "
                         "with relevant_sources")
    matcher = SourceMatcher(aliases)
    modes = {}
    for name, retriever in retrievers.items():
        results = []
        for done, case in enumerate(cases, start=1):
            results.append(_run_case(retriever, case, k, matcher))
            if progress is not None:
                progress(name, done, len(cases))
        modes[name] = ModeResults(k, tuple(results))
    return RetrievalResults(k, modes)


def headline_ndcg(k: int) -> str:
    """The nDCG reported per tag and per item: nDCG@10, or nDCG@k when k is below 10."""
    return f"ndcg@{min(k, 10)}"


def _run_case(retriever: Retriever, case: SuiteCase, k: int, matcher: SourceMatcher) -> CaseResult:
    """Time one retrieval, collapse its chunks to k documents and score them against the case."""
    start = perf_counter()
    hits = retriever.retrieve(case.question, top_k=OVERFETCH * k, filters=case.filters)
    latency_ms = (perf_counter() - start) * 1000
    relevant = matcher.relevant(case.relevant_sources or ())
    documents = _documents(hits, matcher)[:k]
    labels = [matcher.label(key, relevant) for key, _ in documents]
    retrieved = tuple(RetrievedDocument(hit.chunk.source, hit.score, label in relevant)
                      for (_, hit), label in zip(documents, labels, strict=True))
    first = next((rank for rank, doc in enumerate(retrieved, start=1) if doc.relevant), None)
    scores = {name: rank(labels, relevant) for name, rank in _ranking_metrics(k).items()} if relevant else {}
    top_score = max((hit.score for hit in hits), default=None)
    return CaseResult(case, retrieved, first, scores, latency_ms, top_score)


def _documents(hits: Sequence[ScoredChunk], matcher: SourceMatcher) -> list[tuple[str, ScoredChunk]]:
    """(document id, its first chunk) in the retriever's order, each document once."""
    seen: dict[str, ScoredChunk] = {}
    for hit in hits:
        seen.setdefault(matcher.document(hit.chunk.source), hit)
    return list(seen.items())


def _ranking_metrics(k: int) -> dict[str, _Ranking]:
    """The per-question ranking metrics reported at cut-off k, by name, in report order."""
    metrics: dict[str, _Ranking] = {f"recall@{c}": partial(recall_at, k=c) for c in _upto(k, 1, 5, 10, k)}
    metrics["mrr"] = partial(reciprocal_rank, k=k)
    metrics.update({f"ndcg@{c}": partial(ndcg_at, k=c) for c in _upto(k, 10, k)})
    metrics.update({f"hit@{c}": partial(hit_at, k=c) for c in _upto(k, 1, 5)})
    return metrics


def _upto(k: int, *cutoffs: int) -> list[int]:
    return sorted({c for c in cutoffs if c <= k})


def _summary(results: Sequence[CaseResult], k: int, extra: Metrics | None = None) -> Metrics:
    """Means of the ranking metrics over the answerable results (None when there are none), then counts."""
    scored = [r for r in results if r.case.answerable]
    means: Metrics = {name: (sum(r.scores[name] for r in scored) / len(scored) if scored else None)
                      for name in _ranking_metrics(k)}
    return {**means, **(extra or {}), "questions": len(scored), "unanswerable": len(results) - len(scored)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rounded(metrics: Metrics) -> Metrics:
    return {name: _round(v) if isinstance(v, float) else v for name, v in metrics.items()}
