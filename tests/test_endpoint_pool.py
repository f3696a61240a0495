"""Several `--base-url`s serving one model: least-in-flight routing, a dying endpoint drained, resume anywhere."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from fixture_paths import FIXTURES

from matbench.cli import main
from matbench.records.run_dir import RunDir

DATA = FIXTURES / "multihop"


def _eval(urls: list[str], tmp: Path, *extra: str) -> int:
    args = ["eval", "--no-progress", "--model", "openai:fake", "--task", "bamboogle"]
    for u in urls:
        args += ["--base-url", u]
    args += ["--data-dir", str(DATA), "--protocol", "direct", "--no-response-cache"]
    args += ["--cache-dir", str(tmp / "cache"), "--run-dir", str(tmp / "run"), "--max-retries", "2"]
    args += ["--retry-delay", "0.01", *extra]
    return main(args)


@pytest.fixture(autouse=True)
def _data(fixtures_dir):
    """Every test here evaluates the fixture data (a missing set is reported at collection)."""


def test_calls_go_to_the_least_busy_endpoint(tmp_path):
    with (
        FakeOpenAIServer("<answer> x </answer>", latency=0.01) as fast,
        FakeOpenAIServer("<answer> x </answer>", latency=0.2) as slow,  # 20x: clear of a loaded harness
    ):
        assert _eval([fast.base_url, slow.base_url], tmp_path, "--max-concurrency", "8") == 0
        assert fast.calls + slow.calls == 125
        assert fast.calls > 2 * slow.calls > 0  # the fast replica frees its slots sooner and gets more
    summary = RunDir(tmp_path / "run").read_summary()
    eps = {e["url"]: e for e in summary["run"]["endpoints"]}
    assert eps[fast.base_url]["calls"] == fast.calls and eps[slow.base_url]["calls"] == slow.calls
    assert summary["run"]["errors"] == 0
    cfg = RunDir(tmp_path / "run").read_config()
    assert cfg["model_runtime"]["base_url"] == [fast.base_url, slow.base_url]


def test_a_failing_endpoint_is_drained_and_its_calls_move(tmp_path):
    with (
        FakeOpenAIServer("<answer> x </answer>", latency=0.005) as good,
        FakeOpenAIServer(lambda _r: Reply.error(503, "overloaded"), latency=0.005) as bad,
    ):
        assert _eval([bad.base_url, good.base_url], tmp_path, "--max-concurrency", "4") == 0
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["run"]["errors"] == 0 and summary["n"] == 125
    eps = {e["url"]: e for e in summary["run"]["endpoints"]}
    assert not eps[bad.base_url]["healthy"] and eps[bad.base_url]["calls"] == 0
    assert eps[bad.base_url]["moved"] == bad.calls <= 3 + 4  # drained after 3 in a row (+ those in flight)
    assert eps[good.base_url]["calls"] == 125


def test_an_endpoint_killed_mid_run(tmp_path):
    with FakeOpenAIServer("<answer> x </answer>", latency=0.01) as keep:
        victim = FakeOpenAIServer("<answer> x </answer>", latency=0.01).start()
        stopped = threading.Event()

        def killer():
            while victim.calls < 20:
                threading.Event().wait(0.005)
            victim.stop()
            stopped.set()

        threading.Thread(target=killer, daemon=True).start()
        try:
            assert _eval([victim.base_url, keep.base_url], tmp_path, "--max-concurrency", "6") == 0
        finally:
            victim.stop()
        assert stopped.is_set()
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["run"]["errors"] == 0 and summary["n"] == 125
    eps = {e["url"]: e for e in summary["run"]["endpoints"]}
    assert not eps[victim.base_url]["healthy"] and eps[victim.base_url]["drained"] == 1
    assert eps[victim.base_url]["calls"] + eps[keep.base_url]["calls"] == 125


def test_resume_on_other_endpoints(tmp_path):
    with FakeOpenAIServer("<answer> x </answer>") as a:
        assert _eval([a.base_url], tmp_path, "--limit", "10") == 0
    lines = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "run" / "predictions.jsonl").write_text("".join(lines[:6]))  # as if killed after 6
    with FakeOpenAIServer("<answer> x </answer>") as b, FakeOpenAIServer("<answer> x </answer>") as c:
        assert _eval([b.base_url, c.base_url], tmp_path, "--limit", "10") == 0  # another port, two replicas
        assert b.calls + c.calls == 4
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n"] == 10 and summary["run"]["finished"]


class _RootServer(FakeOpenAIServer):
    """A replica whose GET /v1/models says which checkpoint serves the name (as vLLM's ``root`` does)."""

    def __init__(self, root: str, **kw):
        super().__init__("<answer> x </answer>", **kw)
        self.root = root

    async def _models(self, request):
        from aiohttp import web

        return web.json_response(
            {"object": "list", "data": [{"id": "fake", "object": "model", "root": self.root}]}
        )


def test_endpoints_must_serve_the_same_model(tmp_path, capsys):
    with _RootServer("org/ckpt-a") as a, _RootServer("org/ckpt-b") as b:
        assert _eval([a.base_url, b.base_url], tmp_path, "--limit", "2") == 2
        assert a.calls == b.calls == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the endpoints serve different models" in err
    assert "ckpt-a" in err and "ckpt-b" in err
    with _RootServer("org/ckpt-a") as a, _RootServer("org/ckpt-a") as b:
        assert _eval([a.base_url, b.base_url], tmp_path, "--limit", "4", "--max-concurrency", "2") == 0
        assert a.calls + b.calls == 4
    cfg = RunDir(tmp_path / "run").read_config()
    assert cfg["model"]["served_model"]["root"] == "org/ckpt-a"


def test_a_dead_endpoint_at_the_start_is_drained_then_the_run_goes_on(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with FakeOpenAIServer("<answer> x </answer>") as live:
        assert _eval([dead, live.base_url], tmp_path, "--limit", "5") == 0
        assert live.calls == 5
    eps = {e["url"]: e for e in RunDir(tmp_path / "run").read_summary()["run"]["endpoints"]}
    assert not eps[dead]["healthy"] and "cannot reach" in eps[dead]["reason"] and eps[dead]["calls"] == 0


def test_health_checks_drain_and_bring_back(tmp_path):
    import asyncio

    from matbench.models import get_model

    async def scenario(model, a, b):
        pool = model.pool
        model.transport.start()
        await pool.check_all()
        assert [e.healthy for e in pool.endpoints] == [True, True]
        b.models = ["something-else"]  # the replica was restarted with another model
        await pool.check_all()
        assert [e.healthy for e in pool.endpoints] == [True, False]
        assert pool.pick() is pool.endpoints[0]
        b.models = ["fake"]
        await pool.check_all()
        assert [e.healthy for e in pool.endpoints] == [True, True]
        await model.aclose()

    with FakeOpenAIServer("x") as a, FakeOpenAIServer("x") as b:
        model = get_model("openai:fake", base_url=[a.base_url, b.base_url])
        model.preflight()
        asyncio.run(scenario(model, a, b))
