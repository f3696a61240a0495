"""The SQLite search cache in front of the real local backend: modes, persistence, threads, processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from matbench.errors import ConfigError
from matbench.tools.search import CachedSearch, SearchCacheMiss, SearchError, format_search_error
from matbench.tools.search.cache import cache_key, default_cache_path
from matbench.tools.search.local import LocalSearch, build_index

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Were Scott Derrickson and Ed Wood of the same nationality?",
    "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?",
    "Are the Laleli Mosque and Esma Sultan Mansion located in the same neighborhood?",
    "The director of the romantic comedy Big Stone Gap is based in what New York city?",
]


@pytest.fixture(scope="module")
def index_dir(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cache-idx") / "hotpot"
    build_index(fixtures_dir / "corpora/hotpotqa-dev-first100-paragraphs.jsonl", out, show_progress=False)
    return out


@pytest.fixture
def local(index_dir: Path) -> LocalSearch:
    s = LocalSearch(index_dir)
    yield s
    s.close()


def test_hits_misses_and_persistence_across_instances(local: LocalSearch, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    c1 = CachedSearch(local, db, mode="readwrite")
    first = [c1.search(q, 4) for q in QUESTIONS]
    again = [c1.search(q, 4) for q in QUESTIONS]
    assert first == again == [local.search(q, 4) for q in QUESTIONS]
    assert c1.stats() == {"hits": 4, "misses": 4, "errors": 0}
    assert c1.search_with_source(QUESTIONS[0], 4) == (first[0], True)
    assert c1.search_with_source(QUESTIONS[0], 3) == (first[0][:3], False)
    assert c1.stats() == {"hits": 5, "misses": 5, "errors": 0}
    c1._db.flush()  # committed by the writer thread without close() (at exit it flushes too)
    c2 = CachedSearch(LocalSearch(local.index_dir), db, mode="read")
    assert [c2.search(q, 4) for q in QUESTIONS] == first
    assert c2.stats() == {"hits": 4, "misses": 0, "errors": 0}
    c2.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT backend, params, k, query, hits FROM searches ORDER BY query").fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert len(rows) == 5  # four questions at k=4, one at k=3
    backend, params, k, query, hits = rows[0]
    assert (backend, json.loads(params), k) == ("local", local.params(), 4)
    assert json.loads(hits) == [h.to_dict() for h in local.search(query, 4)]


def test_read_mode_misses_are_errors_and_write_nothing(local: LocalSearch, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    CachedSearch(local, db, mode="readwrite").search(QUESTIONS[0], 4)
    ro = CachedSearch(local, db, mode="read")
    with pytest.raises(SearchCacheMiss) as ei:
        ro.search(QUESTIONS[1], 4)
    assert isinstance(ei.value, SearchError)
    assert "not in the search cache" in format_search_error(ei.value)
    with pytest.raises(SearchCacheMiss, match="1 of 2 queries"):
        ro.search_batch([QUESTIONS[0], QUESTIONS[1]], 4)
    ro.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM searches").fetchone() == (1,)
    with pytest.raises(ConfigError, match="does not exist"):
        CachedSearch(local, tmp_path / "never-written.sqlite", mode="read")


def test_off_mode_bypasses_the_cache(local: LocalSearch, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    off = CachedSearch(local, db, mode="off")
    assert off.search(QUESTIONS[0], 2) == local.search(QUESTIONS[0], 2)
    assert off.search(QUESTIONS[0], 2) == local.search(QUESTIONS[0], 2)
    assert off.stats() == {"hits": 0, "misses": 2, "errors": 0}
    assert not db.exists()
    with pytest.raises(ConfigError, match="unknown search cache mode"):
        CachedSearch(local, db, mode="sometimes")  # type: ignore[arg-type]


def test_key_is_backend_params_k_and_exact_query(local: LocalSearch) -> None:
    base = cache_key("local", local.params(), 4, "q")
    assert base != cache_key("local", local.params(), 5, "q")
    assert base != cache_key("local", local.params(), 4, "q ")
    assert base != cache_key("local", {"index": "other"}, 4, "q")
    assert base != cache_key("serper", local.params(), 4, "q")
    assert base == cache_key("local", dict(local.params()), 4, "q")


def test_default_location_honours_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local: LocalSearch
) -> None:
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path / "mc"))
    assert default_cache_path() == tmp_path / "mc" / "search.sqlite"
    c = CachedSearch(local, mode="readwrite")
    c.search(QUESTIONS[0], 1)
    c.close()
    assert (tmp_path / "mc" / "search.sqlite").is_file()


def test_sixteen_threads_over_the_local_backend(local: LocalSearch, tmp_path: Path) -> None:
    cached = CachedSearch(local, tmp_path / "s.sqlite", mode="readwrite")
    expected = {q: local.search(q, 4) for q in QUESTIONS}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(20):
                q = QUESTIONS[(t + i) % len(QUESTIONS)]
                assert cached.search(q, 4) == expected[q]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:1]
    assert cached.stats() == {"hits": 16 * 20 - 4, "misses": 4, "errors": 0}
    cached.close()


WORKER = r"""
import sys
from matbench.tools.search import CachedSearch
from matbench.tools.search.local import LocalSearch
idx, db, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
qs = [f"film director number {i}" for i in range(40)]
c = CachedSearch(LocalSearch(idx), db, mode="readwrite")
for i in range(len(qs)):
    c.search(qs[(i + offset) % len(qs)], 3)
s = c.stats()
print(s["hits"], s["misses"], s["errors"])
"""


def test_several_processes_share_one_cache_file(index_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index_dir), str(db), str(7 * p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for p in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    counts = [tuple(map(int, o.split())) for o, _ in outs]
    assert all(h + m == 40 and e == 0 for h, m, e in counts)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(DISTINCT query), count(*) FROM searches").fetchone() == (40, 40)


@pytest.mark.parametrize("garbage", ["{torn", '{"a": 1}', "[1, 2]", "null"])
def test_a_corrupt_row_is_searched_again_and_replaced(local: LocalSearch, tmp_path: Path, garbage: str) -> None:
    """#20.7: a corrupt row is a miss (the backend answers, the row is replaced), never an exception."""
    import sqlite3

    db = tmp_path / "s.sqlite"
    first = CachedSearch(local, db, mode="readwrite")
    expected = first.search(QUESTIONS[0], 2)
    assert first._db is not None
    first._db.flush()  # committed (close() would close the shared backend too)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE searches SET hits = ?", (garbage,))
    again = CachedSearch(local, db, mode="readwrite")
    assert again.search(QUESTIONS[0], 2) == expected
    assert again.stats() == {"hits": 0, "misses": 1, "errors": 0}
    again._db.flush()
    assert again.search_with_source(QUESTIONS[0], 2) == (expected, True)  # the row was replaced
