"""Preflight of HTTP runs (GET /v1/models before the first sample) against real local servers."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from runtime_helpers import read_jsonl, run_dir_of, run_eval

from matbench.errors import ConfigError
from matbench.models.endpoints import check_served_model, served_models


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _eval_args(tmp_path: Path, fixtures_dir: Path, model: str, base_url: str) -> list[str]:
    return [
        "--model",
        model,
        "--base-url",
        base_url,
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--protocol",
        "direct",
        "--limit",
        "2",
        "--runs-root",
        str(tmp_path / "runs"),
    ]


def _assert_one_line_no_run(out, tmp_path: Path) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    return lines[0]


def test_served_models_lists_ids_and_entries() -> None:
    with FakeOpenAIServer("x", models=["tiny", "other"]) as srv:
        entries = served_models(srv.base_url)
    assert [e.id for e in entries] == ["tiny", "other"]


def test_check_served_model_names_what_is_served() -> None:
    with FakeOpenAIServer("x", models=["tiny", "other"]) as srv:
        assert check_served_model(srv.base_url, "tiny").id == "tiny"
        with pytest.raises(ConfigError) as err:
            check_served_model(srv.base_url, "big")
    msg = str(err.value)
    assert "'big'" in msg and "tiny, other" in msg and "--model openai:tiny" in msg and "\n" not in msg


def test_unknown_model_fails_before_any_sample(tmp_path, fixtures_dir) -> None:
    with FakeOpenAIServer("<answer> x </answer>", models=["served-one"]) as srv:
        out = run_eval(
            _eval_args(tmp_path, fixtures_dir, "openai:wrong", srv.base_url), cache_dir=tmp_path / "c"
        )
        assert srv.calls == 0
    line = _assert_one_line_no_run(out, tmp_path)
    assert "served-one" in line and "--model" in line


def test_connection_refused_fails_in_one_line(tmp_path, fixtures_dir) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    out = run_eval(_eval_args(tmp_path, fixtures_dir, "openai:fake", url), cache_dir=tmp_path / "c")
    line = _assert_one_line_no_run(out, tmp_path)
    assert url in line and "refused" in line


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_fails_in_one_line(tmp_path, fixtures_dir, status) -> None:
    with FakeOpenAIServer("x", api_key="sk-right", auth_status=status) as srv:
        out = run_eval(
            _eval_args(tmp_path, fixtures_dir, "openai:fake", srv.base_url),
            env_extra={"OPENAI_API_KEY": "sk-wrong-key-1234"},
            cache_dir=tmp_path / "c",
        )
        assert srv.calls == 0
    line = _assert_one_line_no_run(out, tmp_path)
    assert str(status) in line and "OPENAI_API_KEY" in line and "sk-wrong-key-1234" not in line


def test_right_key_passes_preflight(tmp_path, fixtures_dir) -> None:
    with FakeOpenAIServer("<answer> x </answer>", api_key="sk-right") as srv:
        out = run_eval(
            _eval_args(tmp_path, fixtures_dir, "openai:fake", srv.base_url),
            env_extra={"OPENAI_API_KEY": "sk-right"},
            cache_dir=tmp_path / "c",
        )
    assert out.returncode == 0, out.stderr
    assert srv.calls == 2


def test_api_errors_exit_nonzero_and_say_how_to_rerun(tmp_path, fixtures_dir) -> None:
    args = _eval_args(tmp_path, fixtures_dir, "openai:fake", "")
    with FakeOpenAIServer(lambda req: Reply.error(400, "bad request")) as srv:
        args[args.index("--base-url") + 1] = srv.base_url
        out = run_eval(args, cache_dir=tmp_path / "c")
    assert out.returncode == 1, out.stderr
    assert "2 samples ended in API errors" in out.stderr and "--retry-errors" in out.stderr
    rows = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")
    assert [r["status"] for r in rows] == ["error", "error"]


def test_summary_line_and_json_count_cache_hits(tmp_path, fixtures_dir) -> None:
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        args = _eval_args(tmp_path, fixtures_dir, "openai:fake", srv.base_url)
        first = run_eval(args, cache_dir=tmp_path / "c")
        again = run_eval([*args, "--overwrite", "--response-cache"], cache_dir=tmp_path / "c")  # a new run
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert "cache_hits=0" in first.stdout and "cache_hits=2" in again.stdout
    summary = json.loads((run_dir_of(again.stdout) / "summary.json").read_text())
    assert summary["run"]["response_cache"]["hits"] == 2
