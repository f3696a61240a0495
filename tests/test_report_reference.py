"""The shipped reference entries: each rescored one equals what matbench's scorer gives on the authors' file
today (so an entry can never drift), agrees with the authors' notebook numbers in the fixtures' README, and
the reported ones are marked as such."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_helpers import PRED

from matbench.cli import main
from matbench.predictions import score_file
from matbench.report import leaderboard_dir, submissions_dir
from matbench.report.entries import load_entries, sha256_file
from matbench.report.reference import AUTHORS_FILES, AUTHORS_REPORTED
from matbench.tasks import get_task

SHIPPED = submissions_dir(leaderboard_dir(Path(__file__).resolve().parents[1] / "leaderboard"))


def shipped(kind: str):
    return [e for e in load_entries(SHIPPED) if e.kind == kind]


def readme_table(fixtures: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """file -> {"simple"|"hard"|"all": (F1, EM)} in percent, from the fixtures README."""
    out = {}
    for line in (fixtures / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".json"):
            parts = {}
            for name, cell in zip(("simple", "hard", "all"), cells[1:], strict=True):
                m = re.fullmatch(r"([\d.]+) / ([\d.]+)", cell)
                if m:
                    parts[name] = (float(m.group(1)), float(m.group(2)))
            out[cells[0]] = parts
    return out


def test_every_authors_file_has_a_shipped_entry():
    files = {e.source["file"] for e in shipped("reference")}
    assert files == {a.file for a in AUTHORS_FILES}
    assert {e.source["file"] for e in shipped("reported")} == {r.file for r in AUTHORS_REPORTED}


@pytest.mark.parametrize("item", AUTHORS_FILES, ids=lambda a: a.file)
def test_rescored_entry_equals_todays_scorer(item, fixtures_dir):
    (entry,) = [e for e in shipped("reference") if e.source["file"] == item.file]
    path = fixtures_dir / PRED / item.file
    assert entry.predictions_sha256 == sha256_file(path)
    result = score_file(path, get_task(entry.task), entry.scoring)

    def plain(part: dict) -> dict:
        return {k: part[k] for k in ("n", "f1", "em")}

    assert plain(entry.scores["all"]) == {"n": result["n"], "f1": result["f1"], "em": result["em"]}
    for split, part in result["splits"].items():
        assert plain(entry.scores[split]) == part
        lo, hi = entry.scores[split]["f1_ci"]
        assert lo <= part["f1"] <= hi  # each cell carries its 95 % bootstrap interval
    assert entry.n == result["n"] and entry.missing == result["missing"]
    assert entry.task_version == get_task(entry.task).version
    assert entry.provenance.startswith("published predictions, rescored")


@pytest.mark.parametrize("item", AUTHORS_FILES, ids=lambda a: a.file)
def test_rescored_entry_matches_authors_notebooks(item, fixtures_dir):
    (entry,) = [e for e in shipped("reference") if e.source["file"] == item.file]
    table = readme_table(fixtures_dir)[item.file]
    for split, (f1, em) in table.items():
        assert round(100 * entry.scores[split]["f1"], 4) == pytest.approx(f1, abs=1e-4)
        assert round(100 * entry.scores[split]["em"], 4) == pytest.approx(em, abs=1e-4)


def test_reported_entries_are_marked():
    for e in shipped("reported"):
        assert "not rescored by matbench" in e.provenance and "not available here" in e.provenance
        assert e.reported["unit"] == "percent"
        assert e.scores["all"]["f1"] == pytest.approx(e.reported["f1"] / 100)
        assert e.n == get_task(e.task).size and e.predictions_sha256 is None


def test_rebuilding_reproduces_shipped_entries(fixtures_dir, tmp_path, capsys):
    assert (
        main(["submit", "--authors-references", str(fixtures_dir / PRED), "--leaderboard-dir", str(tmp_path)])
        == 0
    )
    rebuilt = {e.key: e.to_dict() for e in load_entries(tmp_path / "submissions")}
    ours = {e.key: e.to_dict() for e in load_entries(SHIPPED) if e.kind in ("reference", "reported")}
    assert rebuilt.keys() == ours.keys()
    for key, entry in rebuilt.items():
        entry.pop("submitted_at"), ours[key].pop("submitted_at")
        assert entry == ours[key], key


def test_reference_mode_of_submit(fixtures_dir, tmp_path, capsys):
    path = fixtures_dir / PRED / "7b_mat_coding_grpo_step1400_v2.json"
    args = ["submit", "--reference", str(path), "--task", "mat-coding", "--name", "Visual-ARFT-7B v2"]
    assert main([*args, "--model", "visual-arft-7b-v2", "--leaderboard-dir", str(tmp_path)]) == 0
    (entry,) = load_entries(tmp_path / "submissions")
    assert entry.kind == "reference" and entry.name == "Visual-ARFT-7B v2"
    assert round(100 * entry.scores["simple"]["f1"], 4) == 61.5248
    assert main(["submit", "--reference", str(path), "--leaderboard-dir", str(tmp_path)]) == 2
    assert "--reference needs --task, --model and --name" in capsys.readouterr().err
