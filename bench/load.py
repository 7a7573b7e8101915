"""The API under concurrent load: throughput, latency of answers and of refusals, status counts.

    python -m bench.load                                   # starts everything itself, runs the phases below
    python -m bench.load --url http://127.0.0.1:8080 --key rag_... --clients 8 --seconds 10

example:
    python -m bench.load --max-in-flight 8 --seconds 8 --slow-llm-s 1.0
    python -m bench.load --embedder minilm                 # the real MiniLM model (ingest ~1 min)

With --url, N clients (asyncio + httpx, one connection each) ask questions from a small list against that
server for a fixed time, each sending its next request as soon as the last one is answered; one row.
Without it, the bench starts its own service: the scripted OpenAI-compatible LLM server in this process
(instant, or sleeping --slow-llm-s before each answer), `rag keys create` for a key, and `rag serve` as a
subprocess (a real uvicorn with its own GIL) over the sample corpus, ingested into a temporary folder with
the hash embedder (or MiniLM, or the index given with --index), with RAG_API__MAX_IN_FLIGHT = K. Phases:
  1 client                  instant LLM: the unloaded latency and throughput                  (baseline)
  K/2 clients, K clients    instant LLM: throughput as the service fills, ratio vs baseline
  4K clients, LLM slow      the LLM sleeps --slow-llm-s: K answers at a time, the rest refused
                            with 503 at once (Retry-After: 1); clients retry at once (no backoff)
                            or after --backoff seconds (a client half-honouring Retry-After)
Without backoff, 3K clients loop on 503s as fast as they come back: the load client (one Python process,
~1-2 ms of CPU a request with httpx) and the server share the cores, so the 503 latency then measures that
saturation more than the refusal; the backoff row shows what a refusal itself costs.
Latency is the client's: from sending the request to the last byte of the response. "LLM p50" is the
median of the 200s' timings_ms generate (+ condense): the model's share of their latency. Percentiles are
nearest-rank; p99 of a few hundred samples is their third largest or so: read it as "the slow tail".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

QUESTIONS = [
    "How many days do I have to return an item?", "How long does the Aurora X2 take to charge?",
    "Is there a restocking fee on opened electronics?", "How do I reset the BrewPoint kettle?",
    "Do orders over $75 ship free?", "How long does standard shipping take?",
]
CORPUS = Path("samples/corpus")
RAG = [sys.executable, "-c", "from rag.cli import main; main()"]
TRANSPORT_ERROR = 0  # the status recorded when no response came back (refused, reset, timed out)


@dataclass
class LoadResult:
    """What one load run saw: latencies by status, the LLM's share of each 200, the peak in-flight gauge."""

    clients: int
    seconds: float  # from the first request sent to the last response received
    latencies_ms: dict[int, list[float]] = field(default_factory=dict)
    llm_ms: list[float] = field(default_factory=list)  # per 200 of /ask: timings_ms generate + condense
    errors: list[str] = field(default_factory=list)
    refusals: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # status -> first (Retry-After, body)
    in_flight_peak: float | None = None  # highest rag_in_flight_requests seen on /metrics, when watched

    @property
    def statuses(self) -> Counter[int]:
        return Counter({status: len(values) for status, values in self.latencies_ms.items()})

    @property
    def total(self) -> int:
        return sum(len(values) for values in self.latencies_ms.values())

    @property
    def rps(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def percentile_ms(self, status: int, q: float) -> float | None:
        """Nearest-rank percentile (q in 0..100) of the latencies of `status`, None when there are none."""
        values = sorted(self.latencies_ms.get(status, []))
        return values[max(0, math.ceil(q / 100 * len(values)) - 1)] if values else None

    def record(self, status: int, latency_ms: float) -> None:
        self.latencies_ms.setdefault(status, []).append(latency_ms)


async def _client(http: httpx.AsyncClient, url: str, result: LoadResult, offset: int, deadline: float,
                  questions: Sequence[str], backoff_s: float) -> None:
    """One client: a request, its answer, the next request, until the deadline."""
    sent = offset
    while time.perf_counter() < deadline:
        question = questions[sent % len(questions)]
        sent += 1
        tick = time.perf_counter()
        try:
            reply = await http.post(url, json={"question": question})
        except httpx.HTTPError as exc:
            result.record(TRANSPORT_ERROR, (time.perf_counter() - tick) * 1000)
            result.errors.append(repr(exc))
            continue
        result.record(reply.status_code, (time.perf_counter() - tick) * 1000)
        if reply.status_code == 200 and "timings_ms" in reply.text:
            timings = reply.json()["timings_ms"]
            result.llm_ms.append(timings.get("generate", 0.0) + timings.get("condense", 0.0))
        elif reply.status_code != 200:
            result.refusals.setdefault(reply.status_code, (reply.headers.get("retry-after"), reply.text[:300]))
            if reply.status_code >= 500 and reply.status_code != 503:
                result.errors.append(f"{reply.status_code}: {reply.text[:200]}")
        if reply.status_code in (429, 503) and backoff_s:
            await asyncio.sleep(backoff_s)


async def _watch_in_flight(base: str, key: str, result: LoadResult, stop: asyncio.Event) -> None:
    """Sample the in-flight gauge every 50 ms on a connection of its own; keep the peak."""
    async with httpx.AsyncClient(headers=_auth(key), timeout=10) as http:
        while not stop.is_set():
            reply = await http.get(f"{base}/metrics")
            if reply.status_code == 200:
                value = metric_value(reply.text, "rag_in_flight_requests")
                result.in_flight_peak = max(result.in_flight_peak or 0.0, value)
            await asyncio.sleep(0.05)


async def drive(url: str, key: str, *, clients: int, seconds: float, questions: Sequence[str] = QUESTIONS,
                path: str = "/ask", timeout_s: float = 30.0, backoff_s: float = 0.0,
                watch_in_flight: bool = False) -> LoadResult:
    """`clients` concurrent clients asking for `seconds`; requests still out at the end are waited for."""
    base = url.rstrip("/")
    result = LoadResult(clients=clients, seconds=0.0)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    stop = asyncio.Event()
    async with httpx.AsyncClient(headers=_auth(key), timeout=timeout_s, limits=limits) as http:
        watcher = asyncio.create_task(_watch_in_flight(base, key, result, stop)) if watch_in_flight else None
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(http, base + path, result, n, deadline, questions, backoff_s)
                               for n in range(clients)))
        result.seconds = time.perf_counter() - started
        stop.set()
        if watcher is not None:
            await watcher
    return result


