"""An unwritable cache directory or home is one line naming the path and how to move it (issue 20.13)."""

from __future__ import annotations

import pytest

from matbench.caches.location import default_cache_dir, usable_cache_dir
from matbench.errors import ConfigError


@pytest.fixture
def blocked(tmp_path):
    """A path no one can make a folder at (its parent is a file): unwritable even for root."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    return afile / "cache"


def _one_line(capsys, code: int, path) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert str(path) in err and "MATBENCH_CACHE_DIR" in err and "--cache-dir" in err, err
    return err


def test_helpers_name_the_path_and_the_way_out(blocked, monkeypatch):
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(blocked))
    assert default_cache_dir() == blocked
    with pytest.raises(ConfigError, match="MATBENCH_CACHE_DIR=DIR"):
        usable_cache_dir()
    monkeypatch.delenv("MATBENCH_CACHE_DIR")
    monkeypatch.setenv("HOME", str(blocked.parent))  # a home that is a file
    with pytest.raises(ConfigError) as err:
        usable_cache_dir()
    assert str(blocked.parent / ".cache" / "matbench") in str(err.value)


def test_eval_with_an_unwritable_cache_is_one_line(blocked, fixtures_dir, tmp_path, capsys, monkeypatch):
    from fake_openai_server import FakeOpenAIServer
    from runtime_helpers import fake_args

    from matbench.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    opt_in = ["--response-cache"] if "--response-cache " in capsys.readouterr().out else []  # (issue 21.2)
    monkeypatch.setenv("HOME", str(blocked.parent))  # ~/.cache/matbench cannot be made
    monkeypatch.delenv("MATBENCH_CACHE_DIR", raising=False)
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        argv = [*fake_args(srv, "bamboogle", str(fixtures_dir / "multihop")), "--limit", "1",
                "--protocol", "direct", "--runs-root", str(tmp_path / "runs"), *opt_in]
        code = main(["eval", *argv])
    _one_line(capsys, code, blocked.parent / ".cache" / "matbench")


def test_search_cache_and_corpus_index_in_an_unwritable_cache(blocked, fixtures_dir, capsys):
    from matbench.tools.search.local import ensure_corpus_index

    corpus = fixtures_dir / "corpora" / "hotpotqa-dev-first100-paragraphs.jsonl"
    with pytest.raises(ConfigError) as err:
        ensure_corpus_index(corpus, cache_dir=blocked)
    assert str(blocked) in str(err.value) and "MATBENCH_CACHE_DIR" in str(err.value)
    from matbench.caches.db import CacheDB

    with pytest.raises(ConfigError) as err:
        CacheDB.open(blocked / "search.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT)")
    assert str(blocked) in str(err.value) and "MATBENCH_CACHE_DIR" in str(err.value)
