"""The local BM25 backend on real corpora: retrieval quality, parity with bm25s, corpus errors, threads."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from matbench.errors import ConfigError, InputError
from matbench.tools.search import SearchHit, get_search_backend
from matbench.tools.search.local import (
    LocalSearch,
    TokenizerSettings,
    build_index,
    ensure_corpus_index,
    iter_passages,
    make_tokenizer,
    read_meta,
)

HOTPOT_CORPUS = "corpora/hotpotqa-dev-first100-paragraphs.jsonl"
HOTPOT_QUESTIONS = "multihop/hotpotqa/dev-first100-with-titles.jsonl"


@pytest.fixture(scope="module")
def hotpot_index(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "hotpot"
    build_index(fixtures_dir / HOTPOT_CORPUS, out, show_progress=False, batch_size=100)
    return out


@pytest.fixture(scope="module")
def hotpot(hotpot_index: Path) -> LocalSearch:
    s = LocalSearch(hotpot_index)
    yield s
    s.close()


def _questions(fixtures_dir: Path) -> list[dict]:
    with open(fixtures_dir / HOTPOT_QUESTIONS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_supporting_title_recall_at_5(hotpot: LocalSearch, fixtures_dir: Path) -> None:
    rows = _questions(fixtures_dir)
    assert len(rows) == 100
    found = total = 0
    for row in rows:
        titles = {h.title for h in hotpot.search(row["question"], 5)}
        for t in row["metadata"]["supporting_titles"]:
            total += 1
            found += t in titles
    recall = found / total
    print(f"\nhotpotqa dev first100: supporting-title recall@5 = {recall:.3f} ({found}/{total})")
    assert recall >= 0.65, recall


def test_hits_are_title_text_and_passage_id(hotpot: LocalSearch, fixtures_dir: Path) -> None:
    hits = hotpot.search("Scott Derrickson American director Sinister", 3)
    assert len(hits) == 3 and all(isinstance(h, SearchHit) for h in hits)
    first = hits[0]
    assert first.title == "Scott Derrickson"
    assert first.url == "local://1"
    assert first.snippet.startswith("Scott Derrickson (born July 16, 1966) is an American director")
    assert not first.snippet.startswith('"')  # the title line is not part of the snippet
    assert first.to_dict() == {"title": first.title, "url": first.url, "snippet": first.snippet}
    # the snippet is the corpus text after the title line, verbatim
    corpus = {p.id: p for p in iter_passages(fixtures_dir / HOTPOT_CORPUS)}
    assert first.snippet == corpus["1"].contents.split("\n", 1)[1]


def test_scores_match_bm25s_own_indexer(hotpot: LocalSearch, fixtures_dir: Path) -> None:
    """The vectorised builder must produce what bm25s.BM25.index produces from the same tokens."""
    import bm25s

    passages = list(iter_passages(fixtures_dir / HOTPOT_CORPUS))
    tok = make_tokenizer(TokenizerSettings())
    ref = bm25s.BM25()
    ref.index(
        tok.tokenize([p.contents for p in passages], show_progress=False, return_as="tuple"),
        show_progress=False,
    )
    (mine,) = hotpot.shards  # 991 passages: one shard
    assert ref.vocab_dict == hotpot.vocab
    np.testing.assert_array_equal(ref.scores["indptr"], mine.indptr)
    np.testing.assert_array_equal(ref.scores["indices"], mine.indices)
    np.testing.assert_allclose(ref.scores["data"], mine.data, rtol=1e-5, atol=1e-6)
    for row in _questions(fixtures_dir)[:25]:
        ids = hotpot.query_ids(row["question"])
        np.testing.assert_allclose(ref.get_scores(ids), mine.scores(ids), rtol=1e-5, atol=1e-6)
        # our exact top-k selection returns what bm25s's retrieve returns (up to the order of ties)
        _, ref_scores = ref.retrieve([ids], k=5, show_progress=False)
        got = hotpot.top_k(ids, 5)
        np.testing.assert_allclose([s for _, s in got], ref_scores[0], rtol=1e-5)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_many_shards_give_exactly_the_single_index_results(
    hotpot: LocalSearch, fixtures_dir: Path, tmp_path: Path
) -> None:
    """Shards scored with the corpus-wide document frequencies: same weights, same top-k, same scores."""
    out = tmp_path / "sharded"
    info = build_index(fixtures_dir / HOTPOT_CORPUS, out, show_progress=False, batch_size=64, shard_size=150)
    sharded = LocalSearch(out)
    try:
        assert len(sharded.shards) == 7 and info.n_passages == 991
        assert [s.start for s in sharded.shards] == [0, 150, 300, 450, 600, 750, 900]
        assert sharded.vocab == hotpot.vocab
        (single,) = hotpot.shards
        for row in _questions(fixtures_dir):
            ids = hotpot.query_ids(row["question"])
            assert sharded.query_ids(row["question"]) == ids
            whole = np.concatenate([s.scores(ids) for s in sharded.shards])
            np.testing.assert_array_equal(whole, single.scores(ids))  # bit-identical
            for k in (1, 5, 50):
                assert sharded.top_k(ids, k) == hotpot.top_k(ids, k)
            assert sharded.search(row["question"], 5) == hotpot.search(row["question"], 5)
        assert read_meta(out)["shards"][1] == {"dir": "shard-00001", "start": 150, "n": 150,
                                              "pairs": read_meta(out)["shards"][1]["pairs"]}
    finally:
        sharded.close()


def test_pruned_top_k_equals_scoring_every_passage(hotpot: LocalSearch, fixtures_dir: Path) -> None:
    """Max-score pruning is exact: the same passages and float32 scores as a dense pass, for real questions,
    repeated words and every k, with and without a floor from other shards."""
    (shard,) = hotpot.shards
    rng = np.random.default_rng(0)
    queries = [row["question"] for row in _questions(fixtures_dir)]
    words = " ".join(queries).split()
    queries += [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(100)]
    queries += ["film film film director", "the of and", "Laleli Laleli Mosque"]
    for q in queries:
        ids = hotpot.query_ids(q)
        for k in (1, 4, 5, 20, 2000):
            dense = shard.top_k_dense(ids, k)
            assert shard.top_k(ids, k) == dense, (q, k)
            if len(dense) == k:
                floor = dense[-1][1]
                assert shard.top_k(ids, k, floor) == [d for d in dense if d[1] >= floor]


def test_meta_records_corpus_and_tokenizer(hotpot_index: Path, fixtures_dir: Path) -> None:
    meta = read_meta(hotpot_index)
    assert meta["n_passages"] == 991
    assert meta["corpus"]["path"] == str((fixtures_dir / HOTPOT_CORPUS).resolve())
    assert meta["corpus"]["size"] == (fixtures_dir / HOTPOT_CORPUS).stat().st_size
    assert meta["tokenizer"]["stopwords"] == "en"
    try:
        import Stemmer  # noqa: F401

        assert meta["tokenizer"]["stemmer"] == "pystemmer:english"
    except ImportError:
        assert meta["tokenizer"]["stemmer"] is None
    assert meta["bm25"] == {"method": "lucene", "k1": 1.5, "b": 0.75}
    assert meta["matbench_version"]
    assert len(meta["fingerprint"]) == 32


def test_index_does_not_need_the_corpus(fixtures_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes((fixtures_dir / HOTPOT_CORPUS).read_bytes())
    build_index(corpus, tmp_path / "idx", show_progress=False)
    corpus.unlink()
    with LocalSearch(tmp_path / "idx") as s:
        assert s.search("Laleli Mosque", 1)[0].title == "Laleli Mosque"


def test_fingerprint_is_content_not_location(fixtures_dir: Path, tmp_path: Path, hotpot: LocalSearch) -> None:
    copy = tmp_path / "elsewhere.jsonl"
    copy.write_bytes((fixtures_dir / HOTPOT_CORPUS).read_bytes())
    info = build_index(copy, tmp_path / "idx2", show_progress=False)
    assert info.fingerprint == hotpot.params()["index"]
    changed = tmp_path / "changed.jsonl"
    changed.write_bytes(
        (fixtures_dir / HOTPOT_CORPUS).read_bytes() + b'{"id": "x", "contents": "\\"X\\"\\ny"}\n'
    )
    assert build_index(changed, tmp_path / "idx3", show_progress=False).fingerprint != info.fingerprint


def test_unknown_words_and_empty_queries_give_no_hits(hotpot: LocalSearch) -> None:
    assert hotpot.search("qwzxv plorkk", 4) == []
    assert hotpot.search("the of and", 4) == []  # stopwords only
    assert hotpot.search("", 4) == []
    with pytest.raises(ValueError):
        hotpot.search("x", 0)


def test_k_larger_than_corpus_and_zero_scores_dropped(tmp_path: Path) -> None:
    corpus = tmp_path / "tiny.jsonl"
    rows = [
        {"id": "a", "contents": '"Alpha"\nAlpha centauri is a star system.'},
        {"id": "b", "contents": '"Beta"\nBeta is a Greek letter.'},
        {"id": "c", "title": "Gamma", "text": "Gamma rays are radiation."},
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    build_index(corpus, tmp_path / "idx", show_progress=False)
    with LocalSearch(tmp_path / "idx") as s:
        hits = s.search("star system gamma", 10)
        assert [h.url for h in hits] == ["local://a", "local://c"]  # b matches nothing and is not padding
        assert hits[1] == SearchHit(title="Gamma", url="local://c", snippet="Gamma rays are radiation.")
        assert s.search_batch(["beta letter", "qqq"], 2) == [
            [SearchHit(title="Beta", url="local://b", snippet="Beta is a Greek letter.")],
            [],
        ]


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "expected a JSON object"),
        ('{"id": "1", "body": "x"}', "missing 'contents'"),
        ('{"id": [1], "contents": "x"}', "'id' must be"),
    ],
)
def test_malformed_corpus_row_names_file_and_line(tmp_path: Path, line: str, expect: str) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"id": "0", "contents": "\\"T\\"\\nfine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as ei:
        build_index(corpus, tmp_path / "idx", show_progress=False)
    assert ei.value.file == str(corpus) and ei.value.row == 3
    assert expect in str(ei.value) and str(corpus) in str(ei.value)
    assert not (tmp_path / "idx").exists()  # nothing half-built is left behind
    assert [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


def test_empty_corpus_and_non_index_out_dir(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no passages"):
        build_index(tmp_path / "empty.jsonl", tmp_path / "idx", show_progress=False)
    other = tmp_path / "notanindex"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    (tmp_path / "one.jsonl").write_text('{"id": 1, "contents": "x y"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not one matbench made"):
        build_index(tmp_path / "one.jsonl", other, show_progress=False)
    assert (other / "precious.txt").read_text() == "keep me"
    first = build_index(tmp_path / "one.jsonl", tmp_path / "idx", show_progress=False)
    with pytest.raises(ConfigError, match="already exists"):
        build_index(tmp_path / "one.jsonl", tmp_path / "idx", show_progress=False, overwrite=False)
    again = build_index(tmp_path / "one.jsonl", tmp_path / "idx", show_progress=False)  # replaces in place
    assert again.fingerprint == first.fingerprint and sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.jsonl",
        "idx",
        "notanindex",
        "one.jsonl",
    ]


def test_spec_forms(
    hotpot_index: Path, fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MATBENCH_LOCAL_INDEX", raising=False)
    with pytest.raises(ConfigError, match="matbench index build"):
        get_search_backend("local")
    monkeypatch.setenv("MATBENCH_LOCAL_INDEX", str(hotpot_index))
    with get_search_backend("local") as s:
        assert s.name == "local" and s.search("Esma Sultan Mansion", 1)[0].title == "Esma Sultan Mansion"
    with get_search_backend(f"local:{hotpot_index}") as s:
        assert s.n_passages == 991
    with pytest.raises(ConfigError, match="not found"):
        get_search_backend(f"local:{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="unknown search backend"):
        get_search_backend("bing")
    with pytest.raises(ConfigError, match="does not take"):
        get_search_backend(f"local:{hotpot_index}", colour="blue")


def test_corpus_spec_builds_once_into_the_cache_dir(fixtures_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "musique.jsonl"
    corpus.write_bytes((fixtures_dir / "corpora/musique-train100-paragraphs.jsonl").read_bytes())
    cache = tmp_path / "cache"
    with get_search_backend(f"local:{corpus}", cache_dir=cache) as s:
        first_dir = s.index_dir
        assert first_dir.parent == cache / "indexes"
        assert s.n_passages == 1890
    built = (first_dir / "meta.json").stat().st_mtime_ns
    assert ensure_corpus_index(corpus, cache_dir=cache) == first_dir
    assert (first_dir / "meta.json").stat().st_mtime_ns == built  # reused, not rebuilt
    with open(corpus, "a", encoding="utf-8") as f:
        f.write('{"id": "new", "contents": "\\"Zebrafish\\"\\nZebrafish regenerate fins."}\n')
    os.utime(corpus, ns=(built + 10**9, built + 10**9))
    second = ensure_corpus_index(corpus, cache_dir=cache)
    assert second != first_dir
    with LocalSearch(second) as s:
        assert s.search("zebrafish fins", 1)[0].url == "local://new"


def test_concurrent_threads_get_serial_answers(hotpot: LocalSearch, fixtures_dir: Path) -> None:
    queries = [r["question"] for r in _questions(fixtures_dir)[:40]]
    expected = {q: hotpot.search(q, 4) for q in queries}
    errors: list[BaseException] = []
    got: dict[tuple[int, str], list[SearchHit]] = {}

    def worker(t: int) -> None:
        try:
            for q in queries[t % 5 :] + queries[: t % 5]:
                got[(t, q)] = hotpot.search(q, 4)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 16 * len(queries)
    assert all(v == expected[q] for (_, q), v in got.items())