def run_load(url: str, key: str, *, clients: int, seconds: float, **options: Any) -> LoadResult:
    """`drive`, for callers outside an event loop (the tests, the command line)."""
    return asyncio.run(drive(url, key, clients=clients, seconds=seconds, **options))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def metric_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The value of `name` with (at least) `labels` in Prometheus text; 0.0 when no such sample is there yet."""
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", text, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in (labels or {}).items()):
            return float(match.group(2))
    return 0.0


# --- a service of our own: `rag serve` as a subprocess --------------------------------------------------------


@dataclass
class Service:
    """A `rag serve` subprocess: where it listens, the key made for the load, its log (JSON lines)."""

    url: str
    key: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return _auth(self.key)

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def served_ms(self, route: str, status: int, *, since: int = 0) -> list[float]:
        """The service's own time (its access log's duration_ms, from the request reaching the middleware to the
        response) of each `route` request answered with `status`, from the log's line `since` on. Unlike the
        latencies a load client measures, these hold nothing of the client's own stalls."""
        found = []
        for line in self.log_lines()[since:]:
            if line.startswith("{") and '"rag.access"' in line:
                entry = json.loads(line)
                if entry.get("route") == route and entry.get("status") == status:
                    found.append(float(entry["duration_ms"]))
        return found


def serve_env(index_dir: Path, llm_url: str, scratch: Path, *, port: int, embedder: str = "hash",
              max_in_flight: int = 16, grace_s: int = 10) -> dict[str, str]:
    """The environment of a `rag serve` kept apart from the caller's: RAG_* from here only, files in `scratch`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAG_")}
    env.update({
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAG_CONFIG": str(scratch / "no-rag.toml"),
        "RAG_INDEX__DIR": str(index_dir), "RAG_LLM__BASE_URL": llm_url, "RAG_LLM__MODEL": "scripted",
        "RAG_API__PORT": str(port), "RAG_API__MAX_IN_FLIGHT": str(max_in_flight),
        "RAG_API__SHUTDOWN_GRACE_S": str(grace_s), "RAG_AUTH__KEYS_FILE": str(scratch / "api-keys.toml"),
        "RAG_AUTH__BURST": "100000", "RAG_CONVERSATIONS__PATH": str(scratch / "conversations.sqlite3"),
        "RAG_FEEDBACK__PATH": str(scratch / "feedback.sqlite3"),
    })
    if embedder == "hash":
        env.update({"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64"})
    return env


def create_key(env: Mapping[str, str]) -> str:
    """A key with the ask, feedback and metrics scopes and no practical rate limit, made by `rag keys create`."""
    done = subprocess.run([*RAG, "keys", "create", "--name", "load", "--scopes", "ask,feedback,metrics",
                           "--rate", "1000000", "--replace"], env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`rag keys create` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def served(index_dir: Path, llm_url: str, scratch: Path, *, embedder: str = "hash", max_in_flight: int = 16,
           grace_s: int = 10, start_timeout_s: float = 120.0) -> Iterator[Service]:
    """`rag serve` over `index_dir`, ready (GET /ready is 200) when yielded; SIGTERM and wait on the way out."""
    port = _free_port()
    env = serve_env(index_dir, llm_url, scratch, port=port, embedder=embedder, max_in_flight=max_in_flight,
                    grace_s=grace_s)
    key = create_key(env)
    log_path = scratch / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*RAG, "serve"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        service = Service(f"http://127.0.0.1:{port}", key, process, log_path)
        try:
            _wait_ready(service, start_timeout_s)
            yield service
        finally:
            _stop(process, grace_s, log)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"`rag serve` exited with {service.process.returncode}:\n{service.log_tail()}")
        try:
            if httpx.get(f"{service.url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"`rag serve` not ready after {timeout_s:.0f} s:\n{service.log_tail()}")


def _stop(process: subprocess.Popen[bytes], grace_s: int, log: IO[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s + 15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.flush()


def build_index(scratch: Path, embedder: str) -> Path:
    """The sample corpus ingested into `scratch` with the hash embedder or MiniLM (no PII redaction)."""
    from ingest.chunking import StructureAwareChunker
    from ingest.job import IngestJob
    from rag.embedders import HashEmbedder, SentenceTransformerEmbedder
    from rag.protocols import Embedder

    model: Embedder = HashEmbedder() if embedder == "hash" else SentenceTransformerEmbedder()
    tick = time.perf_counter()
    index_dir = scratch / "index"
    IngestJob(embedder=model, index_dir=index_dir, gpu="off",
              chunker=StructureAwareChunker(count_tokens=model.count_tokens),
              ).run(sorted(p for p in CORPUS.iterdir() if p.is_dir()))
    print(f"ingested {CORPUS} with the {embedder} embedder in {time.perf_counter() - tick:.1f} s", flush=True)
    return index_dir


# --- report ---------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}"


def print_table(rows: Sequence[tuple[str, LoadResult]]) -> None:
    """One row a phase; the x-base columns divide by the first row (the baseline)."""
    base, width = rows[0][1], max(28, *(len(label) + 2 for label, _ in rows))
    print(f"\n{'phase':<{width}}{'clients':>8}{'req/s':>9}{'x base':>8}{'200 p50':>9}{'200 p99':>9}{'x base':>8}"
          f"{'503 p50':>9}{'503 p99':>9}{'LLM p50':>9}  statuses")
    for label, r in rows:
        counts = " ".join(f"{'err' if s == TRANSPORT_ERROR else s}:{n}" for s, n in sorted(r.statuses.items()))
        print(f"{label:<{width}}{r.clients:>8}{r.rps:>9.1f}{_ratio(r.rps, base.rps):>8}{_ms(r.percentile_ms(200, 50)):>9}"
              f"{_ms(r.percentile_ms(200, 99)):>9}{_ratio(r.percentile_ms(200, 50), base.percentile_ms(200, 50)):>8}"
              f"{_ms(r.percentile_ms(503, 50)):>9}{_ms(r.percentile_ms(503, 99)):>9}{_ms(_median(r.llm_ms)):>9}  {counts}")
    for label, r in rows:
        if r.errors:
            print(f"{label}: {len(r.errors)} errors, first: {r.errors[0]}")
        for status, (_, body) in sorted(r.refusals.items()):
            if status != 503:
                print(f"{label}: first {status}: {body}")


def own_service(args: argparse.Namespace) -> list[tuple[str, LoadResult]]:
    """Start the scripted LLM and `rag serve`, then run the phases against them."""
    from rag.testing import ScriptedOpenAIServer

    k, slow = args.max_in_flight, args.slow_llm_s
    phases = [("1 client (baseline)", 1, 0.0, 0.0), (f"K/2 = {k // 2} clients", max(1, k // 2), 0.0, 0.0),
              (f"K = {k} clients", k, 0.0, 0.0), (f"4K, LLM {slow:g} s, no backoff", 4 * k, slow, 0.0),
              (f"4K, LLM {slow:g} s, backoff {args.backoff:g}", 4 * k, slow, args.backoff)]
    rows: list[tuple[str, LoadResult]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder, ScriptedOpenAIServer() as llm:
        scratch = Path(folder)
        index_dir = args.index or build_index(scratch, args.embedder)
        with served(index_dir, llm.base_url, scratch, embedder=args.embedder, max_in_flight=k) as service:
            run_load(service.url, service.key, clients=1, seconds=1.0)  # warm-up: first-request costs
            for label, clients, delay, backoff in phases:
                llm.fault, llm.delay_s = ("slow" if delay else None), delay
                rows.append((label, run_load(service.url, service.key, clients=clients, seconds=args.seconds,
                                             backoff_s=backoff, watch_in_flight=True)))
                print(f"{label}: done ({rows[-1][1].total} requests)", flush=True)
            metrics = httpx.get(f"{service.url}/metrics", headers=service.headers).text
        overload = metric_value(metrics, "rag_rejected_requests_total", {"reason": "overload"})
        peaks = ", ".join(f"{r.in_flight_peak:g}" for _, r in rows if r.in_flight_peak is not None)
        print(f"\nK = RAG_API__MAX_IN_FLIGHT = {k}; server: rejected for overload {overload:g}; "
              f"in-flight gauge peaks per phase: {peaks}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running API [default: start one here]")
    parser.add_argument("--key", default=os.environ.get("RAG_API_KEY", ""), help="its API key [env RAG_API_KEY]")
    parser.add_argument("--clients", type=int, default=8, help="with --url: concurrent clients [default: 8]")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase [default: 8]")
    parser.add_argument("--backoff", type=float, default=0.1, help="pause after a 429/503 (--url, last phase) [0.1]")
    parser.add_argument("--max-in-flight", type=int, default=8, help="own service: K [default: 8]")
    parser.add_argument("--slow-llm-s", type=float, default=1.0, help="own service: LLM delay, last phase [1.0]")
    parser.add_argument("--embedder", choices=("hash", "minilm"), default="hash", help="own service [default: hash]")
    parser.add_argument("--index", type=Path, help="own service: an index built with --embedder [default: ingest]")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.url:
        rows = [(args.url, run_load(args.url, args.key, clients=args.clients, seconds=args.seconds,
                                         backoff_s=args.backoff))]
    else:
        rows = own_service(args)
    print_table(rows)
    where = "the load client" if args.url else "the load client and the scripted LLM"
    print(f"\n{os.cpu_count()} cores; {where} in this process; total run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
