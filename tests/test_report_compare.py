"""`matbench compare`: paired bootstrap intervals, won/lost/tied counts, breakdowns, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_helpers import PRED, make_coding_data, make_coding_run

from matbench.cli import main
from matbench.records.run_dir import RunDir, SampleRecord
from matbench.report.compare import compare, load_side
from matbench.scoring.bootstrap import bootstrap_means


def tiny_run(path: Path, preds: dict[str, str | None]) -> Path:
    """A hand-made 2Wiki-style run: gold answers fixed, predictions given."""
    gold = {
        "a": ["Paris"],
        "b": ["Barack Obama"],
        "c": ["1999"],
        "d": ["red apple"],
        "e": ["Nile"],
        "f": ["Danube"],
    }
    rd = RunDir(path)
    rd.create({"task": {"name": "bamboogle", "version": "1.0"}, "scoring": "visual-arft"})
    for rid, pred in preds.items():
        rd.append(SampleRecord(rid, None, f"q {rid}", gold[rid], pred, 0.0, 0.0))
    return path


def test_hand_made_pair_counts(tmp_path):
    a = tiny_run(tmp_path / "a", {"a": "Paris", "b": "Obama", "c": "2000", "d": "red apple", "e": "Nile"})
    b = tiny_run(tmp_path / "b", {"a": "Paris", "b": "Barack Obama", "c": "1999", "d": "apple", "f": None})
    result = compare(load_side(a), load_side(b), resamples=2000, seed=1)
    # a: tie (1 vs 1); b: B wins (0.667 -> 1); c: B wins (0 -> 1); d: B loses (1 -> 0.667); e only in A, f only in B
    assert (result.paired, result.only_a, result.only_b) == (4, 1, 1)
    g = result.overall
    assert (g.won, g.lost, g.tied) == (2, 1, 1)
    assert g.a_em == pytest.approx(0.5) and g.b_em == pytest.approx(0.75)
    assert g.diff_f1 == pytest.approx(g.b_f1 - g.a_f1)
    assert g.ci_f1[0] <= g.diff_f1 <= g.ci_f1[1]


def test_authors_7b_vs_3b_json(fixtures_dir, capsys):
    p = fixtures_dir / PRED
    args = [
        "compare",
        str(p / "3b_mat_coding_grpo_step1400.json"),
        str(p / "7b_mat_coding_grpo_step1400.json"),
    ]
    assert main([*args, "--task", "mat-coding", "--json", "--seed", "3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--task", "mat-coding", "--json", "--seed", "3"]) == 0
    again = json.loads(capsys.readouterr().out)
    first.pop("seconds"), again.pop("seconds")
    assert first == again  # deterministic with a seed
    g = first["overall"]
    assert g["n"] == 200 and g["won"] + g["lost"] + g["tied"] == 200
    assert round(100 * g["a_f1"], 4) == 35.8957 and round(100 * g["b_f1"], 4) == 50.6747
    for key in ("f1", "em"):
        lo, hi = g[f"ci_{key}"]
        assert lo <= g[f"diff_{key}"] <= hi and lo < hi
    assert [s["group"] for s in first["splits"]] == ["simple", "hard"]
    assert sum(s["n"] for s in first["splits"]) == 200
    assert main([*args, "--task", "mat-coding", "--json", "--seed", "4"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["overall"]["ci_f1"] != first["overall"]["ci_f1"]
    assert other["overall"]["diff_f1"] == first["overall"]["diff_f1"]


def test_runs_with_degradation_types(fixtures_dir, tmp_path, capsys):
    data = make_coding_data(fixtures_dir, tmp_path / "data")
    a = make_coding_run(fixtures_dir, tmp_path / "a", data, pred_file="3b_mat_coding_grpo_step1400.json")
    b = make_coding_run(fixtures_dir, tmp_path / "b", data)
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "200 paired samples" in text and "type:rotation90" in text and "type:dark" in text
    result = compare(load_side(a), load_side(b))
    types = {g.group: g.n for g in result.types}
    both = sum(1 for r in RunDir(a).read_records() if set(r["metadata"]["type"]) == {"rotation90", "dark"})
    only_dark = sum(1 for r in RunDir(a).read_records() if r["metadata"]["type"] == ["dark"])
    assert both > 0 and types["dark"] == both + only_dark  # a two-type sample counts toward each type
    assert sum(types.values()) == 200 + both


def test_different_tasks_refused(fixtures_dir, tmp_path, capsys):
    p = fixtures_dir / PRED
    run = tiny_run(tmp_path / "a", {"a": "Paris"})
    assert (
        main(["compare", str(run), str(p / "7b_mat_coding_grpo_step1400.json"), "--task", "mat-coding"]) == 2
    )
    assert "is a run of task bamboogle, not mat-coding" in capsys.readouterr().err
    other = tiny_run(tmp_path / "b", {"a": "Paris"})
    config = RunDir(other).read_config()
    RunDir(other).write_config({**config, "task": {"name": "musique", "version": "1.0"}})
    assert main(["compare", str(run), str(other)]) == 2
    assert "different tasks" in capsys.readouterr().err


def test_bootstrap_matches_naive_resampling():
    rng = np.random.default_rng(7)
    values = np.stack([rng.choice([-1.0, 0.0, 0.0, 1.0, 0.5, -0.25], 3000), rng.random(3000)], axis=1)
    fast = bootstrap_means(values, 4000, np.random.default_rng(0))
    idx = np.random.default_rng(1).integers(0, len(values), size=(4000, len(values)))
    naive = values[idx].mean(axis=1)
    assert fast.shape == (4000, 2)
    assert fast.mean(axis=0) == pytest.approx(values.mean(axis=0), abs=2e-3)
    assert fast.std(axis=0) == pytest.approx(naive.std(axis=0), rel=0.08)
