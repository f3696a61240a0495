"""The Scorer seam: scorers come from the SCORERS registry with the task's parameters, and ``anls`` (one file)
gives the hand-computed values of the definition lmms-eval and VLMEvalKit use."""

from __future__ import annotations

import json

import pytest

from matbench.cli import main
from matbench.errors import ConfigError
from matbench.registry import SCORERS
from matbench.scoring.anls import Anls
from matbench.scoring.base import make_scorer, task_params
from matbench.scoring.reader import RunScorer
from matbench.scoring.rules import VisualArft
from matbench.tasks import get_task


@pytest.mark.parametrize(
    "prediction,golds,anls,em",
    [
        ("hello wrld", ["hello world"], 1 - 1 / 11, 0.0),  # one deletion over 11 characters
        ("Kitten", ["sitting"], 1 - 3 / 7, 0.0),  # k->s, e->i, +g: 3 edits over 7
        ("abcd", ["abxy"], 0.5, 0.0),  # similarity exactly 0.5 still counts (>= threshold)
        ("abcde", ["abxyz"], 0.0, 0.0),  # 0.4 < 0.5: zero
        ("abc", ["xyz"], 0.0, 0.0),
        ("  Hello \n  World ", ["hello world"], 1.0, 1.0),  # case and runs of whitespace normalised
        ("1,234", ["1234", "1,23"], 1 - 1 / 5, 0.0),  # the best of the gold answers (1 edit over 5)
        ("", [""], 1.0, 1.0),
        (None, ["x"], 0.0, 0.0),  # no prediction
    ],
)
def test_anls_hand_computed(prediction, golds, anls, em):
    s = Anls()(prediction, golds)
    assert s.f1 == pytest.approx(anls, abs=1e-12)
    assert s.em == em


def test_anls_threshold_from_task_spec():
    # a key named after the scorer holds that scorer's own parameters; shared keys (cjk) do not reach it
    block = {"default": "visual-arft", "cjk": True, "anls": {"threshold": 0.6}}
    assert task_params(block, "anls") == {"cjk": True, "threshold": 0.6}
    scorer = make_scorer("anls", block)
    assert isinstance(scorer, Anls) and scorer.threshold == 0.6
    assert scorer("Kitten", ["sitting"]).f1 == 0.0  # 4/7 < 0.6
    with pytest.raises(ConfigError, match="threshold"):
        make_scorer("anls", {"anls": {"threshold": 2}})


def test_cjk_comes_from_the_task_spec():
    coding, search = RunScorer(get_task("mat-coding")), RunScorer(get_task("mat-search"))
    assert isinstance(coding.scorer, VisualArft) and coding.scorer.cjk is True
    assert isinstance(search.scorer, VisualArft) and search.scorer.cjk is False
    assert coding("软件工", ["软件工程"]).f1 > 0 and search("软件工", ["软件工程"]).f1 == 0.0


def test_run_scorer_reads_the_run_config():
    spec = get_task("hotpotqa")
    assert RunScorer.of_run(spec, {"scoring": "squad"}).name == "squad"
    assert RunScorer.of_run(spec, {"scoring": "squad"}, "anls").name == "anls"  # --scoring wins
    assert RunScorer.of_run(spec, {}).name == spec.default_scoring  # a config without one: the task's
    with pytest.raises(ConfigError, match="unknown scorer 'nope'.*visual-arft, squad, anls"):
        RunScorer.of_run(spec, {"scoring": "nope"})


def test_scorers_registry_lists_every_builtin():
    assert SCORERS.names()[:3] == ["visual-arft", "squad", "anls"]


def test_score_cli_anls(tmp_path, capsys):
    path = tmp_path / "preds.json"
    rows = [
        {"id": "1", "gt": ["hello world"], "pred_answer": "hello wrld"},
        {"id": "2", "gt": ["sitting"], "pred_answer": "Kitten"},
        {"id": "3", "gt": ["abc"], "pred_answer": "xyz"},
        {"id": "4", "gt": ["Paris"], "pred_answer": "paris"},
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    # these golds are not bamboogle's: give them as the data (a plain file is checked against the task's golds)
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "question": "q", "golden_answers": r["gt"]}) + "\n"
                            for r in rows), encoding="utf-8")
    assert main(["score", str(path), "--task", "bamboogle", "--scoring", "anls"]) == 2
    assert "not task bamboogle's" in capsys.readouterr().err
    given = ["--data-file", str(data)]
    assert main(["score", str(path), "--task", "bamboogle", "--scoring", "anls", "--json", *given]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scoring"] == "anls"
    assert result["f1"] == pytest.approx((10 / 11 + 4 / 7 + 0 + 1) / 4)
    assert result["em"] == pytest.approx(0.25)
    assert main(["score", str(path), "--task", "bamboogle", "--scoring", "anls", *given]) == 0
    table = capsys.readouterr().out
    assert "scoring=anls" in table and "ANLS" in table.splitlines()[1] and "F1" not in table


def test_scoring_choices_come_from_the_registry(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path), "--task", "bamboogle", "--scoring", "bogus"])
    err = capsys.readouterr().err
    assert "'visual-arft', 'squad', 'anls'" in err
