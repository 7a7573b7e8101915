"""One thread count for every compute pool in the process: torch, ONNX Runtime, OpenVINO and FAISS.

Why: each library keeps its own pool and sizes it on its own. torch and FAISS each bring an OpenMP
runtime (two separate ones), ONNX Runtime has its own pool, OpenVINO uses TBB, and uvicorn's event
loop and request threads need a core too. Left alone, each picks "all the cores I can see", and some
count the host's cores rather than those this process may run on (a container's CPU set). On a
2-core machine that is several pools of spinning workers fighting for 2 cores: a query's embedding
went from ~15 ms to ~500 ms when another pool held the cores. One count, taken from the cores this
process may use (`os.sched_getaffinity`) unless set (`RAG_EMBEDDING__THREADS`), is applied to torch
and FAISS here and handed to the ONNX Runtime (intra-op; inter-op 1) and OpenVINO sessions, so no
pool is larger than the machine and none waits on another's threads. ONNX Runtime's idle workers also
sleep instead of spinning (`rag.embedders.onnx`): spinning held the cores the rest of a request needed.
"""

from __future__ import annotations

import os

from rag.errors import ConfigError

__all__ = ["available_cores", "configure_threads"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int = 0) -> int:
    """Apply `threads` (0 = `available_cores()`) to torch and FAISS; returns the count for the other runtimes."""
    if threads < 0:
        raise ConfigError(f"threads must be 0 (auto) or more, got {threads}: set RAG_EMBEDDING__THREADS")
    count = threads or available_cores()
    _torch_threads(count)
    _faiss_threads(count)
    return count


def _torch_threads(count: int) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; an install without it has no pool to size
        return
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def _faiss_threads(count: int) -> None:
    from rag.index.faiss_index import set_threads  # the FAISS adapter holds the project's only import of faiss

    set_threads(count)
