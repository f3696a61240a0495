"""Every command that reads predictions says in one line what is wrong with them (bad bytes, an empty file,
the wrong task) instead of a traceback or a silently wrong number."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from report_helpers import PRED, edit_records, make_coding_data, make_coding_run
from runtime_helpers import run_eval

from matbench.cli import main


@pytest.fixture(scope="module")
def coding_data(fixtures_dir: Path, tmp_path_factory) -> Path:
    return make_coding_data(fixtures_dir, tmp_path_factory.mktemp("data") / "mat-coding")


@pytest.fixture
def run(fixtures_dir: Path, coding_data: Path, tmp_path: Path) -> Path:
    return make_coding_run(fixtures_dir, tmp_path / "run", coding_data)


def _poison(path: Path, row: int) -> int:
    """Put a byte that is not UTF-8 into a string of line ``row``; returns its 1-based column."""
    lines = path.read_bytes().split(b"\n")
    col = lines[row - 1].index(b'"question": "') + len(b'"question": "')
    lines[row - 1] = lines[row - 1][:col] + b"\xff" + lines[row - 1][col:]
    path.write_bytes(b"\n".join(lines))
    return col + 1


def _one_line(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bytes_that_are_not_utf8_give_one_line_from_every_reader(run, tmp_path, capsys, fixtures_dir):
    col = _poison(run / "predictions.jsonl", 5)
    where = f"predictions.jsonl, row 5: not valid UTF-8 text (byte 0xff at column {col})"
    assert where in _one_line(capsys, ["score", str(run)])
    assert where in _one_line(capsys, ["submit", str(run), "--leaderboard-dir", str(tmp_path / "lb")])
    assert where in _one_line(capsys, ["compare", str(run), str(run)])
    authors = tmp_path / "authors.json"
    text = (fixtures_dir / PRED / "7b_mat_coding_grpo_step1400.json").read_bytes()
    authors.write_bytes(text.replace(b'"gt"', b'"g\xfet"', 1))
    line = _one_line(capsys, ["score", str(authors), "--task", "mat-coding"])
    assert "authors.json, row " in line and "not valid UTF-8 text (byte 0xfe" in line


def test_resume_of_a_run_with_bad_bytes_is_one_line(tmp_path, fixtures_dir):
    args = ["--model", "openai:fake", "--task", "bamboogle", "--data-dir", str(fixtures_dir / "multihop")]
    args += [
        "--protocol",
        "direct",
        "--limit",
        "3",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-response-cache",
    ]
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        assert run_eval(["--base-url", srv.base_url, *args]).returncode == 0
        col = _poison(tmp_path / "run" / "predictions.jsonl", 2)
        out = run_eval(["--base-url", srv.base_url, *args, "--limit", "4"])
        assert srv.calls == 3
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert f"predictions.jsonl, row 2: not valid UTF-8 text (byte 0xff at column {col})" in line


def test_score_and_compare_take_the_task_from_the_run(run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["score", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert '"task": "mat-coding"' in captured.out and captured.err == ""
    wrong = "is a run of task mat-coding, not mat-search"
    assert wrong in _one_line(capsys, ["score", str(run), "--task", "mat-search"])
    assert wrong in _one_line(capsys, ["score", str(run / "predictions.jsonl"), "--task", "mat-search"])
    assert wrong in _one_line(capsys, ["compare", str(run), str(run), "--task", "mat-search"])


def test_a_partial_file_warns_and_an_empty_one_is_refused(run, tmp_path, capsys):
    edit_records(run, lambda r: None if r["id"] in ("12", "22", "63") else r)
    capsys.readouterr()
    assert main(["score", str(run)]) == 0
    assert "holds 197 of the 200 samples of mat-coding" in capsys.readouterr().err
    assert main(["compare", str(run), str(run), "--resamples", "100"]) == 0
    assert "the pairing holds 197 of the 200 samples of mat-coding" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "holds no predictions" in _one_line(capsys, ["score", str(empty), "--task", "bamboogle"])
    (run / "predictions.jsonl").write_text("")
    assert "holds no predictions" in _one_line(capsys, ["score", str(run)])
    assert "holds no predictions" in _one_line(capsys, ["compare", str(run), str(run)])
