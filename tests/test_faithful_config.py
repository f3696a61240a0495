"""What a faithful run records and refuses: decoding sent, exec scope, compat, data revision, --max-pixels."""

from __future__ import annotations

import json

from fake_openai_server import FakeOpenAIServer
from runtime_helpers import run_dir_of, run_eval


def _eval(srv, tmp_path, fixtures_dir, *extra):
    return run_eval(
        [
            "--model",
            "openai:fake",
            "--base-url",
            srv.base_url,
            "--task",
            "mat-coding",
            "--data-dir",
            str(fixtures_dir / "mat" / "coding-demo"),
            "--ids",
            "12",
            "--runs-root",
            str(tmp_path / "runs"),
            *extra,
        ],
        cache_dir=tmp_path / "cache",
    )


def test_config_records_the_faithful_defaults(tmp_path, fixtures_dir):
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        out = _eval(srv, tmp_path, fixtures_dir, "--seed", "7")
        assert out.returncode == 0, out.stderr
        sent = srv.requests[0]
    cfg = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    assert cfg["protocol"]["name"] == "visual-arft" and cfg["protocol"]["wording"] == "authors"
    assert cfg["options"]["compat"] == "fixed" and cfg["options"]["exec_scope"] == "authors"
    assert ["np", "numpy", None] in cfg["options"]["exec_globals"]
    assert cfg["sandbox"]["timeout"] == 60 and cfg["sandbox"]["exec_scope"] == "authors"
    # exactly what went over the wire besides the messages
    assert cfg["decoding"]["sent"] == {"max_tokens": 1024, "temperature": 0.0, "seed": 7}
    assert {k: v for k, v in sent.items() if k not in ("messages", "model")} == cfg["decoding"]["sent"]
    assert cfg["task"]["revision"] is None and cfg["task"]["revision_pinned"] is None  # local data


def test_switches_are_recorded_and_change_the_fingerprint(tmp_path, fixtures_dir):
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        first = _eval(srv, tmp_path, fixtures_dir, "--run-dir", str(tmp_path / "r"))
        assert first.returncode == 0, first.stderr
        again = _eval(srv, tmp_path, fixtures_dir, "--run-dir", str(tmp_path / "r"), "--compat", "strict")
        assert again.returncode == 2 and "changed: options" in again.stderr
        other = _eval(
            srv,
            tmp_path,
            fixtures_dir,
            "--protocol",
            "matbench-wording",
            "--compat",
            "strict",
            "--exec-scope",
            "fresh",
        )
        assert other.returncode == 0, other.stderr
    cfg = json.loads((run_dir_of(other.stdout) / "config.json").read_text())
    assert cfg["protocol"]["wording"] == "matbench" and cfg["options"]["compat"] == "strict"
    assert cfg["options"]["exec_scope"] == "fresh" and cfg["options"]["exec_globals"] is None


def test_max_pixels_with_base_url_is_refused(tmp_path, fixtures_dir):
    with FakeOpenAIServer("x") as srv:
        out = _eval(srv, tmp_path, fixtures_dir, "--max-pixels", "1003520")
        assert srv.calls == 0
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "--max-pixels" in lines[0] and "--base-url" in lines[0]


def test_exec_scope_authors_needs_their_script(tmp_path, fixtures_dir):
    with FakeOpenAIServer("x") as srv:
        out = _eval(srv, tmp_path, fixtures_dir, "--protocol", "matbench-wording", "--exec-scope", "authors")
    assert out.returncode == 2 and "--exec-scope authors needs" in out.stderr
