"""The literature's rows: every numeric cell of SenseNova-MARS's MAT-Search column (their README at the pinned
commit, parsed here from the fixture copy) is a shipped `reported` judge-accuracy entry with its provenance,
listed apart from F1/EM and never ranked with reproduced runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from matbench.cli import main
from matbench.report import leaderboard_dir, submissions_dir
from matbench.report.entries import load_entries, sha256_file
from matbench.report.literature import LITERATURE_FILE, load_literature

SHIPPED = submissions_dir(leaderboard_dir(Path(__file__).resolve().parents[1] / "leaderboard"))


@pytest.fixture(scope="module")
def readme(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "sensenova-mars-readme" / "README.md"
    if not path.is_file():  # a full fixtures folder holds it (scripts/fetch-fixtures.sh); shared/ may not
        pytest.skip(f"{path} is absent: the cells quoted in the issue are checked by the next test")
    return path


# The cells issue 19 quotes from their table: (section, system) -> MAT-Search judge accuracy (percent).
QUOTED = {
    ("Agentic Model (zero-shot)", "GPT-4o"): 76.67,
    ("Agentic Model (zero-shot)", "GPT-5"): 84.67,
    ("Agentic Model (zero-shot)", "GPT-5.2"): 80.67,
    ("Agentic Model (zero-shot)", "Gemini-3-Pro"): 86.00,
    ("Agentic Model (zero-shot)", "Qwen3-VL-8B"): 84.00,
    ("Agentic Model (zero-shot)", "Qwen2.5-VL-7B"): 67.33,
    ("Agentic Model", "Visual-ARFT"): 74.00,
    ("Agentic Model", "MMSearch-R1"): 74.00,
    ("Agentic Model", "SenseNova-MARS-8B"): 84.67,
    ("Direct Answer", "GPT-4o"): 79.33,
}


def test_the_quoted_cells_are_shipped_entries():
    got = {(e.source["section"], e.name): e for e in literature()}
    for key, value in QUOTED.items():
        matches = [e for (section, name), e in got.items() if section == key[0] and name.startswith(key[1])]
        assert any(e.reported["accuracy"] == value for e in matches), (key, [e.name for e in matches])
    assert len(got) == 26


def literature() -> list:
    return [e for e in load_entries(SHIPPED) if e.judge_only]


def test_every_mat_search_cell_is_a_shipped_entry(readme):
    src = load_literature()["sensenova-mars"]
    assert sha256_file(readme) == src["file_sha256"]
    text = readme.read_text(encoding="utf-8")
    table = text[text.index("Search-oriented benchmarks") :]
    table = table[: table.index("</table>")]
    expected, section = [], ""
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if len(cells) == 1:
            section = cells[0]
            continue
        system, cell = cells[-9], cells[-1]  # Model, Average, six benchmarks, MAT-Search (last column)
        expected.append((section, system, cell))
    assert len(expected) == 28 and {s for s, _, _ in expected} == {
        "Direct Answer",
        "Agentic Model (zero-shot)",
        "Agentic Model",
    }
    got = {(e.source["section"], e.name): e for e in literature()}
    numeric = [(s, m, float(c)) for s, m, c in expected if c != "-"]
    assert len(got) == len(numeric) == 26
    for section, system, value in numeric:
        e = got[(section, system)]
        assert e.reported["accuracy"] == value and e.judge["accuracy"] == pytest.approx(value / 100)
        assert e.judge["model"] == "gpt-4o" and e.judge["prompt"] == "sensenova-mars" and e.judge["n"] == 150
        lo, hi = e.judge["ci95"]
        assert lo < value / 100 < hi
        assert e.metric == "judge accuracy (GPT-4o judge, SenseNova-MARS protocol)"
        assert e.source["commit"] == "0607019d6c1201cce7b4d07109e36b85b4c1fb39"
        assert e.source["file"] == "README.md" and "OpenSenseNova/SenseNova-MARS" in e.source["repository"]
        assert e.kind == "reported" and e.scores == {} and "not rescored by matbench" in e.provenance


def test_rebuilding_reproduces_shipped_literature(tmp_path, capsys):
    assert main(["submit", "--literature", "--leaderboard-dir", str(tmp_path)]) == 0
    rebuilt = {e.key: e.to_dict() for e in load_entries(tmp_path / "submissions")}
    ours = {e.key: e.to_dict() for e in literature()}
    assert rebuilt.keys() == ours.keys()
    for key, entry in rebuilt.items():
        entry.pop("submitted_at"), ours[key].pop("submitted_at")
        assert entry == ours[key], key
    assert LITERATURE_FILE.is_file()


def test_literature_is_shown_apart_and_never_ranked(capsys):
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ranked = {s for task in data["rankings"].values() for group in task for s in group["systems"]}
    listed = {r["system"] for r in data["rows"]}
    assert "SenseNova-MARS-8B" not in ranked | listed and "Gemini-3-Pro" not in ranked | listed
    assert len(data["literature"]) == 26
    assert main(["leaderboard", "--format", "md"]) == 0
    md = capsys.readouterr().out
    section = md[md.index("## MAT-Search — reported in the literature") :]
    assert "judge accuracy (GPT-4o judge, SenseNova-MARS protocol)" in section
    assert "| Agentic Model (zero-shot) | GPT-4o | 76.67 (n=150, 95% CI" in section
    head = md[: md.index("## MAT-Search — reported in the literature")]
    assert "SenseNova-MARS-8B" not in head and "Gemini-3-Pro" not in head  # never in an F1/EM table
