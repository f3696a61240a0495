"""`matbench submit`: a good run is recorded with rescored numbers; every kind of bad run is refused with the
exact reason; resubmitting is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_helpers import PRED, edit_json, edit_records, make_coding_data, make_coding_run

from matbench.cli import main
from matbench.report.entries import load_entries
from matbench.report.submit import Refused, validate_run
from matbench.scoring.predictions import score_file
from matbench.tasks import get_task


@pytest.fixture(scope="module")
def coding_data(fixtures_dir: Path, tmp_path_factory) -> Path:
    return make_coding_data(fixtures_dir, tmp_path_factory.mktemp("data") / "mat-coding")


@pytest.fixture
def run(fixtures_dir: Path, coding_data: Path, tmp_path: Path) -> Path:
    return make_coding_run(fixtures_dir, tmp_path / "run", coding_data)


def submit(run: Path, lb: Path, *extra: str) -> int:
    return main(["submit", str(run), "--leaderboard-dir", str(lb), *extra])


def test_good_run_is_recorded_with_rescored_numbers(run, fixtures_dir, tmp_path, capsys):
    lb = tmp_path / "lb"
    assert submit(run, lb, "--name", "Qwen2.5-VL-7B (test)") == 0
    assert "recorded:" in capsys.readouterr().out
    (entry,) = load_entries(lb / "submissions")
    expected = score_file(fixtures_dir / PRED / "7b_mat_coding_grpo_step1400.json", get_task("mat-coding"))
    assert entry.kind == "run" and entry.name == "Qwen2.5-VL-7B (test)"
    assert {k: entry.scores["all"][k] for k in ("n", "f1", "em")} == {
        "n": 200,
        "f1": expected["f1"],
        "em": expected["em"],
    }
    lo, hi = entry.scores["all"]["f1_ci"]
    assert lo < expected["f1"] < hi and 0.05 < hi - lo < 0.2  # a 95 % bootstrap interval of 200 samples
    assert entry.official and entry.unofficial is None
    assert entry.scores["hard"]["f1"] == expected["splits"]["hard"]["f1"]
    assert (entry.n, entry.errors, entry.input_errors, entry.task_version) == (200, 0, 0, "1.0")
    assert entry.model["spec"] == "qwen2.5-vl-7b" and entry.protocol == "visual-arft"
    assert entry.decoding["max_new_tokens"] == 1024
    assert len(entry.predictions_sha256) == 64 and entry.fingerprint


def test_resubmit_is_idempotent(run, tmp_path, capsys):
    lb = tmp_path / "lb"
    assert submit(run, lb) == 0
    files = list((lb / "submissions").glob("*.json"))
    before = files[0].read_text()
    capsys.readouterr()
    assert submit(run, lb) == 0
    assert "already recorded" in capsys.readouterr().out
    assert list((lb / "submissions").glob("*.json")) == files
    assert files[0].read_text() == before


def refusal(run: Path, tmp_path: Path, capsys, *extra: str) -> str:
    assert submit(run, tmp_path / "lb", *extra) == 2
    assert not (tmp_path / "lb" / "submissions").exists() or not list(
        (tmp_path / "lb" / "submissions").iterdir()
    )
    return capsys.readouterr().err


def test_missing_samples_refused(run, tmp_path, capsys):
    edit_records(run, lambda r: None if r["id"] in ("12", "22", "63") else r)
    err = refusal(run, tmp_path, capsys)
    assert "refused: missing 3 sample(s): 12, 22, 63" in err


def test_tampered_summary_refused(run, tmp_path, capsys):
    edit_json(run / "summary.json", lambda s: s.update(f1=0.61))
    err = refusal(run, tmp_path, capsys)
    assert "summary.json says f1=0.61 but the predictions give 0.51: the summary was edited" in err


def test_tampered_split_score_refused(run, tmp_path, capsys):
    edit_json(run / "summary.json", lambda s: s["splits"]["hard"].update(em=0.3))
    err = refusal(run, tmp_path, capsys)
    assert "summary.json says splits.hard.em=0.3 but the predictions give 0.25" in err


def test_altered_gold_refused(run, tmp_path, capsys):
    def alter(rec):
        if rec["id"] == "12":
            rec["gold"] = ["1 Can"]
        return rec

    edit_records(run, alter)
    err = refusal(run, tmp_path, capsys)
    assert 'gold answers of sample 12 differ from the task\'s: ["1 Can"] vs ["1 Can (473ml)"]' in err


def test_different_task_version_refused(run, tmp_path, capsys):
    edit_json(run / "config.json", lambda c: c["task"].update(version="0.9"))
    err = refusal(run, tmp_path, capsys)
    assert "the run used mat-coding version 0.9, the current task spec is version 1.0" in err


def test_edited_record_score_refused(run, tmp_path, capsys):
    records = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    wrong = next(r for r in records if r["em"] == 0)
    edit_records(run, lambda r: {**r, "f1": 1.0} if r["id"] == wrong["id"] else r)
    err = refusal(run, tmp_path, capsys)
    assert f"sample {wrong['id']}: predictions.jsonl records f1=1" in err and "the record was edited" in err


def test_unfinished_run_refused(run, tmp_path, capsys):
    (run / "summary.json").unlink()
    assert "no summary.json: the run has not finished" in refusal(run, tmp_path, capsys)


def test_foreign_ids_refused(run, tmp_path, capsys):
    edit_records(run, lambda r: {**r, "id": "999"} if r["id"] == "200" else r)
    err = refusal(run, tmp_path, capsys)
    assert "missing 1 sample(s): 200" in err


def test_cli_data_dir_overrides_config(fixtures_dir, tmp_path):
    data = make_coding_data(fixtures_dir, tmp_path / "data")
    run = make_coding_run(fixtures_dir, tmp_path / "run", data)
    data.rename(tmp_path / "moved")
    with pytest.raises(Exception, match="data directory not found"):
        validate_run(run)
    entry = validate_run(run, data_dir=str(tmp_path / "moved"))
    assert entry.n == 200 and entry.official


def test_resumed_run_latest_line_wins(run, tmp_path):
    """A --retry-errors resume appends a newer line for an id: that is not a duplicate."""
    line = (run / "predictions.jsonl").read_text().splitlines()[0]
    with (run / "predictions.jsonl").open("a") as fh:
        fh.write(line + "\n")
    assert validate_run(run).n == 200


def test_refused_is_a_matbench_error(run):
    edit_json(run / "config.json", lambda c: c["task"].update(version="2.0"))
    with pytest.raises(Refused, match="version 2.0"):
        validate_run(run)


def _consistent_edit(run: Path, fn) -> None:
    """An edit a forger would make: the content and, recomputed, its fingerprint."""
    from matbench.run.config import config_fingerprint

    def edit(cfg: dict) -> None:
        fn(cfg)
        cfg["fingerprint"] = config_fingerprint(cfg)

    edit_json(run / "config.json", edit)


def test_a_run_not_made_from_the_pinned_files_is_refused(run, tmp_path, capsys):
    """#20.6: the recorded file hash of the authors' script and the exec scope must be the pinned ones."""
    from matbench.protocols.authors_strings import PINNED_IMPORTS, imports_sha256

    coding = "Visual-ARFT/evaluation_coding/evaluation_mat_coding_visual_arft.py"
    config = json.loads((run / "config.json").read_text())
    assert config["protocol"]["source"]["file"] == coding
    _consistent_edit(run, lambda c: c["protocol"]["source"].update(file_sha256="0" * 64))
    err = refusal(run, tmp_path, capsys)
    assert "not the pinned file" in err and err.strip().count("\n") == 0
    _consistent_edit(run, lambda c: c["protocol"]["source"].update(file_sha256=config["protocol"]["source"]["file_sha256"]))
    seeded = [["os", "os", None], ["np", "numpy", None]]
    assert imports_sha256(seeded) != PINNED_IMPORTS[coding]
    _consistent_edit(run, lambda c: c["options"].update(exec_scope="authors", exec_globals=seeded))
    assert "exec scope 'authors' with imports that are not the pinned script's" in refusal(run, tmp_path, capsys)
    _consistent_edit(run, lambda c: c["options"].update(exec_scope="fresh", exec_globals=seeded))
    assert "exec scope 'fresh' with seeded imports" in refusal(run, tmp_path, capsys)
