"""The newcomer's papercuts (issue 21): each test here failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

from matbench.display import score_table
from matbench.records.run_dir import RunDir, SampleRecord
from matbench.scoring.predictions import score_file
from matbench.scoring.totals import RunTotals
from matbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def _rec(rid: str, pred: str | None, gold: list[str], status: str = "ok") -> SampleRecord:
    return SampleRecord(
        id=rid, split=None, question=f"q {rid}", gold=gold, prediction=pred, f1=0.0, em=0.0, status=status,
        turns=1, tool_calls={}, tokens={"input": 3, "output": 2}, trajectory=[{"turn": 1, "output": "x"}],
    )


def _run(tmp_path, records: list[SampleRecord]) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.create({"fingerprint": "f", "task": {"name": "bamboogle"}, "scoring": "visual-arft"})
    for r in records:
        run.append(r)
    return run


# --- 3. API errors are never a score ---------------------------------------------------------------------------
def test_api_errors_are_counted_apart_not_scored(tmp_path):
    spec = get_task("bamboogle")
    run = _run(tmp_path, [_rec("test_0", "x", ["x"]), _rec("test_1", None, ["y"], "error"),
                          _rec("test_2", None, ["z"], "error")])
    totals = RunTotals.from_run(run, spec, "visual-arft")
    summary = totals.summary(model="m", run_dir=str(run.path), fingerprint="f",
                             sample_ids=["test_0", "test_1", "test_2"], duration=1.0)
    assert summary["n"] == 1 and summary["errors"] == 2
    assert summary["f1"] == 1.0 and summary["em"] == 1.0  # over the one scored sample, not 1/3
    result = score_file(run.path, spec, "visual-arft")
    assert (result["n"], result["errors"], result["em"]) == (1, 2, 1.0)
    text = score_table(result)
    assert "API errors=2" in text and "--retry-errors" in text


def test_a_run_of_only_api_errors_scores_nothing_and_says_so(tmp_path):
    spec = get_task("bamboogle")
    run = _run(tmp_path, [_rec("test_0", None, ["x"], "error"), _rec("test_1", None, ["y"], "error")])
    result = score_file(run.path, spec, "visual-arft")
    assert result["n"] == 0 and result["errors"] == 2
    assert "API errors=2" in score_table(result)


# --- 12. small things ---------------------------------------------------------------------------------------------
def test_verbose_is_accepted_after_the_command():
    from matbench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["tasks", "-v"]).verbose is True
    assert parser.parse_args(["-v", "tasks"]).verbose is True
    assert parser.parse_args(["tasks"]).verbose is False


def test_counts_read_as_english():
    from matbench.display import plural

    assert plural(1, "row") == "1 row" and plural(2, "row") == "2 rows" and plural(1024, "row") == "1,024 rows"
    assert plural(0, "entry", "entries") == "0 entries"


# --- 11. messages name commands that exist ---------------------------------------------------------------------
def test_missing_serper_key_names_a_search_spec_that_works(monkeypatch):
    import pytest

    from matbench.errors import ConfigError
    from matbench.tools.search.registry import parse_spec
    from matbench.tools.search.serper import SerperSearch

    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    with pytest.raises(ConfigError) as err:
        SerperSearch()
    hint = str(err.value)
    assert "--search local:INDEX_DIR" in hint
    spec = hint.split("--search ")[1].split()[0]
    assert parse_spec(spec) == ("local", "INDEX_DIR")  # the named spec carries the index argument


# --- 7. scoring the wrong task is refused ----------------------------------------------------------------------
def test_scoring_another_tasks_file_is_refused_in_one_line(fixtures_dir, capsys):
    from matbench.cli import main

    search = fixtures_dir / "predictions/visual-arft/7b_step200_mat_search_web_n4.json"
    assert main(["score", str(search), "--task", "mat-coding"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not task mat-coding's" in err and "--task" in err
    assert main(["compare", str(search), str(search), "--task", "mat-coding"]) == 2
    assert main(["score", str(search), "--task", "mat-search"]) == 0  # the right task still scores


def test_a_few_edited_gold_answers_still_score(fixtures_dir, tmp_path):
    """An edited local copy (a fixed gold answer) is not another task: submit decides officialness."""
    rows = json.loads((fixtures_dir / "predictions/visual-arft/7b_mat_coding_grpo_step1400.json").read_text())
    rows[0]["gt"] = ["something else"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(rows))
    assert score_file(path, get_task("mat-coding"), "visual-arft")["n"] == 200


def test_shipped_gold_index_is_the_official_gold_set(fixtures_dir):
    """tasks/gold/*.tsv.gz hold exactly the per-id hashes of the sets pinned by data.gold_sha256."""
    import importlib.util

    from matbench.data.gold_index import answers_hash, gold_index
    from matbench.report.official import gold_digest

    spec_ = importlib.util.spec_from_file_location("build_gold", ROOT / "scripts" / "build-gold-index.py")
    build = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(build)
    for task, samples in build.official_samples(fixtures_dir).items():
        spec = get_task(task)
        assert gold_digest(samples) == spec.data["gold_sha256"]
        assert gold_index(spec) == {s.id: answers_hash(s.answers) for s in samples}, task


# --- 6. a resume that has nothing to do changes nothing ----------------------------------------------------------
def _quickstart(tmp_path, *extra: str) -> list[str]:
    demo = ROOT / "matbench" / "data" / "demo"
    return ["eval", "--model", "scripted:quickstart", "--task", "hotpotqa", "--protocol", "matbench-wording",
            "--data-dir", str(demo / "hotpotqa"), "--search", f"local:{demo / 'hotpotqa-paragraphs.jsonl'}",
            "--limit", "5", "--no-progress", "--cache-dir", str(tmp_path / "cache"), *extra]


def test_a_finished_run_resumed_keeps_its_summary(tmp_path, capsys):
    from matbench.cli import main

    argv = _quickstart(tmp_path, "--run-dir", str(tmp_path / "run"))
    assert main(argv) == 0
    summary = tmp_path / "run" / "summary.json"
    before = summary.read_bytes()
    capsys.readouterr()
    assert main(argv) == 0
    assert summary.read_bytes() == before  # not rewritten with a 0.008 s run of zero calls
    captured = capsys.readouterr()
    assert "nothing to do: all 5 samples are recorded" in captured.err
    assert "hotpotqa" in captured.out  # the table is still printed, from the kept summary


# --- 1. a new configuration is a new run -------------------------------------------------------------------------
def test_a_changed_configuration_is_a_new_run_directory(tmp_path, capsys):
    from matbench.cli import main

    root = tmp_path / "runs"
    argv = _quickstart(tmp_path, "--runs-root", str(root))
    assert main(argv) == 0
    (first,) = root.iterdir()
    assert first.name.startswith("scripted-quickstart_hotpotqa_")
    assert f"new run: {first}" in capsys.readouterr().err
    assert main(argv) == 0  # the same command resumes the same directory
    assert list(root.iterdir()) == [first] and "nothing to do" in capsys.readouterr().err
    assert main([*argv, "--temperature", "0.7"]) == 0  # a changed one starts fresh, and says where
    (second,) = set(root.iterdir()) - {first}
    assert f"new run: {second}" in capsys.readouterr().err
    assert main([*argv, "--limit", "6"]) == 0  # a larger selection of the same configuration extends the run
    assert set(root.iterdir()) == {first, second}
    # --run-dir pins a directory: a changed configuration there is still refused, naming the key
    assert main([*argv, "--run-dir", str(first), "--protocol", "direct"]) == 2
    assert "changed:" in capsys.readouterr().err


# --- 2. the response cache is opt-in across runs -----------------------------------------------------------------
def test_a_new_run_never_replays_another_runs_answers_unless_asked(tmp_path, capsys):
    from matbench.cli import main

    argv = _quickstart(tmp_path, "--temperature", "0")  # deterministic: cacheable
    assert main([*argv, "--run-dir", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*argv, "--run-dir", str(tmp_path / "b"), "--json"]) == 0
    (b,) = json.loads(capsys.readouterr().out)
    assert b["run"]["response_cache"]["hits"] == 0 and b["run"]["response_cache"]["misses"] > 0
    assert main([*argv, "--run-dir", str(tmp_path / "c"), "--response-cache"]) == 0
    out = capsys.readouterr().out
    assert "answers from the response cache:" in out and "--response-cache" in out
    # resuming the same run replays its own calls: cut run a back to two samples, as an interrupt would
    preds = tmp_path / "a" / "predictions.jsonl"
    preds.write_text("".join(preds.read_text().splitlines(keepends=True)[:2]))
    assert main([*argv, "--run-dir", str(tmp_path / "a"), "--json"]) == 0
    (a,) = json.loads(capsys.readouterr().out)
    assert a["run"]["response_cache"]["hits"] > 0 and a["run"]["response_cache"]["misses"] == 0
    assert main([*argv, "--run-dir", str(tmp_path / "d"), "--no-response-cache", "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert "response_cache" not in d["run"]  # still accepted: no cache at all


def test_the_summary_line_reads_as_text(tmp_path, capsys):
    from matbench.cli import main

    assert main(_quickstart(tmp_path, "--run-dir", str(tmp_path / "run"))) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("errors="))
    assert "tool_calls=search:8 " in line and "{" not in line  # no Python dict in what a person reads
