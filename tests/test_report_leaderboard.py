"""`matbench leaderboard`: md/csv/json/html outputs hold the rows and the numbers; sorting; --write."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from report_helpers import authors_references, make_coding_data, make_coding_run

from matbench.cli import main
from matbench.report.entries import load_entries
from matbench.report.leaderboard import build_board


@pytest.fixture(scope="module")
def lb(fixtures_dir: Path, tmp_path_factory) -> Path:
    """The authors' entries plus one submitted run (3B predictions under another model name)."""
    root = tmp_path_factory.mktemp("lb")
    authors_references(fixtures_dir, root)
    data = make_coding_data(fixtures_dir, root / "data")
    run = make_coding_run(
        fixtures_dir, root / "run", data, pred_file="3b_mat_coding_grpo_step1400.json", spec="qwen2.5-vl-3b"
    )
    assert main(["submit", str(run), "--name", "Qwen <3B> run", "--leaderboard-dir", str(root)]) == 0
    return root


def output(lb: Path, capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard-dir", str(lb), *args]) == 0
    return capsys.readouterr().out


def entry(lb: Path, key: str):
    return next(e for e in load_entries(lb / "submissions") if e.key == key)


def test_markdown_rows_and_numbers(lb, capsys):
    md = output(lb, capsys, "--format", "md")
    e7 = entry(lb, "reference-visual-arft-7b-mat-coding")
    assert "| Visual-ARFT-7B | visual-arft |" in md
    assert f"{100 * e7.scores['all']['f1']:.2f} / {100 * e7.scores['all']['em']:.2f}" in md
    assert f"{100 * e7.scores['hard']['f1']:.2f} / {100 * e7.scores['hard']['em']:.2f}" in md
    assert "49.77 / 39.13 (n=12576, 95% CI" in md and "39.13†" not in md  # the 3B 2Wiki file, rescored
    assert "Qwen &lt;3B&gt; run" in md and "Qwen <3B>" not in md and "[run]" in md
    coding = md[md.index("## MAT-Coding — search: none") :].split("\n## ")[0]
    rows = [line for line in coding.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [r.split(" | ")[1] for r in rows] == [
        "Visual-ARFT-7B (v2 file)",
        "Visual-ARFT-7B",
        "Visual-ARFT-3B (v2 file)",
        "Visual-ARFT-3B",
        "Qwen &lt;3B&gt; run",
    ]


def test_csv_has_flat_columns_with_fractions(lb, capsys):
    text = output(lb, capsys, "--format", "csv", "--task", "mat-coding", "--sort", "mat-coding.hard.f1")
    rows = list(csv.DictReader(io.StringIO(text)))
    hard = [float(r["mat-coding.hard.f1"]) for r in rows]
    assert rows[0]["system"] == "Visual-ARFT-7B" and hard == sorted(hard, reverse=True) and len(rows) == 5
    e3 = entry(lb, "reference-visual-arft-3b-mat-coding")
    row3 = next(r for r in rows if r["system"] == "Visual-ARFT-3B")
    assert float(row3["mat-coding.hard.f1"]) == pytest.approx(e3.scores["hard"]["f1"], abs=1e-9)
    assert float(row3["mat-coding.n"]) == 200
    assert row3["mat-coding.kind"] == "reference"
    run_row = next(r for r in rows if r["system"] == "Qwen <3B> run")
    assert float(run_row["mat-coding.errors"]) == 0 and run_row["mat-coding.kind"] == "run"
    assert "mat-search.f1" not in rows[0]


def test_json_and_sort(lb, capsys):
    data = json.loads(output(lb, capsys, "--format", "json", "--sort", "system"))
    for search in {r["search"] for r in data["rows"]}:  # sorted within each search setting
        names = [r["system"] for r in data["rows"] if r["search"] == search]
        assert names == sorted(names)
    by_name = {r["system"]: r for r in data["rows"]}
    e = entry(lb, "reference-visual-arft-7b-musique")
    assert by_name["Visual-ARFT-7B"]["tasks"]["musique"]["scores"]["all"]["f1"] == e.scores["all"]["f1"]
    assert by_name["Visual-ARFT-3B"]["tasks"]["musique"]["kind"] == "reference"  # rescored, no longer †
    assert data["tasks"][:2] == ["mat-search", "mat-coding"]
    asc = json.loads(output(lb, capsys, "--format", "json", "--sort", "bamboogle.em"))
    assert [r["system"] for r in asc["rows"]][:2] == ["Visual-ARFT-7B", "Visual-ARFT-3B"]


def test_searchless_task_joins_the_search_row(lb):
    board = build_board(load_entries(lb / "submissions"))
    seven = [r for r in board.rows if r.system == "Visual-ARFT-7B"]
    assert len(seven) == 1 and {"mat-coding", "mat-search"} <= set(seven[0].cells)


def test_unknown_sort_column(lb, capsys):
    assert main(["leaderboard", "--leaderboard-dir", str(lb), "--sort", "nope"]) == 2
    assert "unknown sort column 'nope'" in capsys.readouterr().err


def test_html_is_self_contained_and_escaped(lb, capsys, tmp_path):
    out = tmp_path / "board.html"
    output(lb, capsys, "--format", "html", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "Qwen &lt;3B&gt; run" in page and "Qwen <3B>" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    e = entry(lb, "reference-visual-arft-3b-mat-search")
    assert f">{100 * e.scores['simple']['f1']:.2f}<" in page
    assert "<svg" in page and page.count('class="chart"') == 6
    assert "published predictions, rescored" in page and "not rescored by matbench" in page


def test_write_regenerates_readme_and_index(lb, capsys):
    assert "wrote" in output(lb, capsys, "--write")
    assert (lb / "README.md").read_text().startswith("# matbench leaderboard")
    assert "<table" in (lb / "index.html").read_text()


def test_empty_leaderboard_is_an_error(tmp_path, capsys):
    assert main(["leaderboard", "--leaderboard-dir", str(tmp_path)]) == 2
    assert "no leaderboard entries" in capsys.readouterr().err


def test_env_var_selects_the_directory(lb, capsys, monkeypatch):
    monkeypatch.setenv("MATBENCH_LEADERBOARD_DIR", str(lb))
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    assert "Qwen <3B> run" in capsys.readouterr().out
