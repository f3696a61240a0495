"""The leaderboard ranks only official, complete, verifiable runs: `matbench submit` checks the data against
the gold set the task spec pins, recomputes what the config claims, checks each prediction against its own
trajectory, builds file names from sanitised parts; `leaderboard/README.md` escapes every field and every
cell shows n and a 95 % interval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_helpers import (
    edit_json,
    edit_records,
    make_coding_data,
    make_coding_run,
    one_turn,
    stamped,
    write_summary,
)

from matbench.cli import main
from matbench.data.loaders import load_samples
from matbench.data.sample import Sample
from matbench.records.run_dir import RunDir, SampleRecord
from matbench.report.entries import load_entries
from matbench.report.official import gold_digest
from matbench.run.config import config_fingerprint
from matbench.scoring.base import make_scorer
from matbench.scoring.table import Scored
from matbench.tasks import get_task


@pytest.fixture(scope="module")
def coding_data(fixtures_dir: Path, tmp_path_factory) -> Path:
    return make_coding_data(fixtures_dir, tmp_path_factory.mktemp("data") / "mat-coding")


@pytest.fixture
def run(fixtures_dir: Path, coding_data: Path, tmp_path: Path) -> Path:
    return make_coding_run(fixtures_dir, tmp_path / "run", coding_data)


def test_pinned_gold_digests_are_the_fixtures_full_gold_sets(fixtures_dir):
    mat = fixtures_dir / "mat"
    coding = json.loads((mat / "mat-coding-answers.json").read_text(encoding="utf-8"))
    search = json.loads((mat / "mat-search-questions.json").read_text(encoding="utf-8"))
    digests = {
        "mat-coding": gold_digest(Sample(str(r["id"]), "", r["answers"], split=r["split"]) for r in coding),
        "mat-search": gold_digest(Sample(str(r["id"]), "", [r["answer"]], split=r["split"]) for r in search),
    }
    for task, name in (
        ("2wikimultihopqa", "dev"),
        ("hotpotqa", "dev"),
        ("musique", "dev"),
        ("bamboogle", "test"),
    ):
        samples = load_samples(get_task(task), data_file=fixtures_dir / "multihop" / task / f"{name}.jsonl")
        digests[task] = gold_digest(samples)
    assert {t: get_task(t).data["gold_sha256"] for t in digests} == digests


def perfect_run(run: Path, data: Path, config_from: Path) -> Path:
    """A finished run that answers every sample of ``data`` with its first gold answer."""
    spec = get_task("mat-coding")
    scorer = make_scorer("visual-arft", spec.scoring)
    config = RunDir(config_from).read_config()
    config["task"].update(data_dir=str(data))
    config["fingerprint"] = config_fingerprint(config)
    rd = RunDir(run)
    rd.create(config)
    scored = []
    for s in load_samples(spec, data_dir=data):
        pred = s.answers[0]
        r = scorer(pred, s.answers)
        traj, tokens = stamped(one_turn(pred), s.question)
        rec = SampleRecord(s.id, s.split, s.question, list(s.answers), pred, r.f1, r.em, trajectory=traj)
        rec.tokens = tokens
        rd.append(rec)
        scored.append(Scored(s.id, s.split, r.f1, r.em))
    write_summary(rd, scored, config["model"]["spec"])
    return run


def _submit(run: Path, lb: Path, capsys, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["submit", str(run), "--leaderboard-dir", str(lb), *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _board(lb: Path, capsys) -> tuple[str, dict]:
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard-dir", str(lb), "--write"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard-dir", str(lb), "--format", "json"]) == 0
    return (lb / "README.md").read_text(encoding="utf-8"), json.loads(capsys.readouterr().out)


def test_runs_on_edited_or_partial_data_are_unofficial_and_never_ranked(
    run, coding_data, fixtures_dir, tmp_path, capsys
):
    lb = tmp_path / "lb"
    rc, out, _ = _submit(run, lb, capsys, "--name", "Official")
    assert rc == 0 and "UNOFFICIAL" not in out
    forged = tmp_path / "forged"
    shutil_copy(coding_data, forged)
    edit_json(forged / "MAT-Coding.json", lambda rows: [r.update(answers=["x"]) for r in rows])
    demo = fixtures_dir / "mat" / "coding-demo"
    for name, data in (("Forged", forged), ("Demo", demo)):
        rc, out, err = _submit(perfect_run(tmp_path / name, data, run), lb, capsys, "--name", name)
        assert rc == 0, err
        assert (
            "as an UNOFFICIAL entry (shown apart, never ranked: the data is not the official mat-coding"
            in out
        )
    by_name = {e.name: e for e in load_entries(lb / "submissions")}
    assert by_name["Official"].official and not by_name["Forged"].official and not by_name["Demo"].official
    assert by_name["Forged"].scores["all"]["f1"] == 1.0 and by_name["Demo"].n == 6
    readme, board = _board(lb, capsys)
    assert [r["system"] for r in board["rows"]] == ["Official"]
    assert sorted(u["system"] for u in board["unofficial"]) == ["Demo", "Forged"]
    ranked = readme.split("## Unofficial runs (not ranked)")[0]
    assert "Forged" not in ranked and "Demo" not in ranked
    assert re.search(r"\| Demo \| MAT-Coding \| .*\(n=6, 95% CI", readme)
    assert re.search(
        r"\| 1 \| Official \|.*\(n=200, 95% CI \d+\.\d\d–\d+\.\d\d / \d+\.\d\d–\d+\.\d\d\)", readme
    )


def shutil_copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst)


def _refingerprint(cfg: dict) -> None:
    cfg["fingerprint"] = config_fingerprint(cfg)


def _set(*path_value):
    *path, value = path_value

    def apply(cfg: dict) -> None:
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        _refingerprint(cfg)

    return apply


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda c: c["model"].update(spec="gpt-4o"), "config.json was edited: its fingerprint"),
        (
            _set("model", "spec", "gpt-4o"),
            "summary.json names model 'qwen2.5-vl-7b' but config.json 'gpt-4o'",
        ),
        (_set("task", "spec_sha256", "f" * 64), "the run used an edited task spec (sha256 ffffffffffff)"),
        (
            _set("protocol", "sha256", "e" * 64),
            "protocol strings (sha256 eeeeeeeeeeee) are not the stock ones",
        ),
        (_set("options", "max_calls", 10), "config.json says options.max_calls=10 but task mat-coding sets"),
        (_set("decoding", "max_new_tokens", 4096), "decoding.max_new_tokens=4096 but task mat-coding sets"),
        (_set("options", "top_k", 8), "config.json says options.top_k=8"),
    ],
)
def test_submit_recomputes_what_the_config_claims(run, tmp_path, capsys, edit, reason):
    edit_json(run / "config.json", edit)
    rc, _, err = _submit(run, tmp_path / "lb", capsys)
    assert rc == 2 and reason in err, err
    assert not (tmp_path / "lb" / "submissions").exists()


def test_each_prediction_must_be_its_trajectorys_answer(run, tmp_path, capsys):
    gold = {}

    def forge(
        rec,
    ):  # a wrong answer replaced by the gold one, with a consistent score: only the trajectory knows
        if rec["em"] == 0 and not gold:
            gold[rec["id"]] = rec["gold"][0]
            rec.update(prediction=rec["gold"][0], f1=1.0, em=1.0)
        return rec

    edit_records(run, forge)
    ((rid, answer),) = gold.items()
    rc, _, err = _submit(run, tmp_path / "lb", capsys)
    assert rc == 2 and f"sample {rid}: the prediction {json.dumps(answer, ensure_ascii=False)}" in err
    assert "is not the answer of its trajectory's last turn" in err


def test_entry_file_names_come_only_from_sanitised_parts(run, tmp_path, capsys):
    lb = tmp_path / "deep" / "lb"
    edit_json(run / "config.json", lambda c: c.update(fingerprint="../../../../outside"))
    rc, _, err = _submit(run, lb, capsys)
    assert rc == 2 and "its fingerprint '../../../../outside' does not match" in err
    edit_json(run / "config.json", _set("model", "spec", "../../../../outside/x"))
    edit_json(run / "summary.json", lambda s: s["run"].update(model="../../../../outside/x"))
    rc, out, err = _submit(run, lb, capsys)
    assert rc == 0, err
    (path,) = (lb / "submissions").iterdir()
    assert path.name.startswith("run-outside-x-mat-coding-") and "/" not in path.name
    assert not (tmp_path / "outside").exists() and [p.name for p in (tmp_path / "deep").iterdir()] == ["lb"]


def test_readme_escapes_every_field(run, tmp_path, capsys):
    lb = tmp_path / "lb"
    name = "<script>alert(1)</script> | *bold* [x](javascript:alert(2))"
    spec = "<img src=x onerror=alert(3)>"
    edit_json(run / "config.json", _set("model", "spec", spec))
    edit_json(run / "summary.json", lambda s: s["run"].update(model=spec))
    rc, _, err = _submit(run, lb, capsys, "--name", name)
    assert rc == 0, err
    readme, _ = _board(lb, capsys)
    assert "<script" not in readme and "<img" not in readme
    assert not re.search(r"(?<!\\)\]\(javascript", readme)  # no live link: the brackets are escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*bold\\* \\[x\\](javascript:alert(2))" in readme
    head = next(line for line in readme.splitlines() if line.startswith("| # |"))
    row = next(line for line in readme.splitlines() if line.startswith("| 1 |"))
    assert len(re.findall(r"(?<!\\)\|", row)) == len(re.findall(r"(?<!\\)\|", head))  # no cell broke out
