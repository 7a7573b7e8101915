"""What the service counts, for `GET /metrics` (Prometheus text format).

One registry per process, shared by every app built in it (tests build many: read deltas).
Labels stay few and bounded: routes are templates ("/ask", not a URL), never questions or keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

__all__ = [
    "DECISIONS",
    "DEGRADED",
    "FEEDBACK",
    "INDEX_CHUNKS",
    "INDEX_INFO",
    "IN_FLIGHT",
    "LLM_CIRCUIT_OPEN",
    "LLM_FAILURES",
    "LLM_TOKENS",
    "REGISTRY",
    "REJECTED",
    "REMOVED_SENTENCES",
    "REQUESTS",
    "REQUEST_SECONDS",
    "STAGE_SECONDS",
    "record_answer",
    "render",
    "set_index",
    "timed",
]

# No *_created series beside every counter: half the output, and nothing a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

REQUESTS = Counter("rag_http_requests", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("rag_http_request_duration_seconds", "Time to the whole response (a stream: to its end)",
                            ["route"], buckets=_LATENCY, registry=REGISTRY)
IN_FLIGHT = Gauge("rag_in_flight_requests", "Answers being worked on now (limited by RAG_API__MAX_IN_FLIGHT)",
                  registry=REGISTRY)
REJECTED = Counter("rag_rejected_requests", "Requests refused before any work: overload (503), rate_limit (429), "
                   "unauthenticated (401), forbidden (403), too_large (413)", ["reason"], registry=REGISTRY)
STAGE_SECONDS = Histogram("rag_stage_duration_seconds", "Time per stage of an answer: embed, search, rerank, condense, "
                          "llm_first_token, generate, total", ["stage"], buckets=_LATENCY, registry=REGISTRY)
LLM_TOKENS = Counter("rag_llm_tokens", "Tokens the LLM server reported using: prompt, completion", ["kind"],
                     registry=REGISTRY)
LLM_FAILURES = Counter("rag_llm_failures", "Failed LLM calls: unavailable, timeout, response, circuit_open", ["kind"],
                       registry=REGISTRY)
LLM_CIRCUIT_OPEN = Gauge("rag_llm_circuit_open", "1 while the circuit breaker keeps calls away from the LLM server",
                         registry=REGISTRY)
DECISIONS = Counter("rag_answers", "Answers given, by decision: answer, clarify, escalate", ["decision"],
                    registry=REGISTRY)
REMOVED_SENTENCES = Counter("rag_verification_removed_sentences", "Sentences of the model's answers that no passage "
                            "backed (removed, or listed under lenient strictness)", registry=REGISTRY)
DEGRADED = Counter("rag_degraded_answers", "Extractive answers given while the LLM server was down",
                   registry=REGISTRY)
FEEDBACK = Counter("rag_feedback", "Ratings received, by rating", ["rating"], registry=REGISTRY)
INDEX_INFO = Gauge("rag_index_info", "The index version served (value 1)", ["version"], registry=REGISTRY)
INDEX_CHUNKS = Gauge("rag_index_chunks", "Chunks in the index version served", registry=REGISTRY)

# timings_ms keys of an answer -> stage label (retrieval's own embed/search/rerank are observed where they run)
_STAGES = {"condense": "condense", "first_token": "llm_first_token", "generate": "generate", "total": "total"}


def record_answer(decision: str, removed: int, timings_ms: Mapping[str, float]) -> None:
    """Count one answer: its decision, the sentences verification removed, the time of each stage."""
    DECISIONS.labels(decision).inc()
    if removed:
        REMOVED_SENTENCES.inc(removed)
    for key, stage in _STAGES.items():
        if key in timings_ms:
            STAGE_SECONDS.labels(stage).observe(timings_ms[key] / 1000)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Observe the time the block takes as `stage` (embed, search, rerank)."""
    tick = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - tick)


def set_index(version: str, chunks: int) -> None:
    """The index version now served (the previous one's series is dropped)."""
    INDEX_INFO.clear()
    INDEX_INFO.labels(version).set(1)
    INDEX_CHUNKS.set(chunks)


def render() -> bytes:
    """Every metric in the Prometheus text exposition format."""
    return generate_latest(REGISTRY)
