"""The `rag` command: a thin shell over the pipeline. Sub-commands from other packages
(`rag ingest`, `rag eval`) register through the `rag.commands` entry-point group."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from rag.errors import ConfigError, IndexFolderError, IndexLockedError, InputError, LLMError, RagError
from rag.settings import Settings

__all__ = ["app", "exit_with", "main", "settings_with"]

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Grounded support answers: ingest a corpus, serve /ask, ask questions.")
llm_app = typer.Typer(no_args_is_help=True, help="The local vLLM server.")
app.add_typer(llm_app, name="llm")
index_app = typer.Typer(no_args_is_help=True, help="Index versions: show, list, roll back.")
app.add_typer(index_app, name="index")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of `rag serve`: create, list, revoke.")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)

_EXIT_CODES: tuple[tuple[type[RagError], int], ...] = (
    (InputError, 2), (ConfigError, 2), (IndexLockedError, 75), (IndexFolderError, 3), (LLMError, 4),
)

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder (default: RAG_INDEX__DIR or data/index).")]


def exit_with(exc: RagError) -> NoReturn:
    """Print one clear line and exit with the code of the error's family."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), 1))


def settings_with(**overrides: Any) -> Settings:
    """Settings from env/rag.toml, with the command line's values on top (None = not given)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        exit_with(ConfigError("; ".join(_setting_problem(e) for e in exc.errors())))
    for dotted, value in overrides.items():
        if value is not None:
            section, name = dotted.split("__")
            setattr(getattr(settings, section), name, value)
    return settings


def _setting_problem(error: Any) -> str:
    name = "__".join(str(part) for part in error["loc"]).upper()
    return f"invalid setting RAG_{name}: {error['msg']} (fix it in the environment or rag.toml)"


def guarded(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except RagError as exc:
        exit_with(exc)


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    llm_url: Annotated[str | None, typer.Option("--llm-url", help="OpenAI-compatible base URL.")] = None,
) -> None:
    """Serve the HTTP API (POST /ask, /feedback, /v1, /admin; GET /health, /ready, /metrics; docs at /docs).

    Callers need an API key (`rag keys create`) unless RAG_AUTH__ENABLED=false (local use only).
    On SIGTERM, requests in flight get RAG_API__SHUTDOWN_GRACE_S seconds to finish.

    Example: rag serve --port 8080 --llm-url http://127.0.0.1:8000/v1
    """
    import uvicorn

    from rag.api import create_app
    from rag.api.keys import load_keyring
    from rag.api.limits import RateLimiter
    from rag.api.logs import configure_logging
    from rag.factory import build_runtime
    from rag.index import open_index

    settings = settings_with(index__dir=index, api__host=host, api__port=port, llm__base_url=llm_url)
    options, auth = settings.api, settings.auth
    keys_file = auth.resolved_keys_file(settings.index.dir)
    keys = guarded(lambda: load_keyring(auth, keys_file))
    if keys.enabled and not keys.keys:
        exit_with(ConfigError(f"authentication is on but no API keys are configured ({keys_file} has none): create "
                              "one with `rag keys create --name bot --scopes ask,feedback`, or set "
                              "RAG_AUTH__ENABLED=false for local use only"))
    guarded(lambda: open_index(settings.index.dir).close())  # fail fast, with the fix, before binding
    configure_logging(options.log_format)
    if not keys.enabled:
        err.print("[bold red]WARNING: authentication is OFF (RAG_AUTH__ENABLED=false): anyone who can reach "
                  f"{options.host}:{options.port} can use every route. Local use only.[/]", highlight=False)
    else:
        err.print(f"{len(keys.keys)} API key(s) from the settings and {keys_file} (re-read when it changes)",
                  highlight=False)
    err.print(f"API on http://{options.host}:{options.port} (docs at /docs); LLM at {settings.llm.base_url}",
              highlight=False)
    app = create_app(lambda: build_runtime(settings), keys=keys, api=options,
                     limiter=RateLimiter(auth.rate_per_minute, auth.burst),
                     reload_interval_s=settings.index.reload_interval_s)
    # uvicorn finishes the requests in flight on SIGTERM, then raises the signal again to the handler it found:
    # make that an exit with status 0, so process managers see a clean stop rather than a death by signal (143).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(app, host=options.host, port=options.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=options.shutdown_grace_s)


DocTypeOpt = Annotated[list[str] | None, typer.Option("--doc-type", help="doc, policy or ticket (repeatable).")]
ProductOpt = Annotated[list[str] | None, typer.Option("--product", help="Exact product name (repeatable).")]
LanguageOpt = Annotated[list[str] | None, typer.Option("--language", help="Language code, e.g. en, zh (repeatable).")]
EffectiveOpt = Annotated[str | None, typer.Option("--effective-on", help="Only policies in effect on this day "
                                                                        "(YYYY-MM-DD).")]


def filters_body(doc_type: list[str] | None, product: list[str] | None, language: list[str] | None,
                 effective_on: str | None) -> dict[str, Any] | None:
    """The command line's filter options in the shape of /ask's "filters" (None when none given)."""
    body = {"doc_type": doc_type, "product": product, "language": language, "effective_on": effective_on}
    return {key: value for key, value in body.items() if value} or None


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    server: Annotated[str | None, typer.Option(help="Ask a running API (e.g. http://127.0.0.1:8080) "
                                                    "instead of loading the index here.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Passages to give the model.")] = None,
    doc_type: DocTypeOpt = None,
    product: ProductOpt = None,
    language: LanguageOpt = None,
    effective_on: EffectiveOpt = None,
    conversation: Annotated[str | None, typer.Option(
        "--conversation", help="Ask a follow-up in this conversation (the id printed with an earlier answer).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
    index: IndexOpt = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="RAG_API_KEY", show_default=False,
                                                help="With --server: the API key (env RAG_API_KEY).")] = None,
) -> None:
    """Ask one question and print the answer with its citations.

    Example: rag ask "How long is the return window?" --server http://127.0.0.1:8080 --doc-type policy
    Follow-up: rag ask "and for opened electronics?" --conversation 3f2a…
    """
    body: dict[str, Any] = {"question": question, "top_k": top_k, "conversation_id": conversation,
                            "filters": filters_body(doc_type, product, language, effective_on)}
    result = (_ask_server(server, body, api_key) if server
              else guarded(lambda: asyncio.run(_ask_local(index, body))))
    if as_json:
        console.print_json(json.dumps(result, ensure_ascii=False))
    else:
        print_answer(result)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question to retrieve passages for.")],
    top_k: Annotated[int, typer.Option("--top-k", help="Passages to show.")] = 5,
    mode: Annotated[str | None, typer.Option(help="dense, bm25 or hybrid (default: RAG_RETRIEVAL__MODE).")] = None,
    doc_type: DocTypeOpt = None,
    product: ProductOpt = None,
    language: LanguageOpt = None,
    effective_on: EffectiveOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    index: IndexOpt = None,
) -> None:
    """Retrieval only (no LLM): the passages /ask would hand the model, with relevance and raw scores.

    Example: rag search "can I return an opened speaker" --product "Tidal BT5 speaker" --mode hybrid
    """
    from rag.factory import build_reranker, build_retriever
    from rag.filters import parse_filters
    from rag.retrieval import MODES

    if mode is not None and mode not in MODES:
        exit_with(InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}"))
    settings = settings_with(index__dir=index)

    def run() -> list[Any]:
        filters = parse_filters(filters_body(doc_type, product, language, effective_on))
        reranker = build_reranker(settings)
        retriever, loaded = build_retriever(settings, mode=mode, reranker=reranker)  # type: ignore[arg-type]
        try:
            return retriever.retrieve(question, top_k=top_k, filters=filters)
        finally:
            loaded.close()

    hits = guarded(run)
    if as_json:
        rows = [{"source": h.chunk.source, "title": h.chunk.title, "doc_type": h.chunk.doc_type, "score": h.score,
                 "signals": h.signals, "text": h.chunk.text} for h in hits]
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    print_hits(hits)


def print_hits(hits: list[Any]) -> None:
    """Ranked passages: relevance, source, type and the raw signals behind the rank."""
    from rich.table import Table

    table = Table()
    for name in ("#", "relevance", "source", "type", "signals", "text"):
        table.add_column(name, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        signals = " ".join(f"{k}={v:g}" for k, v in hit.signals.items())
        table.add_row(str(rank), f"{hit.score:.2f}", hit.chunk.source, hit.chunk.doc_type, signals,
                      hit.chunk.text[:160].replace("\n", " "))
    console.print(table if hits else "no passage matches (check the filters: `rag index show` lists the values)")


def print_answer(result: dict[str, Any]) -> None:
    """The answer, then each passage: [n] title — source (score), cited ones marked."""
    console.print(f"[bold]{result['answer'] or '(empty answer)'}[/]", highlight=False)
    decision = result.get("decision", "answer")
    console.print(f"[dim]{decision} (confidence {result.get('confidence', 0):.2f}): {result.get('reason', '')}[/]",
                  highlight=False)
    if result.get("options"):
        console.print(f"[dim]options: {' | '.join(result['options'])}[/]", highlight=False)
    if result.get("standalone_question"):
        console.print(f"[dim]read as: {result['standalone_question']}[/]", highlight=False)
    for sentence in result.get("removed", []):
        console.print(f"[dim]  removed, not backed by a passage: {sentence}[/]", highlight=False)
    for c in result["citations"]:
        mark = "*" if c["cited"] else " "
        console.print(f" {mark}[{c['n']}] {c['title']} — {c['source']} (score {c['score']:.2f})", highlight=False)
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in result["timings_ms"].items())
    prompt = f" · prompt {result['prompt']}" if result.get("prompt") else ""
    console.print(f"[dim]model {result['model']}{prompt} · index {result['index_version']} · {timings}[/]",
                  highlight=False)
    if result.get("conversation_id"):
        console.print(f"[dim]conversation {result['conversation_id']} (follow up with --conversation)[/]",
                      highlight=False)


async def _ask_local(index: Path | None, body: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    from rag.conversations import check_conversation_id, new_conversation_id
    from rag.factory import build_runtime
    from rag.filters import parse_filters
    from rag.types import Turn

    filters = parse_filters(body["filters"])
    conversation = check_conversation_id(body["conversation_id"]) if body["conversation_id"] else new_conversation_id()
    runtime = build_runtime(settings_with(index__dir=index))
    try:
        history = runtime.conversations.history(conversation)
        answer = await runtime.pipeline.ask(body["question"], top_k=body["top_k"], filters=filters, history=history)
        stored = runtime.conversations.append(conversation, Turn(body["question"], answer.answer),
                                              standalone=answer.standalone_question, decision=answer.decision)
        return {**asdict(answer), "conversation_id": conversation, "answer_id": stored.answer_id}
    finally:
        await runtime.aclose()


def _ask_server(server: str, body: dict[str, Any], api_key: str | None) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        reply = httpx.post(f"{server.rstrip('/')}/ask", json=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        exit_with(RagError(f"cannot reach the API at {server}: {exc}. Start it with `rag serve`"))
    if reply.status_code != 200:
        message = reply.json().get("error", {}).get("message", reply.text) if reply.content else reply.reason_phrase
        err.print(f"[bold red]error {reply.status_code}:[/] {message}", highlight=False)
        raise typer.Exit(4 if reply.status_code in (502, 503, 504) else 2)
    result: dict[str, Any] = reply.json()
    return result


@llm_app.command("serve")
def llm_serve(
    model: Annotated[str | None, typer.Option(help="Model name or path to serve (default: packaged gemma-3-270m).")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the OpenAI-compatible API.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
) -> None:
    """Start the real vLLM OpenAI-compatible server (own virtual env, model prepared once).

    Example: rag llm serve --port 8000   (then: RAG_LLM__BASE_URL=http://127.0.0.1:8000/v1)
    """
    from rag.llm.server import VLLMServer

    options = settings_with(llm_server__model=model, llm_server__port=port, llm_server__device=device).llm_server
    server = VLLMServer(
        model=options.model, served_model_name=options.served_model_name, host=options.host, port=options.port,
        home=options.home.expanduser(), device=options.device, max_model_len=options.max_model_len,
        enforce_eager=options.enforce_eager, startup_timeout_s=options.startup_timeout_s,
        echo=lambda line: err.print(line, highlight=False),
    )
    guarded(server.serve_forever)


@index_app.command("show")
def index_show(index: IndexOpt = None) -> None:
    """Show the manifest of the current version: model, chunker, counts, parent.

    Example: rag index show --index data/index
    """
    from rag.index import open_index

    settings = settings_with(index__dir=index)
    loaded = guarded(lambda: open_index(settings.index.dir, gpu="off"))
    console.print_json(json.dumps(loaded.manifest, ensure_ascii=False))
    loaded.close()


@index_app.command("list")
def index_list(
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the kept versions, oldest first; the current one is marked.

    Example: rag index list --index data/index
    """
    from dataclasses import asdict

    from rich.table import Table

    from rag.index import IndexFolder

    settings = settings_with(index__dir=index)
    versions = guarded(lambda: IndexFolder(settings.index.dir).versions())
    if not versions:
        exit_with(IndexFolderError(f"no versions in {settings.index.dir}: run `rag ingest PATH --index "
                                   f"{settings.index.dir}`"))
    if as_json:
        console.print_json(json.dumps([asdict(v) for v in versions]))
        return
    table = Table(title=f"Versions in {settings.index.dir}")
    for name in ("", "version", "created", "documents", "chunks", "parent"):
        table.add_column(name, no_wrap=name in ("version", "parent"))
    for v in versions:
        table.add_row("*" if v.current else "", v.id, v.created_at, str(v.documents), str(v.chunks), v.parent or "")
    console.print(table)


@index_app.command("rollback")
def index_rollback(
    version: Annotated[str | None, typer.Argument(help="Version to make current (default: the previous one).")] = None,
    index: IndexOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a running ingestion.")] = 0.0,
) -> None:
    """Make an older version current again (one atomic switch; a running `rag serve` follows).

    Example: rag index rollback --index data/index
    """
    from rag.index import IndexFolder

    settings = settings_with(index__dir=index)
    folder = IndexFolder(settings.index.dir)
    before, after = guarded(lambda: folder.rollback(version, wait_s=wait))
    console.print(f"{folder.root}: current version {before} -> {after}")


KeysFileOpt = Annotated[Path | None, typer.Option("--keys-file", help="Keys file (default: RAG_AUTH__KEYS_FILE or "
                                                                    "api-keys.toml beside the index folder).")]


def _keys_file(keys_file: Path | None, index: Path | None) -> Path:
    settings = settings_with(index__dir=index)
    return keys_file or settings.auth.resolved_keys_file(settings.index.dir)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for (shown in logs and metrics), e.g. support-bot.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: ask, feedback, metrics, admin (admin: all).")] = "ask",
    rate: Annotated[float | None, typer.Option(help="This key's requests per minute (default: RAG_AUTH__RATE_PER_MINUTE).")
                    ] = None,
    replace: Annotated[bool, typer.Option(help="Revoke an existing key of that name and make a new one.")] = False,
    keys_file: KeysFileOpt = None,
    index: IndexOpt = None,
) -> None:
    """Make a key, store only its hash, print the key once (to stdout, nothing else there).

    Example: rag keys create --name support-bot --scopes ask,feedback
    """
    from rag.api.keys import add_key

    path = _keys_file(keys_file, index)
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    key = guarded(lambda: add_key(path, name, wanted, rate_per_minute=rate, replace=replace))
    err.print(f"key {name!r} ({', '.join(wanted)}) stored as a hash in {path}; it is shown only now:", highlight=False)
    print(key)


@keys_app.command("list")
def keys_list(keys_file: KeysFileOpt = None, index: IndexOpt = None) -> None:
    """The keys in the keys file: name, scopes, rate, the start of the hash (keys themselves are not kept)."""
    from rag.api.keys import list_keys

    path = _keys_file(keys_file, index)
    for spec in guarded(lambda: list_keys(path)):
        rate = f"{spec.rate_per_minute:g}/min" if spec.rate_per_minute else "default rate"
        console.print(f"{spec.name}\t{','.join(spec.scopes)}\t{rate}\t{spec.hash[:19]}…", highlight=False)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")], keys_file: KeysFileOpt = None,
                index: IndexOpt = None) -> None:
    """Remove a key; a running server refuses it within a second."""
    from rag.api.keys import remove_key

    path = _keys_file(keys_file, index)
    if not guarded(lambda: remove_key(path, name)):
        exit_with(InputError(f"no key named {name!r} in {path}: see `rag keys list`"))
    console.print(f"revoked {name!r} in {path}")


def _register_plugins() -> None:
    for entry in entry_points(group="rag.commands"):
        entry.load()(app)


def main() -> None:
    _register_plugins()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
