"""`matbench view` reads like a report (#21.8): the header is human text (no dict, list or ``None``), samples
come in natural id order, only the filters the task's samples have values for, and the authors' prediction
files open as `matbench score` reads them."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from view_helpers import read_details, read_index

from matbench.cli import main
from matbench.records.run_dir import RunDir, SampleRecord

PRICE = {"input": 0.15, "cached_input": 0.075, "output": 0.6, "checked": "2026-11-01", "source": "test"}


def _header(page: Path) -> str:
    """The page's header as the reader sees it: the text between the title and the filters, tags dropped."""
    text = page.read_text(encoding="utf-8")
    head = text[text.index("</h1>") : text.index('<div class="filters">')]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", head)).split())


def _hotpotqa_run(root: Path, cost: dict, ids=("dev_10", "dev_2", "dev_100", "dev_1", "dev_0")) -> Path:
    rd = RunDir(root)
    rd.create(
        {
            "task": {"name": "hotpotqa", "version": "1.0"},
            "model": {"spec": "qwen2.5-vl-7b", "model": "Qwen/Qwen2.5-VL-7B-Instruct", "backend": "vllm-server"},
            "protocol": {"name": "tools"},
            "scoring": "visual-arft",
            "search": {"backend": None},
            "created": "20261207T120000Z",
        }
    )
    for rid in ids:
        calls = {"search": 1} if rid != "dev_2" else {}
        rd.append(SampleRecord(rid, None, f"question {rid}", ["yes"], "yes", 1.0, 1.0, turns=1, tool_calls=calls))
    rd.write_summary(
        {
            "task": "hotpotqa",
            "run": {
                "model": "qwen2.5-vl-7b",
                "run_dir": str(root),
                "samples": len(ids),
                "finished": True,
                "errors": 0,
                "tool_calls": {"search": 4},
                "tokens": {"input": 1200, "output": 300, "unreported": 2},
                "duration_s": 12.5,
                "cost": cost,
                "max_cost": {"limit_usd": 5.0, "spent_usd": 0.01, "not_started": 0, "stopped_in_flight": 0,
                             "halted": None},
                "response_cache": {"hits": 0, "misses": 5, "bypassed": 0},
                "endpoints": [
                    {"url": "http://127.0.0.1:8000/v1", "calls": 40, "failed": 2, "moved": 0, "healthy": True,
                     "drained": 0, "reason": None, "calls_per_s": None},
                    {"url": "http://10.0.0.2:8001/v1", "calls": 3, "failed": 5, "moved": 1, "healthy": False,
                     "drained": 1, "reason": "HTTP 503", "calls_per_s": 1.5},
                ],
                "time_split": {"mode": "lockstep", "wall_s": 12.5, "engine_s": 10.0, "tool_s": 2.0, "idle_s": 0.5,
                               "other_s": 0.0, "fractions": {"engine": 0.8, "tool": 0.16, "idle": 0.04, "other": 0.0},
                               "calls": 5, "rounds": [{"episodes": 5, "engine_s": 10.0, "tool_s": 2.0, "idle_s": 0.5}]},
            },
        }
    )
    return rd.path


@pytest.mark.parametrize(
    "cost, says",
    [
        ({"usd": None, "per_sample_usd": None, "spent_usd": None, "status": "unknown price", "price": None},
         "cost unknown price"),
        ({"usd": 0.0123, "per_sample_usd": 0.00246, "spent_usd": 0.0123, "status": "ok", "price": PRICE},
         "cost $0.0123 ($0.0025/sample)"),
    ],
)
def test_header_is_human_text(tmp_path, capsys, cost, says):
    run = _hotpotqa_run(tmp_path / "run", cost)
    assert main(["view", str(run)]) == 0
    head = _header(run / "report.html")
    for leak in ("None", "{'", "{", "['", "[", "True", "False", "null"):
        assert leak not in head, f"{leak!r} in the header: {head}"
    assert says in head
    assert "127.0.0.1:8000 — 40 calls, 2 failed, healthy" in head
    assert "10.0.0.2:8001 — 3 calls, 5 failed, 1 moved to another endpoint, 1.5 calls/s, unhealthy (HTTP 503)" in head
    assert "tool calls search 4" in head and "tokens 1,200 in / 300 out (2 call(s) reported no usage)" in head
    assert "max cost $5: spent $0.0100" in head and "engine 80%" in head
    assert "model qwen2.5-vl-7b (Qwen/Qwen2.5-VL-7B-Instruct, vllm-server)" in head
    assert "created 2026-12-07 12:00 UTC" in head
    assert "search " not in head.split("scoring", 1)[1].split("created")[0]  # no search backend: left out


