"""Versioned records: config.json, summary.json, every predictions line and every leaderboard entry carry
``schema_version``; a round-2 run (no version anywhere) still scores, views, submits and resumes; a record from a
newer matbench is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from runtime_helpers import ROOT, main_eval, read_jsonl, run_dir_of

from matbench.cli import main
from matbench.records.run_dir import SCHEMA_VERSION
from matbench.report.entries import load_entries

DEMO = ROOT / "matbench" / "data" / "demo"


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--model", "scripted:quickstart", "--task", "hotpotqa", "--data-dir", str(DEMO / "hotpotqa"),
        "--search", f"local:{DEMO / 'hotpotqa-paragraphs.jsonl'}", "--protocol", "matbench-wording",
        "--runs-root", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), *extra,
    ]


def _strip_versions(run: Path) -> None:
    """Rewrite a run as round 2 wrote it: the same files, no ``schema_version`` in any of them."""
    for name in ("config.json", "summary.json"):
        obj = json.loads((run / name).read_text(encoding="utf-8"))
        del obj["schema_version"]
        (run / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = []
    for rec in read_jsonl(run / "predictions.jsonl"):
        del rec["schema_version"]
        lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
    (run / "predictions.jsonl").write_text("".join(lines), encoding="utf-8")


def _score(run: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["score", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_new_records_carry_schema_version(tmp_path, capsys):
    rc, out, err = main_eval(_args(tmp_path, "--limit", "2"), capsys)
    assert rc == 0, err
    run = run_dir_of(out)
    assert json.loads((run / "config.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert json.loads((run / "summary.json").read_text())["schema_version"] == SCHEMA_VERSION
    lines = (run / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert all(line.startswith('{"id": ') for line in lines)  # the id stays first (the fast id scan)
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)


def test_round2_run_scores_views_and_submits(tmp_path, capsys):
    rc, out, err = main_eval(_args(tmp_path), capsys)  # all five demo samples: a submittable run
    assert rc == 0, err
    run = run_dir_of(out)
    before = _score(run, capsys)
    _strip_versions(run)
    assert "schema_version" not in (run / "predictions.jsonl").read_text()

    assert _score(run, capsys) == before  # scores
    assert main(["view", str(run), "--out", str(tmp_path / "r.html")]) == 0  # views
    assert "dev_4" in (tmp_path / "r_data" / "c00000.js").read_text()
    board = tmp_path / "board"
    assert main(["submit", str(run), "--leaderboard-dir", str(board)]) == 0  # submits
    (entry_file,) = board.glob("submissions/*.json")
    raw = json.loads(entry_file.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION  # the entry written now carries it
    assert raw["n"] == 5 and raw["scores"]["all"]["f1"] == before["f1"]


def test_round2_run_resumes(tmp_path, capsys):
    rc, out, err = main_eval(_args(tmp_path, "--limit", "3"), capsys)
    assert rc == 0, err
    run = run_dir_of(out)
    _strip_versions(run)
    rc, out, err = main_eval(_args(tmp_path, "--run-dir", str(run)), capsys)  # the rest of the samples
    assert rc == 0, err
    recs = read_jsonl(run / "predictions.jsonl")
    assert sorted(r["id"] for r in recs) == ["dev_0", "dev_1", "dev_2", "dev_3", "dev_4"]
    assert ["schema_version" in r for r in recs] == [False] * 3 + [True] * 2  # old lines kept as written
    assert sorted(r["id"] for r in recs[3:]) == ["dev_3", "dev_4"]  # only the two missing samples ran
    after = _score(run, capsys)
    summary = json.loads((run / "summary.json").read_text())
    assert after["n"] == 5 and summary["f1"] == after["f1"] and summary["run"]["finished"] is True
    assert main(["submit", str(run), "--leaderboard-dir", str(tmp_path / "board")]) == 0


def test_round2_leaderboard_entry_reads(tmp_path):
    shipped = ROOT / "leaderboard" / "submissions" / "reference-visual-arft-7b-mat-search.json"
    raw = json.loads(shipped.read_text())
    raw["schema"] = raw.pop("schema_version")  # what round 2 wrote
    (tmp_path / shipped.name).write_text(json.dumps(raw))
    (entry,) = load_entries(tmp_path)
    assert entry.schema_version == 1 and entry.scores == raw["scores"]


def test_a_newer_record_is_refused_in_one_line(tmp_path, capsys):
    rc, out, err = main_eval(_args(tmp_path, "--limit", "1"), capsys)
    run = run_dir_of(out)
    path = run / "predictions.jsonl"
    rec = json.loads(path.read_text())
    rec["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(rec) + "\n")
    capsys.readouterr()
    assert main(["score", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"predictions.jsonl, row 1: written with schema_version {SCHEMA_VERSION + 1}" in err
    assert "upgrade matbench" in err
    config = json.loads((run / "config.json").read_text())
    config["schema_version"] = "2"
    (run / "config.json").write_text(json.dumps(config))
    assert main(["view", str(run)]) == 2
    assert "config.json: schema_version '2' is not a positive integer" in capsys.readouterr().err
