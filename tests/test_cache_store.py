"""The caches pay for themselves: one SQLite connection per process and file, stores that never wait on the
file (batched by a writer thread), no search cache by default for a local BM25 index, and
`matbench cache info|prune` to see and trim them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from runtime_helpers import run_cli as in_process_cli

from matbench.caches.db import CacheDB
from matbench.tools.search import CachedSearch, SearchBackend, SearchHit

ROOT = Path(__file__).resolve().parents[1]


class Echo(SearchBackend):
    name = "echo"

    def __init__(self):
        self.calls = 0

    def search(self, query: str, k: int) -> list[SearchHit]:
        self.calls += 1
        return [SearchHit(f"t{i}", f"https://x/{i}", f"{query} {i}") for i in range(k)]

    def params(self) -> dict:
        return {"v": 1}


class Local(Echo):
    name = "localish"
    local_deterministic = True


@pytest.fixture()
def connects(monkeypatch):
    """Count sqlite3 connections and COMMITs made by the code under test."""
    counts = {"connect": 0, "commit": 0}
    real = sqlite3.connect

    def connect(*a, **kw):
        counts["connect"] += 1
        conn = real(*a, **kw)

        def trace(sql: str) -> None:
            if sql.strip().upper() == "COMMIT":
                counts["commit"] += 1

        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    return counts


def test_one_connection_per_process_and_batched_commits(tmp_path, connects):
    path = tmp_path / "search.sqlite"
    a, b = CachedSearch(Echo(), path, mode="readwrite"), CachedSearch(Echo(), path, mode="readwrite")

    def work(cache: CachedSearch, offset: int) -> None:
        for i in range(100):
            cache.search(f"q{offset + i % 50}", 3)

    threads = [threading.Thread(target=work, args=(c, o)) for c, o in ((a, 0), (a, 0), (b, 100), (b, 100))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert connects["connect"] == 1  # four threads, two cache objects, one file: one connection
    assert a.backend.calls == b.backend.calls == 50  # each query fetched once, then found in the cache
    a.close()
    b.close()
    assert connects["commit"] <= 10  # 100 rows stored in a few batched transactions, not one commit each
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM searches").fetchone()[0] == 100


def test_a_store_never_waits_on_a_locked_file(tmp_path):
    path = tmp_path / "search.sqlite"
    cache = CachedSearch(Echo(), path, mode="readwrite")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    try:
        start = time.perf_counter()
        hits, cached = cache.search_with_source("held", 2)
        assert time.perf_counter() - start < 0.5 and not cached
        assert cache.search_with_source("held", 2) == (hits, True)  # visible at once, before the commit
    finally:
        time.sleep(0.3)
        other.execute("ROLLBACK")
        other.close()
    cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT query FROM searches").fetchall() == [("held",)]


def test_rows_reach_the_file_when_a_process_exits_without_closing(tmp_path):
    path = tmp_path / "search.sqlite"
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_cache_store import Echo;"
        "from matbench.tools.search import CachedSearch;"
        f"c = CachedSearch(Echo(), {str(path)!r}, mode='readwrite'); [c.search(f'q{{i}}', 1) for i in range(7)]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM searches").fetchone()[0] == 7


def test_response_cache_shares_the_process_connection(tmp_path, connects):
    db1 = CacheDB.open(tmp_path / "responses.sqlite", "CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, v)")
    db2 = CacheDB.open(tmp_path / "responses.sqlite", "CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, v)")
    assert db1 is db2 and connects["connect"] == 1
    db1.put("t", "a", {"key": "a", "v": 1})
    assert db2.get("t", "a", "v") == (1,)
    db1.close()
    db2.put("t", "b", {"key": "b", "v": 2})  # still open for its other user
    db2.close()
    with sqlite3.connect(tmp_path / "responses.sqlite") as conn:
        assert conn.execute("SELECT key, v FROM t ORDER BY key").fetchall() == [("a", 1), ("b", 2)]


def test_auto_mode_leaves_local_deterministic_backends_uncached(tmp_path):
    local = CachedSearch(Local(), tmp_path / "s.sqlite")  # the default mode is auto
    remote = CachedSearch(Echo(), tmp_path / "s.sqlite")
    assert local.mode == "off" and remote.mode == "readwrite"
    local.search("a", 1)
    local.search("a", 1)
    assert local.backend.calls == 2 and local.stats() == {"hits": 0, "misses": 2, "errors": 0}
    assert CachedSearch(Local(), tmp_path / "s.sqlite", mode="readwrite").mode == "readwrite"  # on request
    local.close()
    remote.close()


def test_search_command_on_a_local_index_writes_no_cache_by_default(fixtures_dir, tmp_path):
    env = {**os.environ, "MATBENCH_CACHE_DIR": str(tmp_path / "cache")}
    corpus = fixtures_dir / "corpora" / "hotpotqa-dev-first100-paragraphs.jsonl"

    def run(*args: str) -> subprocess.CompletedProcess:
        return in_process_cli(list(args), env=env)

    assert run("index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--no-progress").returncode == 0
    res = run("search", "Laleli Mosque", "--search", f"local:{tmp_path / 'idx'}")
    assert res.returncode == 0 and "Laleli Mosque" in res.stdout
    assert not (tmp_path / "cache" / "search.sqlite").exists()


def _fill(path: Path, n: int, *, age_s: float = 0.0, payload: int = 2000) -> None:
    cache = CachedSearch(Echo(), path, mode="readwrite")
    for i in range(n):
        cache.search(f"{'x' * payload} {i}", 1)
    cache.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE searches SET created_at = created_at - ? WHERE rowid % 2 = 0", (age_s,))


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return in_process_cli(list(args), env=env)


def test_cache_info_and_prune_by_age_and_size(tmp_path):
    cdir = tmp_path / "cache"
    _fill(cdir / "search.sqlite", 400, age_s=10 * 86400)
    db = CacheDB.open(cdir / "responses.sqlite", "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, "
                      "model TEXT NOT NULL, output TEXT NOT NULL, created REAL NOT NULL)")
    db.put("responses", "k", {"key": "k", "model": "gpt-4o", "output": "{}", "created": time.time()})
    db.close()
    res = run_cli("cache", "info", "--cache-dir", str(cdir))
    assert res.returncode == 0, res.stderr
    assert f"{cdir / 'search.sqlite'}: " in res.stdout and "400 rows" in res.stdout and "echo" in res.stdout
    assert "responses.sqlite" in res.stdout and "gpt-4o" in res.stdout and "oldest 10.0 d ago" in res.stdout

    res = run_cli("cache", "prune", "--older-than", "7d", "--cache-dir", str(cdir))
    assert res.returncode == 0, res.stderr
    assert "200 of 400 rows removed" in res.stdout
    with sqlite3.connect(cdir / "search.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM searches").fetchone()[0] == 200

    size = (cdir / "search.sqlite").stat().st_size
    assert size > 300_000
    res = run_cli("cache", "prune", "--max-size", "150K", "--cache-dir", str(cdir))
    assert res.returncode == 0, res.stderr
    assert (cdir / "search.sqlite").stat().st_size <= 150 * 1024
    with sqlite3.connect(cdir / "search.sqlite") as conn:
        kept = [int(q.split()[-1]) for (q,) in conn.execute("SELECT query FROM searches")]
    assert kept and min(kept) > 200  # the newest rows are the ones kept


def test_cache_prune_bad_input_is_one_line(tmp_path):
    res = run_cli("cache", "prune", "--older-than", "soon", "--cache-dir", str(tmp_path))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "--older-than 'soon'" in res.stderr
    res = run_cli("cache", "prune", "--cache-dir", str(tmp_path))
    assert res.returncode == 2 and "--older-than D and/or --max-size S" in res.stderr
