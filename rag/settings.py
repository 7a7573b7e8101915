"""All configuration, read only by the entry points (CLI, API factory).

Sources, highest first: environment variables (prefix RAG_, nesting with __, e.g.
RAG_LLM__BASE_URL), a `rag.toml` in the working directory (or the file named by RAG_CONFIG),
then these defaults, which work offline on a laptop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

__all__ = [
    "ApiKeySpec",
    "ApiSettings",
    "AuthSettings",
    "ChunkingSettings",
    "ConversationSettings",
    "EmbeddingSettings",
    "FeedbackSettings",
    "IndexSettings",
    "IngestSettings",
    "LLMServerSettings",
    "LLMSettings",
    "LexicalSettings",
    "RetrievalSettings",
    "Settings",
]


class EmbeddingSettings(BaseModel):
    backend: str = Field("openvino", description="openvino (the default: the fastest on a CPU in bench.embedders), "
                         "onnx (ONNX Runtime), sentence-transformers (PyTorch; the one for a GPU), hash (tests), "
                         "or a plug-in's name")
    model: str = "all-MiniLM-L6-v2"
    precision: Literal["auto", "fp32", "fp16", "int8"] = Field(
        "auto", description="auto = int8 for onnx and openvino (a quantized model made once from the packaged one: "
        ">= 0.99 of fp32's retrieval quality), fp16 on a CUDA GPU and fp32 on a CPU for sentence-transformers")
    device: str = "auto"
    batch_size: int = Field(32, ge=1)
    threads: int = Field(0, ge=0, description="intra-op threads for embedding (torch, ONNX Runtime, OpenVINO) and "
                         "FAISS; 0 = the machine's cores, shared with the web server (see README)")
    cache_dir: Path = Field(Path("~/.cache/rag/embedders"), description="where exported and quantized models are kept")
    languages: list[str] = Field(["en"], description="scripts the model was trained on (en, zh, ja, ko); [] = all. "
                                 "Outside them, relevance comes from lexical coverage")


class ChunkingSettings(BaseModel):
    chunk_tokens: int = Field(160, ge=32)
    overlap_tokens: int = Field(24, ge=0)


class IndexSettings(BaseModel):
    dir: Path = Path("data/index")
    gpu: Literal["auto", "on", "off"] = "auto"
    kind: Literal["auto", "flat", "hnsw", "ivf"] = Field("auto", description="the search index: auto = flat below "
                                                         "ann_threshold vectors, ivf above it (bench.ann)")
    ann_threshold: int = Field(100_000, ge=0, description="vectors from which `auto` builds an approximate index")
    compression: Literal["none", "sq8", "pq"] = Field("none", description="vector codes of the approximate index: "
                                                      "sq8 = 1 byte per dimension, pq = a few bytes per vector")
    hnsw_m: int = Field(32, ge=4, description="HNSW links per vector")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW candidates per query (recall against speed)")
    ivf_nprobe: int = Field(32, ge=1, description="IVF lists searched per query")
    keep_versions: int = Field(3, ge=0, description="previous versions kept for rollback")
    reload_interval_s: float = Field(2.0, ge=0, description="how often `rag serve` looks for a new version; 0 = never")


class IngestSettings(BaseModel):
    """What `rag ingest` reads, skips and redacts."""

    max_file_mb: float = Field(50.0, gt=0, description="larger files are skipped with a reason")
    include_unresolved_tickets: bool = False
    redact_doc_types: list[Literal["doc", "policy", "ticket"]] = ["ticket"]
    pii_entities: list[str] = ["EMAIL", "PHONE", "CARD", "ADDRESS", "PERSON", "ORDER_NUMBER", "ACCOUNT_NUMBER"]
    keep_order_numbers: bool = False
    pii_allow: list[str] = Field(default_factory=list, description="values never redacted, e.g. the company's own contacts")
    dedup_threshold: float = Field(0.8, gt=0, le=1, description="cosine of ticket embeddings above which they are "
                                   "near-duplicates")
    ray_address: str | None = Field(None, description="run parsing and embedding on Ray: 'local' starts one here, "
                                    "'auto' or ray://host:port joins a cluster; unset = in this process")
    ray_workers: int = Field(0, ge=0, description="Ray workers (parse and embed actors); 0 = one per CPU Ray sees")


class LexicalSettings(BaseModel):
    """How ingestion builds the BM25 index (a change re-tokenises every chunk, nothing is re-embedded)."""

    k1: float = Field(1.2, ge=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation")
    stem: bool = Field(True, description="Snowball-stem English words")
    stopwords: bool = Field(True, description="drop English and Chinese stop words")


class RetrievalSettings(BaseModel):
    top_k: int = Field(4, ge=1)
    max_top_k: int = Field(20, ge=1)
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "weighted"] = Field("weighted", description="weighted normalised scores (measured best on "
                                                "eval/suites/sample.jsonl) or reciprocal rank fusion")
    rrf_k: float = Field(60.0, gt=0)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    candidates: int = Field(50, ge=1, description="hits taken from each search before fusion")
    doc_type_priors: dict[str, float] = Field(
        default_factory=lambda: {"policy": 1.0, "doc": 1.0, "ticket": 1.0}, description="multipliers on the fused score")
    policy_over_ticket: float = Field(0.7, ge=0, le=1, description="a ticket ranks behind every policy scoring at least "
                                      "this share of its score: the policy wins where both match; 1 = off")
    max_per_document: int = Field(2, ge=0, description="chunks of one document before others get a turn; 0 = no cap")
    reranker: str | None = Field(None, description="cross-encoder model name or folder; skipped when unavailable")
    reranker_backend: str = "cross-encoder"
    rerank_top_n: int = Field(20, ge=1)
    cosine_floor: float = Field(0.15, description="cosine of unrelated text for the embedding model (relevance 0)")
    cosine_ceiling: float = Field(0.65, description="cosine of a clear paraphrase (relevance 1)")


class AnswerSettings(BaseModel):
    """When an answer ships and when the customer is handed to a person (see rag/decisions.py)."""

    min_relevance: float = Field(0.4, ge=0, le=1, description="escalate without asking the model below this relevance")
    strictness: Literal["strict", "balanced", "lenient"] = Field(
        "balanced", description="strict: escalate on any unsupported sentence; balanced: remove them; lenient: keep")
    support_threshold: float = Field(0.6, gt=0, le=1, description="share of a sentence's words its passages must hold")
    handoff_message: str = "I can't answer that from our documentation; let me connect you with a person."
    clarify_margin: float = Field(0.15, ge=0, le=1, description="products whose best passage is this close to the "
                                  "best one count as matches; several matches, none named: clarify. 0 = never")
    clarify_message: str = Field("Which product do you mean: {options}?", description="{options}: the products")
    on_llm_failure: Literal["error", "extractive"] = Field(
        "error", description="while the LLM server is down (unreachable, timing out, 5xx, circuit open): error: /ask "
        "answers 503/504; extractive: the best passages, cited, with decision escalate")


class ConversationSettings(BaseModel):
    """Follow-up questions: where histories are kept, and for how long."""

    path: Path | None = Field(None, description="SQLite file of conversation histories; unset: "
                              "conversations.sqlite3 beside the index folder")
    ttl_s: float = Field(3600.0, gt=0, description="a conversation is forgotten this long after its last turn")
    max_turns: int = Field(20, ge=1, description="turns kept per conversation")
    condense_turns: int = Field(4, ge=1, description="latest turns shown to the model when rewriting a follow-up")

    def resolved_path(self, index_dir: Path) -> Path:
        return self.path or index_dir.parent / "conversations.sqlite3"


class FeedbackSettings(BaseModel):
    """Ratings of answers (POST /feedback), kept until exported with `rag eval from-feedback`."""

    path: Path | None = Field(None, description="SQLite file of feedback records (never purged by the conversation "
                              "TTL); unset: feedback.sqlite3 beside the index folder")
    url: str | None = Field(None, description="any SQLAlchemy URL instead of the SQLite file, e.g. "
                            "postgresql+psycopg://user:pass@host/db")

    def resolved_path(self, index_dir: Path) -> Path:
        return self.path or index_dir.parent / "feedback.sqlite3"

    def resolved_url(self, index_dir: Path) -> str:
        """The SQLAlchemy URL of the feedback store: `url`, else the SQLite file."""
        return self.url or f"sqlite:///{self.resolved_path(index_dir)}"


class LLMSettings(BaseModel):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gemma-3-270m"
    api_key: SecretStr = SecretStr("EMPTY")
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(0, ge=0, description="the openai client's own retries (ours: one, where safe)")
    retry_backoff_s: float = Field(0.5, ge=0, description="wait before the one retry of a refused or overloaded call")
    retry_after_cap_s: float = Field(2.0, ge=0, description="the longest Retry-After (429/503) honoured")
    max_tokens: int = Field(192, ge=1)
    context_tokens: int = Field(2048, ge=1, description="the served model's context length (vLLM --max-model-len); "
                                "passages fill what the prompt leaves of it after max_tokens and the margin")
    prompt_margin_tokens: int = Field(32, ge=0, description="room kept for the chat template's own tokens")
    tokenizer: str | None = Field(None, description="folder or cached hub name of the served model's tokenizer, "
                                  "for counting prompt tokens; unset: the model `rag llm serve` prepared, else an estimate")
    temperature: float = Field(0.0, ge=0)
    stop: list[str] | None = Field(None, max_length=4, description="replaces the prompt's stop sequences")
    structured_output: Literal["auto", "on", "off"] = Field(
        "auto", description="ask for a JSON answer whose citations can only be the passages given (vLLM guided "
        "decoding); auto: fall back to free text with [n] markers if the server refuses it")
    condense_max_tokens: int = Field(64, ge=8, description="longest rewrite of a follow-up into a standalone question")
    deadline_s: float = Field(120.0, gt=0, description="the longest one answer may take, streamed or not, whatever "
                              "the server does (a slow trickle of tokens included)")
    breaker_failures: int = Field(5, ge=0, description="consecutive server faults (unreachable, timeout, 5xx, cut "
                                  "stream) after which calls fail fast for breaker_reset_s; 0 = no circuit breaker")
    breaker_reset_s: float = Field(15.0, gt=0, description="how long the circuit stays open before one trial call")
    prompt: str = "answer"
    prompt_version: str = "latest"


class LLMServerSettings(BaseModel):
    """The local vLLM server that `rag llm serve` starts."""

    model: str | None = None
    served_model_name: str = "gemma-3-270m"
    host: str = "127.0.0.1"
    port: int = 8000
    home: Path = Path("~/.cache/rag/vllm")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_model_len: int = 2048
    enforce_eager: bool | None = None  # None: eager on the CPU, CUDA graphs on a GPU
    startup_timeout_s: float = 900.0


class ApiKeySpec(BaseModel):
    """One caller's key, as stored: a name for logs and metrics, the key's hash (never the key), its scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="sha256:<hex> of the key (`rag keys create`)")
    scopes: list[Literal["ask", "feedback", "metrics", "admin"]] = Field(min_length=1)
    rate_per_minute: float | None = Field(None, gt=0, description="this key's own rate limit")


