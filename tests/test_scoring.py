"""The visual-arft scorer must reproduce the authors' notebooks on their published predictions (1e-4)."""

from __future__ import annotations

import json

import pytest
from runtime_helpers import run_cli

from matbench.scoring.predictions import score_file
from matbench.scoring.rules import normalize_answer, score_squad, score_visual_arft
from matbench.tasks import get_task

# file, task, {split: (F1, EM)} in percent, from ../shared/fixtures/README.md
TABLE = [
    (
        "7b_mat_coding_grpo_step1400.json",
        "mat-coding",
        {"simple": (60.0963, 51.4286), "hard": (45.6015, 25.3846), "all": (50.6747, 34.5000)},
    ),
    (
        "7b_mat_coding_grpo_step1400_v2.json",
        "mat-coding",
        {"simple": (61.5248, 52.8571), "hard": (45.1290, 25.3846), "all": (50.8675, 35.0000)},
    ),
    (
        "3b_mat_coding_grpo_step1400.json",
        "mat-coding",
        {"simple": (49.7819, 40.0000), "hard": (28.4185, 13.0769), "all": (35.8957, 22.5000)},
    ),
    (
        "7b_step200_mat_search_web_n4.json",
        "mat-search",
        {"simple": (71.7778, 66.6667), "hard": (55.7668, 44.0000), "all": (63.7723, 55.3333)},
    ),
    (
        "3b_step200_mat_search_web_n4.json",
        "mat-search",
        {"simple": (59.6444, 54.6667), "hard": (47.7503, 37.3333), "all": (53.6974, 46.0000)},
    ),
    ("7b_step200_2wiki_web_n4.json", "2wikimultihopqa", {"all": (63.0918, 51.9879)}),
    ("7b_step200_hotpotqa_web_n4.json", "hotpotqa", {"all": (48.0065, 36.4754)}),
    ("7b_step200_musique_web_n4.json", "musique", {"all": (22.7104, 14.0670)}),
    ("7b_step200_bamboogle_web_n4.json", "bamboogle", {"all": (60.1479, 48.8000)}),
]


def _check(result: dict, expected: dict) -> None:
    for split, (f1, em) in expected.items():
        part = result if split == "all" else result["splits"][split]
        assert part["f1"] * 100 == pytest.approx(f1, abs=1e-4), split
        assert part["em"] * 100 == pytest.approx(em, abs=1e-4), split


@pytest.mark.parametrize("fname,task,expected", TABLE, ids=[t[0] for t in TABLE])
def test_reproduces_authors_table(fixtures_dir, fname, task, expected):
    result = score_file(fixtures_dir / "predictions" / "visual-arft" / fname, get_task(task))
    _check(result, expected)
    if "simple" in expected:
        assert result["splits"]["simple"]["n"] + result["splits"]["hard"]["n"] == result["n"]


@pytest.mark.parametrize("fname,task,expected", [TABLE[2], TABLE[8]], ids=["coding-3b", "bamboogle"])
def test_score_cli_json(fixtures_dir, fname, task, expected):
    out = run_cli(
        [
            "score",
            str(fixtures_dir / "predictions/visual-arft" / fname),
            "--task",
            task,
            "--json",
        ]
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"task", "scoring", "n", "missing", "errors", "f1", "em", "splits"}
    assert result["scoring"] == "visual-arft"
    _check(result, expected)


def test_score_cli_table(fixtures_dir):
    out = run_cli(
        [
            "score",
            str(fixtures_dir / "predictions/visual-arft/7b_step200_mat_search_web_n4.json"),
            "--task",
            "mat-search",
        ]
    )
    assert out.returncode == 0, out.stderr
    out = out.stdout
    assert "71.78" in out and "66.67" in out and "63.77" in out


def test_rules():
    # the quirk: a gold "A" normalises to "", and so does a prediction "a"
    assert normalize_answer("A") == ""
    assert score_visual_arft("a", ["A"]).em == 1.0
    assert score_visual_arft("a", ["A"]).f1 == 1.0  # EM=1 forces F1=1
    assert score_visual_arft(None, ["x"]).f1 == 0.0
    # SET overlap vs COUNT overlap: duplicates in the prediction
    assert score_visual_arft("paris paris", ["paris"]).f1 == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert score_squad("paris paris", ["paris"]).f1 == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert score_visual_arft("paris paris london", ["paris paris"]).f1 == pytest.approx(
        2 * (1 / 3) * 0.5 / (1 / 3 + 0.5)
    )
    assert score_squad("paris paris london", ["paris paris"]).f1 == pytest.approx(0.8)
    # CJK only with the MAT-Coding flag: spaces dropped, compared by character, full-width punctuation stripped
    assert score_visual_arft("软件 工程！", ["软件工程"], cjk=True).em == 1.0
    assert score_visual_arft("软件工", ["软件工程"], cjk=True).f1 == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert score_visual_arft("软件工", ["软件工程"]).f1 == 0.0
    # max F1 and max EM over several golds
    assert score_visual_arft("March 14, 2017", ["March 14th, 2017", "March 14, 2017"]).em == 1.0
    assert score_squad("yes", ["no"]).f1 == 0.0


def test_squad_variant_differs(fixtures_dir):
    spec = get_task("hotpotqa")
    path = fixtures_dir / "predictions/visual-arft/7b_step200_hotpotqa_web_n4.json"
    a = score_file(path, spec, "visual-arft")
    b = score_file(path, spec, "squad")
    assert b["scoring"] == "squad" and a["em"] == pytest.approx(b["em"])
    assert a["f1"] != b["f1"]
