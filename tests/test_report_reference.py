"""The shipped reference entries: each rescored one equals what matbench's scorer gives on the authors' file
today (so an entry can never drift), agrees with the authors' notebook numbers in the fixtures' README, and
every file the authors published is rescored (no † cell left where a file exists), read from a flat folder
or from the authors' repository layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_helpers import PRED, _link, optional_fixture

from matbench.cli import main
from matbench.report import leaderboard_dir, submissions_dir
from matbench.report.entries import load_entries, sha256_file
from matbench.report.reference import AUTHORS_FILES, authors_file_path
from matbench.scoring.predictions import score_file
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


# The 3B multi-hop numbers shipped before as `reported` (the authors' rules applied to the authors' files
# outside matbench): matbench's rescoring of the same files must give them.
FORMERLY_REPORTED = {
    "3b_step200_2wiki_web_n4.json": (49.7697, 39.1301),
    "3b_step200_hotpotqa_web_n4.json": (41.3262, 30.1013),
    "3b_step200_musique_web_n4.json": (19.1019, 11.5846),
    "3b_step200_bamboogle_web_n4.json": (49.0110, 38.4000),
}


def test_every_authors_file_has_a_shipped_entry():
    files = {e.source["file"] for e in shipped("reference")}
    assert files == {a.file for a in AUTHORS_FILES}
    assert len(AUTHORS_FILES) == 14  # 2 sizes x (MAT-Search, 4 multi-hop sets, MAT-Coding and its _v2 file)
    # no Visual-ARFT cell is taken on trust any more: nothing of theirs is `reported`
    assert not [e for e in shipped("reported") if "Visual-RFT" in str(e.source.get("repository"))]
    assert {e.source["path"] for e in shipped("reference")} == {a.repo_path for a in AUTHORS_FILES}


@pytest.mark.parametrize("file", sorted(FORMERLY_REPORTED))
def test_rescored_3b_multihop_equals_the_formerly_reported_numbers(file):
    (entry,) = [e for e in shipped("reference") if e.source["file"] == file]
    f1, em = FORMERLY_REPORTED[file]
    assert round(100 * entry.scores["all"]["f1"], 4) == pytest.approx(f1, abs=1e-4)
    assert round(100 * entry.scores["all"]["em"], 4) == pytest.approx(em, abs=1e-4)
    assert entry.scores["all"]["f1_ci"] and entry.n == get_task(entry.task).size


@pytest.mark.parametrize("item", AUTHORS_FILES, ids=lambda a: a.file)
def test_rescored_entry_equals_todays_scorer(item, fixtures_dir):
    (entry,) = [e for e in shipped("reference") if e.source["file"] == item.file]
    path = optional_fixture(fixtures_dir, PRED / item.file)
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


# the files whose notebook numbers the fixtures' README lists
NOTEBOOK = [
    a
    for a in AUTHORS_FILES
    if a.file not in FORMERLY_REPORTED and a.file != "3b_mat_coding_grpo_step1400_v2.json"
]


@pytest.mark.parametrize("item", NOTEBOOK, ids=lambda a: a.file)
def test_rescored_entry_matches_authors_notebooks(item, fixtures_dir):
    (entry,) = [e for e in shipped("reference") if e.source["file"] == item.file]
    table = readme_table(fixtures_dir)[item.file]
    for split, (f1, em) in table.items():
        assert round(100 * entry.scores[split]["f1"], 4) == pytest.approx(f1, abs=1e-4)
        assert round(100 * entry.scores[split]["em"], 4) == pytest.approx(em, abs=1e-4)


def _all_authors_files(fixtures: Path) -> None:
    for item in AUTHORS_FILES:
        optional_fixture(fixtures, PRED / item.file)


def test_rebuilding_reproduces_shipped_entries(fixtures_dir, tmp_path, capsys):
    _all_authors_files(fixtures_dir)
    assert (
        main(["submit", "--authors-references", str(fixtures_dir / PRED), "--leaderboard-dir", str(tmp_path)])
        == 0
    )
    rebuilt = {e.key: e.to_dict() for e in load_entries(tmp_path / "submissions")}
    ours = {e.key: e.to_dict() for e in load_entries(SHIPPED) if e.kind == "reference"}
    assert rebuilt.keys() == ours.keys()
    for key, entry in rebuilt.items():
        entry.pop("submitted_at"), ours[key].pop("submitted_at")
        assert entry == ours[key], key


def authors_repo_copy(fixtures: Path, root: Path) -> Path:
    """The authors' repository layout (the folder holding Visual-ARFT/) with the fixtures' files in it (hard
    links where possible: matbench never follows a symbolic link to a predictions file)."""
    for item in AUTHORS_FILES:
        if (fixtures / PRED / item.file).is_file():  # what the fixtures hold (a full copy holds all 14)
            _link(fixtures / PRED / item.file, root / item.repo_path)
    return root


def test_authors_references_accepts_the_repository_layout(fixtures_dir, tmp_path, capsys):
    _all_authors_files(fixtures_dir)
    repo = authors_repo_copy(fixtures_dir, tmp_path / "Visual-RFT")
    for item in AUTHORS_FILES:  # the folder holding Visual-ARFT/, or Visual-ARFT/ itself
        assert authors_file_path(repo / "Visual-ARFT", item) == authors_file_path(repo, item)
        assert sha256_file(authors_file_path(repo, item)) == sha256_file(fixtures_dir / PRED / item.file)
    lb = tmp_path / "lb"
    assert main(["submit", "--authors-references", str(repo), "--leaderboard-dir", str(lb)]) == 0
    rebuilt = {e.key: e.scores for e in load_entries(lb / "submissions")}
    assert rebuilt == {e.key: e.scores for e in shipped("reference")}


def test_authors_references_names_missing_files(fixtures_dir, tmp_path, capsys):
    repo = authors_repo_copy(fixtures_dir, tmp_path / "Visual-RFT")
    (repo / AUTHORS_FILES[-1].repo_path).unlink(missing_ok=True)
    lb = tmp_path / "lb"
    assert main(["submit", "--authors-references", str(repo), "--leaderboard-dir", str(lb)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and AUTHORS_FILES[-1].repo_path in err
    assert not (lb / "submissions").exists()


def test_reference_mode_of_submit(fixtures_dir, tmp_path, capsys):
    path = fixtures_dir / PRED / "7b_mat_coding_grpo_step1400_v2.json"
    args = ["submit", "--reference", str(path), "--task", "mat-coding", "--name", "Visual-ARFT-7B v2"]
    assert main([*args, "--model", "visual-arft-7b-v2", "--leaderboard-dir", str(tmp_path)]) == 0
    (entry,) = load_entries(tmp_path / "submissions")
    assert entry.kind == "reference" and entry.name == "Visual-ARFT-7B v2"
    assert round(100 * entry.scores["simple"]["f1"], 4) == 61.5248
    assert main(["submit", "--reference", str(path), "--leaderboard-dir", str(tmp_path)]) == 2
    assert "--reference needs --task, --model and --name" in capsys.readouterr().err
