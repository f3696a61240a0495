"""Every summary.json says where the wall time went: model/engine, tools, waiting for the slowest."""

from __future__ import annotations

import asyncio
import json

import pytest
from fake_openai_server import FakeOpenAIServer, request_text
from runtime_helpers import fake_args, run_dir_of, run_eval

from matbench.run.timesplit import TimeSplit


def test_round_split_tool_until_first_ready_then_idle() -> None:
    split = TimeSplit("lockstep")
    split.add_round(3, engine_s=1.0, tool_times=[0.1, 0.5, 0.2], phase_s=0.5)
    split.add_round(1, engine_s=0.5, tool_times=[0.0], phase_s=0.01)
    d = split.to_dict(wall_s=2.5)
    assert d["engine_s"] == 1.5 and d["tool_s"] == 0.1 and d["idle_s"] == 0.41
    assert d["other_s"] == pytest.approx(2.5 - 1.5 - 0.1 - 0.41, abs=1e-3)
    assert [r["episodes"] for r in d["rounds"]] == [3, 1] and d["calls"] == 4
    assert sum(d["fractions"].values()) == pytest.approx(1.0, abs=1e-3)


def test_http_run_records_model_wait_and_tool_time(tmp_path, fixtures_dir) -> None:
    with FakeOpenAIServer("<answer> x </answer>", latency=0.2) as srv:
        out = run_eval(
            [
                *fake_args(srv, "bamboogle", str(fixtures_dir / "multihop")),
                "--protocol",
                "direct",
                "--limit",
                "3",
                "--runs-root",
                str(tmp_path / "runs"),
                "--no-response-cache",
            ]
        )
    assert out.returncode == 0, out.stderr
    split = json.loads((run_dir_of(out.stdout) / "summary.json").read_text())["run"]["time_split"]
    assert split["mode"] == "concurrent" and split["calls"] == 3
    assert split["model_wait_s"] >= 0.6 and split["tool_s"] < split["model_wait_s"]


def _search_then_answer(req) -> str:  # turn 1 searches, turn 2 answers
    text = request_text(req)
    return "<answer> a </answer>" if "<think> x" in text else "<think> x </think>\n<search> q </search>"


def _lockstep_bamboogle(srv: FakeOpenAIServer, tmp_path, fixtures_dir, **settings) -> dict:
    """One bamboogle run through the lock-step scheduler, driving a real HTTP adapter; its summary."""
    from matbench.run.scheduler import EvalSettings, _evaluate, build_model, plan_task

    config = EvalSettings(
        model="openai:fake",
        tasks=["bamboogle"],
        data_dir=str(fixtures_dir / "multihop"),
        base_url=srv.base_url,
        run_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        response_cache=False,
        progress=False,
        **settings,
    )
    model = build_model(config)
    model.lockstep = True
    plan = plan_task(config, "bamboogle", model, {})
    (summary,) = asyncio.run(_evaluate([plan], model, config))
    return summary


def test_lockstep_rounds_are_recorded(tmp_path, fixtures_dir, fast_search_retries) -> None:
    """The lock-step scheduler through a real HTTP adapter: one round per batched generate, timed."""
    with FakeOpenAIServer(_search_then_answer, latency=0.15) as srv:
        # the retriever is down: round 1's searches get an error back as text, round 2 answers
        summary = _lockstep_bamboogle(
            srv, tmp_path, fixtures_dir, limit=4, search="retriever:http://127.0.0.1:9"
        )
    split = summary["run"]["time_split"]
    assert split["mode"] == "lockstep" and [r["episodes"] for r in split["rounds"]] == [4, 4]
    assert split["engine_s"] >= 0.3 and split["calls"] == 8
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())["run"]["time_split"]
    assert on_disk["rounds"] == split["rounds"]


def test_lockstep_keeps_at_most_a_window_of_episodes_live(tmp_path, fixtures_dir) -> None:
    """An in-process engine gets one batch per round, but only ``lockstep_window`` episodes exist at once:
    finished ones are replaced from the queue, so memory does not grow with the number of samples."""
    from matbench.tools.search.local import build_index

    index = tmp_path / "index"
    build_index(fixtures_dir / "corpora/hotpotqa-dev-first100-paragraphs.jsonl", index, show_progress=False)
    with FakeOpenAIServer(_search_then_answer) as srv:
        summary = _lockstep_bamboogle(
            srv, tmp_path, fixtures_dir, limit=10, search=f"local:{index}", lockstep_window=4
        )
    rounds = [r["episodes"] for r in summary["run"]["time_split"]["rounds"]]
    assert rounds == [4, 4, 4, 4, 2, 2]
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 10 and {r["status"] for r in records} == {"ok"} and srv.calls == 20