class AuthSettings(BaseModel):
    """Who may call the API: API keys with scopes, stored hashed; on unless switched off explicitly."""

    enabled: bool = Field(True, description="false: no key needed (local use only; the server warns loudly)")
    keys: list[ApiKeySpec] = Field(default_factory=list, description="keys given in the settings themselves")
    keys_file: Path | None = Field(None, description="TOML file of [[keys]] (`rag keys create` appends to it); "
                                   "unset: api-keys.toml beside the index folder")
    rate_per_minute: float = Field(600.0, gt=0, description="requests per minute per key (per client address with "
                                   "auth off), refilled continuously")
    burst: int = Field(30, ge=1, description="requests a key may send at once before the rate applies")

    def resolved_keys_file(self, index_dir: Path) -> Path:
        return self.keys_file or index_dir.parent / "api-keys.toml"


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    served_model_name: str = Field("rag", min_length=1, description="the model name /v1/models lists and "
                                   "/v1/chat/completions expects")
    max_question_chars: int = Field(2000, ge=1)
    max_body_bytes: int = Field(65536, ge=1024, description="larger request bodies are refused with 413")
    max_messages: int = Field(40, ge=1, description="messages one /v1/chat/completions request may carry")
    max_in_flight: int = Field(16, ge=1, description="answers being worked on at once; beyond, 503 at once "
                               "(with Retry-After) instead of a growing queue")
    cors_origins: list[str] = Field(default_factory=list, description='origins browsers may call from; ["*"] = any')
    shutdown_grace_s: int = Field(30, ge=0, description="on SIGTERM, how long requests in flight may finish")
    ready_cache_s: float = Field(5.0, ge=0, description="how long /ready reuses its last probe of the LLM server")
    log_format: Literal["json", "text"] = Field("json", description="`rag serve` logs: one JSON object per line, "
                                                "or text for a terminal")


class Settings(BaseSettings):
    """Every setting of the service, grouped by component."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="forbid")

    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    index: IndexSettings = IndexSettings()
    lexical: LexicalSettings = LexicalSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    conversations: ConversationSettings = ConversationSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    llm: LLMSettings = LLMSettings()
    llm_server: LLMServerSettings = LLMServerSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("RAG_CONFIG", "rag.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