def test_natural_id_order_and_only_the_tasks_filters(tmp_path, capsys):
    cost = {"usd": None, "status": "unknown price"}
    run = _hotpotqa_run(tmp_path / "run", cost)
    assert main(["view", str(run)]) == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert [r["id"] for r in read_index(run / "report.html")["rows"]] == ["dev_0", "dev_1", "dev_2", "dev_10", "dev_100"]
    assert list(read_details(run / "report.html")) == ["dev_0", "dev_1", "dev_2", "dev_10", "dev_100"]
    # HotpotQA has no splits and no degradation types (MAT-Coding's): no such filters
    assert 'id="f-type"' not in page and "degradation type" not in page and 'id="f-split"' not in page
    assert 'id="f-tool"' in page and '<option value="none">' in page  # dev_2 used no tool, the others search


def test_view_opens_the_authors_prediction_file(fixtures_dir, tmp_path, capsys):
    src = fixtures_dir / "predictions" / "visual-arft" / "7b_step200_hotpotqa_web_n4.json"
    out = tmp_path / "hq.html"
    assert main(["view", str(src), "--task", "hotpotqa", "--out", str(out)]) == 0
    rows = read_index(out)["rows"]
    assert len(rows) == 7405 and [r["id"] for r in rows[:12]] == [f"dev_{i}" for i in range(12)]
    head = _header(out)
    assert "all 7405 48.01 36.48" in head  # the published numbers, as `score` gives them
    assert "None" not in head and "{" not in head and "file " in head
    detail = read_details(out)["dev_0"]
    assert detail["question"] == "Were Scott Derrickson and Ed Wood of the same nationality?"
    assert detail["gold"] == ["yes"] and detail["prediction"] == "Yes" and detail["turns"] == []
    page = out.read_text(encoding="utf-8")
    assert 'id="f-type"' not in page and 'id="f-tool"' not in page  # no trajectories: no tools to filter by


def test_view_of_an_authors_file_needs_its_task(fixtures_dir, tmp_path, capsys):
    src = fixtures_dir / "predictions" / "visual-arft" / "7b_mat_coding_grpo_step1400.json"
    assert main(["view", str(src), "--out", str(tmp_path / "a.html")]) == 2
    assert "give --task" in capsys.readouterr().err
    # MAT-Coding's 200 answers are not MAT-Search's: refused in one line, as `score` refuses them
    assert main(["view", str(src), "--task", "mat-search", "--out", str(tmp_path / "b.html")]) == 2
    err = capsys.readouterr().err
    assert "not in task mat-search" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "b.html").exists()
    assert main(["view", str(src), "--task", "mat-coding", "--out", str(tmp_path / "c.html")]) == 0
    rows = read_index(tmp_path / "c.html")["rows"]
    assert [r["id"] for r in rows[:3]] == ["1", "2", "3"] and {r["split"] for r in rows} == {"simple", "hard"}


def test_judge_line_is_text(tmp_path, capsys):
    """The judge's line (#19.1) in the same header: a judge.json without a prompt name says nothing of it."""
    from matbench.judge.records import Judgment, JudgmentsFile

    run = _hotpotqa_run(tmp_path / "run", {"usd": None})
    jf = JudgmentsFile(run)
    jf.start({"model": "gpt-4o-mini", "prompt": None, "fingerprint": "f00d"}, overwrite=False)
    jf.append(Judgment("dev_1", "correct", None, "llm_judge", "yes", 1.0, reason="same answer", judge="f00d"))
    assert main(["view", str(run)]) == 0
    head = _header(run / "report.html")
    assert "judge gpt-4o-mini: accuracy 100.00 over 1 judged sample(s)" in head and "None" not in head
