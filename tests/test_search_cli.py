"""`matbench index build` and `matbench search` as a user runs them (the CLI's ``main``, in process)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runtime_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), env=env, cwd=ROOT)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SERPER_API_KEY", "MATBENCH_LOCAL_INDEX")}
    env["MATBENCH_CACHE_DIR"] = str(tmp_path / "cache")
    env.update(extra)
    return env


def test_index_build_then_search_json(fixtures_dir: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    out = tmp_path / "idx"
    corpus = fixtures_dir / "corpora/hotpotqa-dev-first100-paragraphs.jsonl"
    built = run("index", "build", str(corpus), "--out", str(out), "--batch-size", "256", env=env)
    assert built.returncode == 0, built.stderr
    assert "indexed 991 passages" in built.stdout and str(out) in built.stdout
    assert (out / "meta.json").is_file()

    res = run("search", "Laleli Mosque Istanbul", "--search", f"local:{out}", "--k", "3", "--json", env=env)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert len(hits) == 3 and set(hits[0]) == {"title", "url", "snippet"}
    assert hits[0]["title"] == "Laleli Mosque" and hits[0]["url"].startswith("local://")
    assert not (tmp_path / "cache" / "search.sqlite").exists()  # local BM25: no search cache by default
    stored = run(
        "search", "Laleli Mosque Istanbul", "--search", f"local:{out}", "--k", "3", "--json",
        "--search-cache", "readwrite", env=env,
    )  # fmt: skip
    assert json.loads(stored.stdout) == hits and "live, stored" in stored.stderr
    assert (tmp_path / "cache" / "search.sqlite").is_file()

    replay = run(
        "search", "Laleli Mosque Istanbul", "--search", f"local:{out}", "--k", "3", "--json",
        "--search-cache", "read", env=env,
    )  # fmt: skip
    assert replay.returncode == 0 and json.loads(replay.stdout) == hits
    assert "from cache" in replay.stderr

    miss = run("search", "not asked before", "--search", f"local:{out}", "--search-cache", "read", env=env)
    assert miss.returncode == 1 and "not in the search cache" in miss.stderr

    text = run("search", "Laleli Mosque", "--search", f"local:{out}", "--k", "2", env=env)
    assert text.returncode == 0
    assert text.stdout.startswith("1. Laleli Mosque  <local://") and "\n2. " in text.stdout


def test_missing_serper_key_is_one_clear_line(tmp_path: Path) -> None:
    res = run("search", "anything", "--search", "serper", env=clean_env(tmp_path))
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("matbench: error: SERPER_API_KEY is not set")
    assert "--search local" in lines[0] and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_malformed_corpus_names_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "broken.jsonl"
    corpus.write_text('{"id": "0", "contents": "\\"A\\"\\nok"}\n{"id": "1", "contents": \n', encoding="utf-8")
    res = run(
        "index",
        "build",
        str(corpus),
        "--out",
        str(tmp_path / "idx"),
        "--no-progress",
        env=clean_env(tmp_path),
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == f"matbench: error: {corpus}, row 2: not valid JSON (Expecting value at column 25)"
    )


def test_bare_local_without_index_says_how_to_build(tmp_path: Path) -> None:
    res = run("search", "x", "--search", "local", env=clean_env(tmp_path))
    assert res.returncode == 2
    assert "matbench index build CORPUS.jsonl --out DIR" in res.stderr
