"""The feedback store on a real PostgreSQL (pgserver's bundled binaries, over a unix socket): records round-trip as
on SQLite, several stores share them, and a database that is not there is a clear error without the password."""

from __future__ import annotations

import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from rag.conversations import ConversationStore, RecordedTurn
from rag.errors import ConfigError, StorageError
from rag.feedback import FeedbackStore, rate_answer
from rag.types import Turn

pytestmark = pytest.mark.slow


@contextmanager
def server_folder() -> Iterator[Path]:
    """A data folder outside pytest's temp root: every pytest session starting on the machine makes that root
    private again, and the server runs as another user (pgserver's own, when the tests run as root)."""
    with tempfile.TemporaryDirectory(prefix="rag-postgres-") as folder:
        yield Path(folder) / "data"


def start_postgres(pgdata: Path) -> Any:
    """A server on `pgdata` (made on first use, started again after a stop), stopped when its handle is cleaned up."""
    with warnings.catch_warnings():  # platformdirs warns, on import, that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        pgserver = pytest.importorskip("pgserver", reason="pgserver (dev extra) runs PostgreSQL without a system install")
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def psycopg_url(server: Any, database: str = "postgres") -> str:
    """pgserver's postgresql:// URI, for SQLAlchemy's psycopg (3) driver."""
    return str(server.get_uri(database)).replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """One server for the module: starting one takes seconds."""
    with server_folder() as pgdata:
        started = start_postgres(pgdata)
        try:
            yield started
        finally:
            started.cleanup()


@pytest.fixture()
def url(server: Any, request: pytest.FixtureRequest) -> str:
    """A database of the test's own, so that no test sees another's records."""
    name = "t_" + request.node.name.removeprefix("test_")[:50]
    server.psql(f"CREATE DATABASE {name};")
    return psycopg_url(server, name)


class Clock:
    def __init__(self, day: int = 1) -> None:
        self.day(day)

    def day(self, day: int) -> None:
        self.now = datetime(2025, 6, day, 9, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def test_records_with_answer_ids_round_trip_filter_and_are_seen_by_another_store(url: str) -> None:
    clock = Clock()
    conversations, store = ConversationStore(ttl_s=10 * 86400, clock=clock), FeedbackStore(url, clock=clock)
    first = conversations.append("chat-1", Turn("How long is the return window?", "45 days [1]."),
                                 sources=["policies/returns.md"], index_version="v1")
    second = conversations.append("chat-1", Turn("and for electronics?", "10% fee [1]."),
                                  standalone="Electronics returns?", decision="answer", index_version="v1")
    rate_answer(conversations, store, first.answer_id, rating="up")
    clock.day(2)
    rate_answer(conversations, store, second.answer_id, rating="down", comment="It is 15%.", correction="A 15% fee.")
    other = FeedbackStore(url)  # another worker, or `rag eval from-feedback`
    up, down = other.list()
    assert (up.answer_id, up.rating, up.created, up.sources) == (first.answer_id, "up", "2025-06-01T09:00:00+00:00",
                                                                 ("policies/returns.md",))
    assert (down.answer_id, down.turn, down.standalone, down.correction) == (second.answer_id, 2,
                                                                             "Electronics returns?", "A 15% fee.")
    assert down.earlier == (Turn("How long is the return window?", "45 days [1]."),) and down.id > up.id
    assert other.list(since=date(2025, 6, 2)) == [down] == other.list(rating="down")
    assert other.list(since=datetime(2025, 6, 2, 9, 0, 1)) == []
    store.close()
    other.close()


def test_writers_in_threads_through_two_stores_lose_nothing(url: str) -> None:
    stores = [FeedbackStore(url), FeedbackStore(url)]
    turn = RecordedTurn(1, "q", "a", "", "answer", (), "v1", "f" * 32)

    def write(worker: int) -> None:
        for i in range(10):
            stores[worker % 2].add(conversation_id=f"c{worker}", turn=turn, earlier=[], rating="down",
                                   comment=f"{worker}.{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = stores[0].list()
    for store in stores:
        store.close()
    assert len({r.id for r in records}) == 40
    assert sorted(r.comment for r in records) == sorted(f"{n}.{i}" for n in range(4) for i in range(10))


def test_nothing_listening_is_a_config_error_naming_the_setting_without_the_password() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"cannot open the feedback store at postgresql\+psycopg://rag:\*\*\*@"
                                          rf"127.0.0.1:{port}/rag \(.*refused.*\): check RAG_FEEDBACK__URL") as refused:
        FeedbackStore(f"postgresql+psycopg://rag:s3cret@127.0.0.1:{port}/rag")
    assert "s3cret" not in str(refused.value)


def test_a_server_that_goes_down_refuses_writes_clearly_and_the_store_recovers_when_it_is_back() -> None:
    """Its own server, since this one is stopped and started again."""
    turn = RecordedTurn(1, "q", "a", "", "answer", (), "v1", "e" * 32)
    with server_folder() as pgdata:
        store = FeedbackStore(psycopg_url(start_postgres(pgdata)))
        try:
            kept = store.add(conversation_id="c", turn=turn, earlier=[], rating="up")
            start_postgres(pgdata).cleanup()  # the running server's handle: stops it
            with pytest.raises(StorageError, match=r"cannot store the feedback at postgresql\+psycopg://.* \(.*\): "
                                                   r"check that the database is up, .*records stored before are intact"):
                store.add(conversation_id="c", turn=turn, earlier=[], rating="down")
            start_postgres(pgdata)  # back up: the same store reconnects, no restart
            again = store.add(conversation_id="c", turn=turn, earlier=[], rating="down")
            assert [(r.id, r.rating) for r in store.list()] == [(kept, "up"), (again, "down")]
        finally:
            store.close()
            start_postgres(pgdata).cleanup()
