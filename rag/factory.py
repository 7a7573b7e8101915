"""Building the runtime objects from `Settings`; used only by the entry points."""

from __future__ import annotations

import logging

import prompts
from prompts import PromptTemplate
from rag.conversations import ConversationStore
from rag.decisions import AnswerPolicy
from rag.errors import ConfigError, RagError, RerankerError
from rag.feedback import FeedbackStore
from rag.index import AnnOptions, IndexFolder, LoadedIndex, open_index
from rag.llm import GuardedLLM, OpenAICompatibleLLM
from rag.llm.server import VLLMServer
from rag.pipeline import RagPipeline
from rag.prompting import load_token_counter
from rag.protocols import Embedder, Reranker
from rag.ranking import SourcePriors
from rag.registry import create_embedder, create_reranker
from rag.retrieval import HybridRetriever, RelevanceScale, RetrievalMode
from rag.settings import Settings
from rag.tokenizer import TextTokenizer

__all__ = ["Runtime", "ann_options", "build_embedder", "build_llm", "build_reranker", "build_retriever", "build_runtime"]

log = logging.getLogger("rag.factory")


class Runtime:
    """The pipeline over the current index version, with the resources it holds.

    `reload_if_changed()` follows the index folder's CURRENT pointer: it opens the new version
    beside the old one and swaps the pipeline in one assignment. A request holds the pipeline
    it started with until it ends, so none fails; the old version is released (its SQLite
    connection closed) when the last request using it drops its reference.
    """

    def __init__(self, settings: Settings, *, embedder: Embedder, llm: GuardedLLM, prompt: PromptTemplate,
                 ) -> None:
        self._settings = settings
        self._embedder = embedder
        self._prompt = prompt
        self._reranker = build_reranker(settings)
        self.llm = llm
        self.reload_error: str | None = None
        self._active = self._open()
        talk = settings.conversations
        self.conversations = ConversationStore(talk.resolved_path(settings.index.dir), ttl_s=talk.ttl_s,
                                               max_turns=talk.max_turns)
        self.feedback = FeedbackStore(settings.feedback.resolved_url(settings.index.dir))

    @property
    def pipeline(self) -> RagPipeline:
        return self._active[0]

    @property
    def index(self) -> LoadedIndex:
        return self._active[1]

    @property
    def folder(self) -> IndexFolder:
        """The index folder whose current version this runtime follows."""
        return IndexFolder(self._settings.index.dir)

    def reload_if_changed(self) -> bool:
        """Switch to the folder's current version if it is another one; False when nothing changed."""
        current = self.folder.current()
        if current is None or current == self.index.version:
            return False
        try:
            self._active = self._open()
        except RagError as exc:
            self.reload_error = f"cannot switch to version {current}: {exc}"
            raise
        self.reload_error = None
        return True

    def _open(self) -> tuple[RagPipeline, LoadedIndex]:
        retriever, index = build_retriever(self._settings, embedder=self._embedder, reranker=self._reranker)
        retriever.retrieve("warm-up", top_k=1)  # load the model (and touch the index) now, not on a request
        options = self._settings
        answer, llm, server = options.answer, options.llm, options.llm_server
        ours = server.model or str(VLLMServer(home=server.home).model_dir)  # what `rag llm serve` serves
        tokenizer = llm.tokenizer or (ours if llm.model == server.served_model_name else None)
        pipeline = RagPipeline(
            retriever=retriever, llm=self.llm, prompt=self._prompt, index_version=index.version,
            top_k=options.retrieval.top_k, max_top_k=options.retrieval.max_top_k,
            max_question_chars=options.api.max_question_chars,
            policy=AnswerPolicy(answer.min_relevance, answer.strictness, answer.support_threshold, answer.handoff_message,
                                clarify_margin=answer.clarify_margin, clarify_message=answer.clarify_message),
            tokenizer=TextTokenizer.from_settings(index.tokenizer_settings),
            prompt_budget_tokens=llm.context_tokens - llm.max_tokens - llm.prompt_margin_tokens,
            count_tokens=load_token_counter(tokenizer), condense_turns=options.conversations.condense_turns,
            condense_max_tokens=llm.condense_max_tokens, structured_output=llm.structured_output != "off",
            on_llm_failure=answer.on_llm_failure,
        )
        return pipeline, index

    async def aclose(self) -> None:
        await self.llm.aclose()
        self.index.close()
        self.conversations.close()
        self.feedback.close()


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder, with one thread count set for torch, FAISS and the embedding runtime."""
    from rag.threads import configure_threads

    options = settings.embedding
    threads = configure_threads(options.threads)
    return create_embedder(options.backend, model=options.model, device=options.device,
                           batch_size=options.batch_size, precision=options.precision, threads=threads,
                           cache_dir=options.cache_dir.expanduser())


def build_llm(settings: Settings, *, stop: tuple[str, ...] = ()) -> OpenAICompatibleLLM:
    llm = settings.llm
    return OpenAICompatibleLLM(
        base_url=llm.base_url, model=llm.model, api_key=llm.api_key.get_secret_value(),
        timeout_s=llm.timeout_s, connect_timeout_s=llm.connect_timeout_s, max_retries=llm.max_retries,
        retry_backoff_s=llm.retry_backoff_s, retry_after_cap_s=llm.retry_after_cap_s,
        max_tokens=llm.max_tokens, temperature=llm.temperature, stop=stop if llm.stop is None else tuple(llm.stop),
        structured_output=llm.structured_output,
    )


def build_reranker(settings: Settings) -> Reranker | None:
    """The configured reranker, loaded now; None (with one log line saying why) when unavailable."""
    options = settings.retrieval
    if not options.reranker:
        return None
    try:
        reranker = create_reranker(options.reranker_backend, model=options.reranker, device=settings.embedding.device)
        load = getattr(reranker, "load", None)
        if load is not None:
            load()
    except RerankerError as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the library's message looks like
        log.warning("reranker %r is not available (%s): ranking without a reranker", options.reranker, reason)
        return None
    return reranker


def build_retriever(
    settings: Settings, *, embedder: Embedder | None = None, mode: RetrievalMode | None = None,
    reranker: Reranker | None = None,
) -> tuple[HybridRetriever, LoadedIndex]:
    """Open the index, check it was built with the configured embedding model, and wrap it."""
    index = open_index(settings.index.dir, gpu=settings.index.gpu, ann=ann_options(settings))
    embedder = embedder or build_embedder(settings)
    if index.embedding_model != embedder.name:
        index.close()
        raise ConfigError(
            f"index at {settings.index.dir} was built with {index.embedding_model!r} but the "
            f"configured embedding model is {embedder.name!r}: re-run `rag ingest` (it re-embeds everything), or "
            "set RAG_EMBEDDING__MODEL, __BACKEND and __PRECISION to what built the index"
        )
    options = settings.retrieval
    retriever = HybridRetriever.over(
        index, embedder=embedder, mode=mode or options.mode, fusion=options.fusion, rrf_k=options.rrf_k,
        weights={"dense": options.dense_weight, "bm25": options.bm25_weight}, candidates=options.candidates,
        priors=SourcePriors(options.doc_type_priors, options.policy_over_ticket),
        max_per_document=options.max_per_document, reranker=reranker, rerank_top_n=options.rerank_top_n,
        relevance=RelevanceScale(options.cosine_floor, options.cosine_ceiling, tuple(settings.embedding.languages)),
    )
    return retriever, index


def ann_options(settings: Settings) -> AnnOptions:
    """The search index ingestion builds (kind, compression, HNSW links) and how serving searches it."""
    index = settings.index
    return AnnOptions(kind=index.kind, threshold=index.ann_threshold, compression=index.compression,
                      hnsw_m=index.hnsw_m, ef_search=index.hnsw_ef_search, nprobe=index.ivf_nprobe)


def build_runtime(settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
    """The retriever, the prompt and one LLM client per process, wired into the pipeline."""
    llm = settings.llm
    if llm.context_tokens - llm.max_tokens - llm.prompt_margin_tokens < 1:
        raise ConfigError(f"llm.context_tokens ({llm.context_tokens}) leaves no room for a prompt after max_tokens "
                          f"({llm.max_tokens}) and prompt_margin_tokens ({llm.prompt_margin_tokens}): raise it "
                          f"(RAG_LLM__CONTEXT_TOKENS, the server's --max-model-len) or lower RAG_LLM__MAX_TOKENS")
    try:
        prompt = prompts.load(llm.prompt, llm.prompt_version)
    except (LookupError, ValueError) as exc:  # no such prompt, or a broken template (prompts.TemplateError)
        raise ConfigError(f"{exc} (RAG_LLM__PROMPT / RAG_LLM__PROMPT_VERSION)") from exc
    embedder = embedder or build_embedder(settings)
    guarded = GuardedLLM(build_llm(settings, stop=prompt.stop), deadline_s=llm.deadline_s,
                         failures=llm.breaker_failures, reset_s=llm.breaker_reset_s)
    return Runtime(settings, embedder=embedder, llm=guarded, prompt=prompt)
