"""Serper and retrieval-server backends against real HTTP servers on 127.0.0.1 that speak their JSON.

The servers are scripted: each reply can be a failure (429 + Retry-After, 500, 401, a reply slower than
the client timeout) before the normal answer, and every request they receive is recorded.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from matbench.errors import ConfigError
from matbench.tools.search import (
    CachedSearch,
    RetryPolicy,
    SearchCacheMiss,
    SearchError,
    SearchHit,
    format_search_error,
    get_search_backend,
)
from matbench.tools.search.retriever import RetrieverSearch
from matbench.tools.search.serper import SerperSearch

KEY = "sk-test-7f3a9c0e5b1d"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)

DOCS = [
    {
        "id": "11",
        "contents": '"Ed Wood (film)"\nEd Wood is a 1994 American biographical film directed by Tim Burton.',
    },
    {
        "id": "12",
        "contents": '"Scott Derrickson"\nScott Derrickson is an American director and screenwriter.',
    },
    {"id": "13", "contents": '"Tim Burton"\nTim Burton is an American filmmaker.'},
    {"id": "14", "contents": '"Laleli Mosque"\nThe Laleli Mosque is an Ottoman imperial mosque in Istanbul.'},
]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: the normal answer for the request
    delay: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeServer:
    """ThreadingHTTPServer on an ephemeral loopback port; ``script`` replies are used first, in order."""

    def __init__(self, kind: str):
        self.kind = kind
        self.script: list[Reply] = []
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                with server.lock:
                    server.requests.append(
                        Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = server.script.pop(0) if server.script else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if reply.body is not None else server.answer(self.path, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if self.kind == "serper":
            assert path == "/search"
            q, num = body["q"], body.get("num", 10)
            organic = [
                {
                    "title": f"{q} result {i}",
                    "link": f"https://example.org/{i}?q={q.replace(' ', '+')}",
                    "snippet": f"Snippet {i} about {q}.",
                    "position": i,
                }
                for i in range(1, num + 1)
            ]
            return {
                "searchParameters": {"q": q, "type": "search", "num": num, "engine": "google"},
                "organic": organic,
                "peopleAlsoAsk": [{"question": "not a hit"}],
                "credits": 1,
            }
        assert path == "/retrieve"
        result = []
        for q in body["queries"]:
            words = set(re.findall(r"\w+", q.lower()))
            ranked = sorted(DOCS, key=lambda d: -len(words & set(re.findall(r"\w+", d["contents"].lower()))))
            top = ranked[: body["topk"]]
            if body.get("return_scores"):
                result.append([{"document": d, "score": float(len(top) - i)} for i, d in enumerate(top)])
            else:
                result.append(top)
        return {"result": result}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serper_server() -> Iterator[FakeServer]:
    s = FakeServer("serper")
    yield s
    s.close()


@pytest.fixture
def retriever_server() -> Iterator[FakeServer]:
    s = FakeServer("retriever")
    yield s
    s.close()


def serper(server: FakeServer, **kw: Any) -> SerperSearch:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout", 5.0)
    return SerperSearch(api_key=KEY, base_url=server.url, **kw)


# --------------------------------------------------------------------------------------------------
# serper


def test_serper_request_and_hits(serper_server: FakeServer) -> None:
    with serper(serper_server, gl="us", hl="en") as s:
        hits = s.search("Ed Wood director", 4)
    assert hits == [
        SearchHit(
            title=f"Ed Wood director result {i}",
            url=f"https://example.org/{i}?q=Ed+Wood+director",
            snippet=f"Snippet {i} about Ed Wood director.",
        )
        for i in range(1, 5)
    ]
    (req,) = serper_server.requests
    assert req.path == "/search"
    assert req.headers["x-api-key"] == KEY
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == {"q": "Ed Wood director", "num": 4, "gl": "us", "hl": "en"}


def test_serper_keeps_k_organic_hits_and_tolerates_missing_fields(serper_server: FakeServer) -> None:
    organic = [
        {"title": "A", "link": "https://a", "snippet": "sa", "position": 1},
        {"title": "B", "link": "https://b", "position": 2},  # Google sometimes has no snippet
        {"title": "C", "link": "https://c", "snippet": "sc", "position": 3},
    ]
    serper_server.script = [Reply(body={"organic": organic}), Reply(body={"searchParameters": {}})]
    with serper(serper_server) as s:
        assert s.search("q", 2) == [SearchHit("A", "https://a", "sa"), SearchHit("B", "https://b", "")]
        assert s.search("nothing", 4) == []  # no organic results at all


def test_serper_missing_key_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"^SERPER_API_KEY is not set: .*--search local"):
        get_search_backend("serper")
    monkeypatch.setenv("SERPER_API_KEY", "   ")
    with pytest.raises(ConfigError, match="SERPER_API_KEY is not set"):
        SerperSearch()


def test_serper_env_key_and_base_url(serper_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERPER_API_KEY", KEY)
    monkeypatch.setenv("SERPER_BASE_URL", serper_server.url + "/")
    with get_search_backend("serper", retry=FAST) as s:
        assert s.params() == {"endpoint": serper_server.url + "/search", "gl": None, "hl": None}
        assert len(s.search("x", 1)) == 1
    assert serper_server.requests[0].headers["x-api-key"] == KEY


def test_429_with_retry_after_is_honoured(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(429, {"Retry-After": "0.3"}, {"message": "Too many requests"})]
    with serper(serper_server) as s:
        t0 = time.perf_counter()
        hits = s.search("rate limited", 2)
        elapsed = time.perf_counter() - t0
    assert len(hits) == 2
    assert len(serper_server.requests) == 2
    assert elapsed >= 0.3  # the policy alone would have waited ~0.01 s


def test_500_then_success(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(500, body={"error": "boom"}), Reply(503, body={"error": "busy"})]
    with serper(serper_server) as s:
        assert len(s.search("flaky", 3)) == 3
    assert len(serper_server.requests) == 3


def test_persistent_500_raises_search_error(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(500, body={"error": "down"}) for _ in range(5)]
    with serper(serper_server) as s, pytest.raises(SearchError) as ei:
        s.search("down", 3)
    assert len(serper_server.requests) == 3  # FAST.max_attempts
    assert ei.value.status == 500 and ei.value.attempts == 3 and ei.value.retryable
    assert "failed after 3 attempts" in str(ei.value) and "HTTP 500" in str(ei.value)
    assert format_search_error(ei.value).startswith("Search failed: serper search failed after 3 attempts")


def test_401_is_not_retried_and_says_check_the_key(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(401, body={"message": f"Unauthorized key {KEY}", "statusCode": 401})]
    with serper(serper_server) as s, pytest.raises(SearchError) as ei:
        s.search("secret", 3)
    assert len(serper_server.requests) == 1
    assert ei.value.status == 401 and not ei.value.retryable
    msg = str(ei.value)
    assert "HTTP 401" in msg and "check SERPER_API_KEY" in msg
    assert KEY not in msg  # a server that echoes the key does not leak it into the transcript


def test_timeout_is_retried_then_fails(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(delay=1.0), Reply(delay=1.0)]
    with serper(serper_server, timeout=0.2, retry=RetryPolicy(max_attempts=2, base_delay=0.01)) as s:
        t0 = time.perf_counter()
        with pytest.raises(SearchError, match=r"failed after 2 attempts: timed out after 0\.2s"):
            s.search("slow", 3)
        assert time.perf_counter() - t0 < 0.9
    assert len(serper_server.requests) == 2


def test_timeout_then_success(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(delay=1.0)]
    with serper(serper_server, timeout=0.2) as s:
        assert len(s.search("slow once", 1)) == 1


def test_connection_refused_is_a_network_error(serper_server: FakeServer) -> None:
    url = serper_server.url
    serper_server.close()
    with SerperSearch(api_key=KEY, base_url=url, retry=RetryPolicy(max_attempts=2, base_delay=0.01)) as s:
        with pytest.raises(SearchError, match="failed after 2 attempts: network error"):
            s.search("nobody home", 1)


def test_non_json_reply_is_an_error(serper_server: FakeServer) -> None:
    serper_server.script = [Reply(body="not an object")]
    with serper(serper_server) as s, pytest.raises(SearchError, match="unexpected reply"):
        s.search("q", 1)


def test_key_never_reaches_logs_params_repr_or_cache(
    serper_server: FakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx2/httpcore2 debug logging included
    serper_server.script = [Reply(429, {"Retry-After": "0"}), Reply(500)]
    db = tmp_path / "search.sqlite"
    with CachedSearch(serper(serper_server), db) as cached:
        cached.search("who directed Ed Wood", 4)
        assert KEY not in repr(cached.backend) and KEY not in json.dumps(cached.params())
        assert KEY not in cached.describe()
    assert caplog.records, "expected the retry to be logged"
    assert KEY not in caplog.text
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes(), f


# --------------------------------------------------------------------------------------------------
# retriever (Search-R1 / FlashRAG retrieval_server.py)


@pytest.mark.parametrize("return_scores", [True, False])
def test_retriever_batch_and_shapes(retriever_server: FakeServer, return_scores: bool) -> None:
    with RetrieverSearch(retriever_server.url, return_scores=return_scores, retry=FAST) as r:
        out = r.search_batch(["Ed Wood Tim Burton film", "Laleli Mosque Istanbul"], 2)
    (req,) = retriever_server.requests
    assert req.path == "/retrieve"
    assert req.body == {
        "queries": ["Ed Wood Tim Burton film", "Laleli Mosque Istanbul"],
        "topk": 2,
        "return_scores": return_scores,
    }
    assert out[0][0] == SearchHit(
        title="Ed Wood (film)",
        url="retriever://11",
        snippet="Ed Wood is a 1994 American biographical film directed by Tim Burton.",
    )
    assert [h.title for h in out[1]][:1] == ["Laleli Mosque"]
    assert all(len(x) == 2 for x in out)


def test_retriever_spec_env_and_errors(retriever_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with get_search_backend(f"retriever:{retriever_server.url}/retrieve", retry=FAST) as r:
        assert r.params() == {"url": retriever_server.url}
        assert r.search("Scott Derrickson", 1)[0].title == "Scott Derrickson"
    monkeypatch.setenv("MATBENCH_RETRIEVER_URL", retriever_server.url)
    with get_search_backend("retriever") as r:
        assert r.url == retriever_server.url
    monkeypatch.delenv("MATBENCH_RETRIEVER_URL")
    with pytest.raises(ConfigError, match="MATBENCH_RETRIEVER_URL"):
        get_search_backend("retriever")
    retriever_server.script = [Reply(body={"result": []})]
    with (
        RetrieverSearch(retriever_server.url, retry=FAST) as r,
        pytest.raises(SearchError, match="unexpected"),
    ):
        r.search("x", 1)


def test_retriever_retries_5xx(retriever_server: FakeServer) -> None:
    retriever_server.script = [Reply(502), Reply(429, {"Retry-After": "0"})]
    with RetrieverSearch(retriever_server.url, retry=FAST) as r:
        assert r.search("Tim Burton filmmaker", 1)[0].title == "Tim Burton"
    assert len(retriever_server.requests) == 3


# --------------------------------------------------------------------------------------------------
# the cache in front of a live server


def test_cache_replays_identically_after_the_server_is_gone(
    serper_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "c.sqlite"
    queries = ["Ed Wood", "Scott Derrickson nationality", "Ed Wood"]
    with CachedSearch(serper(serper_server), db) as live:
        first = [live.search(q, 4) for q in queries]
        assert live.stats() == {"hits": 1, "misses": 2, "errors": 0}
    assert len(serper_server.requests) == 2
    serper_server.close()
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    monkeypatch.delenv("SERPER_BASE_URL", raising=False)
    offline = get_search_backend("serper", offline=True, retry=FAST)  # replay needs no key...
    assert offline.params()["endpoint"] == "https://google.serper.dev/search"
    with pytest.raises(SearchError, match="SERPER_API_KEY is not set"):
        offline.search("Ed Wood", 4)  # ...but a live search does
    replay_backend = SerperSearch(base_url=serper_server.url, offline=True, retry=FAST)
    with CachedSearch(replay_backend, db, mode="read") as replay:
        assert [replay.search(q, 4) for q in queries] == first
        assert replay.stats() == {"hits": 3, "misses": 0, "errors": 0}
        with pytest.raises(SearchCacheMiss, match="not in the search cache"):
            replay.search("Ed Wood", 5)  # another k is another search
        with pytest.raises(SearchCacheMiss):
            replay.search("ed wood", 4)  # the exact string is the key
        assert replay.stats() == {"hits": 3, "misses": 2, "errors": 0}


def test_failures_are_counted_and_never_cached(serper_server: FakeServer, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    serper_server.script = [Reply(500), Reply(500), Reply(500)]
    with CachedSearch(serper(serper_server), db) as cached:
        with pytest.raises(SearchError):
            cached.search("q", 2)
        assert cached.stats() == {"hits": 0, "misses": 1, "errors": 1}
        assert len(cached.search("q", 2)) == 2  # retried live, not a cached failure
        assert cached.stats() == {"hits": 0, "misses": 2, "errors": 1}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM searches").fetchone() == (1,)


def test_cache_key_tracks_endpoint_not_key(serper_server: FakeServer, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with CachedSearch(serper(serper_server), db) as a:
        a.search("q", 3)
    other_key = SerperSearch(api_key="another-key", base_url=serper_server.url, retry=FAST)
    with CachedSearch(other_key, db) as b:
        b.search("q", 3)
        assert b.stats()["hits"] == 1  # same endpoint, same results: the key is not part of the identity
    with CachedSearch(serper(serper_server, gl="de"), db) as c:
        c.search("q", 3)
        assert c.stats()["misses"] == 1  # another locale is another result list
    assert len(serper_server.requests) == 2


def test_sixteen_threads_share_one_cache_and_fetch_each_query_once(
    serper_server: FakeServer, tmp_path: Path
) -> None:
    db = tmp_path / "c.sqlite"
    queries = [f"query {i}" for i in range(12)]
    serper_server.script = [Reply(delay=0.05) for _ in range(4)]  # slow first replies widen the race window
    cached = CachedSearch(serper(serper_server), db)
    results: dict[tuple[int, int], list[SearchHit]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for j in range(len(queries)):
                q = queries[(t + j) % len(queries)]
                results[(t, j)] = cached.search(q, 3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cached.close()
    assert not errors
    assert sorted(r.body["q"] for r in serper_server.requests) == sorted(queries)  # single flight
    stats = cached.stats()
    assert stats["misses"] == len(queries) and stats["hits"] == 16 * len(queries) - len(queries)
    for (t, j), hits in results.items():
        q = queries[(t + j) % len(queries)]
        assert [h.snippet for h in hits] == [f"Snippet {i} about {q}." for i in (1, 2, 3)]


def test_cached_batch_fetches_only_misses(retriever_server: FakeServer, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with CachedSearch(RetrieverSearch(retriever_server.url, retry=FAST), db) as cached:
        a = cached.search_batch(["Tim Burton", "Laleli Mosque"], 2)
        b = cached.search_batch(["Laleli Mosque", "Scott Derrickson", "Tim Burton", "Scott Derrickson"], 2)
        assert b[0] == a[1] and b[2] == a[0] and b[1] == b[3]
        assert cached.stats() == {"hits": 3, "misses": 2 + 1, "errors": 0}
        assert cached.search("Scott Derrickson", 2) == b[1]
        assert cached.stats() == {"hits": 4, "misses": 3, "errors": 0}
    assert [r.body["queries"] for r in retriever_server.requests] == [
        ["Tim Burton", "Laleli Mosque"],
        ["Scott Derrickson"],
    ]
