"""A running API follows the index folder: new versions and rollbacks are served with no restart
and no failed request, a broken version is refused, and an index that appears later is picked up."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.api.limits import RateLimiter
from rag.factory import build_runtime
from rag.index import IndexFiles, IndexFolder
from rag.testing import ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.conftest import TINY_CORPUS, make_job, roots_of, running, write_corpus


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def version_served(url: str) -> str | None:
    body = httpx.get(f"{url}/ready").json()
    return body.get("index_version")


class Load:
    """Threads asking questions non-stop; records every status code and index version seen."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    reply = client.post(f"{self.url}/ask", json={"question": "How long is the return window?"})
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                self.statuses[reply.status_code] += 1
                if reply.status_code == 200:
                    self.versions.append(reply.json()["index_version"])
                else:
                    self.errors.append(reply.text)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_new_versions_and_rollbacks_are_served_without_a_failed_request(
    tmp_path: Path, llm_server: ScriptedOpenAIServer
) -> None:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    index = tmp_path / "index"
    first = make_job(index).run(roots_of(corpus)).version
    settings = settings_for(index, llm_server.base_url)
    unlimited = RateLimiter(rate_per_minute=1e9, burst=10**6)  # the load comes from one address: no 429s here
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off(), limiter=unlimited,
                            reload_interval_s=0.1)) as url, Load(url) as load:
        wait_for(lambda: len(load.versions) >= 20)
        new_policy = "# Returns policy\n\n## Return window\n\nThe return window is 60 days long.\n"
        (corpus / "policies" / "returns.md").write_text(new_policy)
        second = make_job(index).run(roots_of(corpus)).version
        wait_for(lambda: version_served(url) == second)
        seen = len(load.versions)
        wait_for(lambda: len(load.versions) >= seen + 20)
        reply = httpx.post(f"{url}/ask", json={"question": "How long is the return window?"}).json()
        assert "60 days" in reply["answer"] and reply["index_version"] == second
        IndexFolder(index).switch(first)  # what `rag index rollback` does, under its lock
        wait_for(lambda: version_served(url) == first)
        seen = len(load.versions)
        wait_for(lambda: len(load.versions) >= seen + 20)
    assert load.errors == [] and set(load.statuses) == {200}
    assert set(load.versions) == {first, second}
    assert load.versions.index(second) < len(load.versions) - 1 - load.versions[::-1].index(first)


def test_a_broken_version_is_refused_and_the_old_one_kept(tmp_path: Path, llm_server: ScriptedOpenAIServer) -> None:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    index = tmp_path / "index"
    first = make_job(index).run(roots_of(corpus)).version
    (corpus / "docs" / "new.md").write_text("# New\n\nA new page.\n")
    second = make_job(index).run(roots_of(corpus)).version
    folder = IndexFolder(index)
    folder.switch(first)
    IndexFiles(folder.path_of(second)).vectors.write_bytes(b"garbage")
    settings = settings_for(index, llm_server.base_url)
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off(), reload_interval_s=0.1)) as url:
        folder.switch(second)
        wait_for(lambda: httpx.get(f"{url}/ready").json().get("reload_error") is not None)
        health = httpx.get(f"{url}/ready").json()
        assert health["index_version"] == first and second in health["reload_error"]
        assert httpx.post(f"{url}/ask", json={"question": "return window?"}).status_code == 200


def test_an_index_created_after_start_up_is_picked_up(tmp_path: Path, llm_server: ScriptedOpenAIServer) -> None:
    index = tmp_path / "index"
    settings = settings_for(index, llm_server.base_url)
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off(), reload_interval_s=0.1)) as url:
        before = httpx.post(f"{url}/ask", json={"question": "return window?"})
        assert before.status_code == 503 and "rag ingest" in before.json()["error"]["message"]
        version = make_job(index).run(roots_of(write_corpus(tmp_path / "corpus", TINY_CORPUS))).version
        wait_for(lambda: version_served(url) == version)
        assert httpx.post(f"{url}/ask", json={"question": "return window?"}).status_code == 200
