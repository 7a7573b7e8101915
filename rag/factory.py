"""Building the runtime objects from `Settings`; used only by the entry points."""

from __future__ import annotations

from dataclasses import dataclass

import prompts
from rag.errors import ConfigError
from rag.index import LoadedIndex, open_index
from rag.llm import OpenAICompatibleLLM
from rag.pipeline import RagPipeline
from rag.protocols import Embedder
from rag.registry import create_embedder
from rag.retrieval import DenseRetriever
from rag.settings import Settings

__all__ = ["Runtime", "build_embedder", "build_llm", "build_retriever", "build_runtime"]


@dataclass(slots=True)
class Runtime:
    """The pipeline with the resources it holds, closed together."""

    pipeline: RagPipeline
    index: LoadedIndex
    llm: OpenAICompatibleLLM

    async def aclose(self) -> None:
        await self.llm.aclose()
        self.index.close()


def build_embedder(settings: Settings) -> Embedder:
    options = settings.embedding
    return create_embedder(options.backend, model=options.model, device=options.device,
                           batch_size=options.batch_size)


def build_llm(settings: Settings, *, stop: tuple[str, ...] = ()) -> OpenAICompatibleLLM:
    llm = settings.llm
    return OpenAICompatibleLLM(
        base_url=llm.base_url, model=llm.model, api_key=llm.api_key.get_secret_value(),
        timeout_s=llm.timeout_s, connect_timeout_s=llm.connect_timeout_s, max_retries=llm.max_retries,
        max_tokens=llm.max_tokens, temperature=llm.temperature, stop=stop if llm.stop is None else tuple(llm.stop),
    )


def build_retriever(settings: Settings, *, embedder: Embedder | None = None) -> tuple[DenseRetriever, LoadedIndex]:
    """Open the index, check it was built with the configured embedding model, and wrap it."""
    index = open_index(settings.index.dir, gpu=settings.index.gpu)
    embedder = embedder or build_embedder(settings)
    if index.embedding_model != embedder.name:
        index.close()
        raise ConfigError(
            f"index at {settings.index.dir} was built with {index.embedding_model!r} but the "
            f"configured embedding model is {embedder.name!r}: re-run `rag ingest` or set RAG_EMBEDDING__MODEL"
        )
    return DenseRetriever(embedder=embedder, vectors=index.vectors, store=index.store), index


def build_runtime(settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
    """The retriever, the prompt and one LLM client per process, wired into the pipeline."""
    try:
        prompt = prompts.load(settings.llm.prompt, settings.llm.prompt_version)
    except LookupError as exc:
        raise ConfigError(f"{exc} (RAG_LLM__PROMPT / RAG_LLM__PROMPT_VERSION)") from exc
    retriever, index = build_retriever(settings, embedder=embedder)
    retriever.retrieve("warm-up", top_k=1)  # load the model now, not on the first request
    llm = build_llm(settings, stop=prompt.stop)
    pipeline = RagPipeline(
        retriever=retriever, llm=llm, prompt=prompt, index_version=index.version,
        top_k=settings.retrieval.top_k, max_top_k=settings.retrieval.max_top_k,
        max_question_chars=settings.api.max_question_chars,
    )
    return Runtime(pipeline, index, llm)
