"""Run records never lose a sample: torn lines, one writer per run, SIGTERM, --limit, extended runs,
refused resumes that name the changed key, and multi-task refusals that leave nothing behind.
All through `matbench eval` against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
import time

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from runtime_helpers import ROOT, error_lines, eval_cmd, read_jsonl, run_eval

ANSWER = "<answer> x </answer>"


class Gate:
    """A policy that answers the first ``free`` calls at once and every later one only after a minute, until
    ``open()``: the run under test is provably still in flight, however slow the machine (the server itself
    stays responsive: the wait is the server's asynchronous reply delay)."""

    def __init__(self, free: int):
        self.free, self.calls, self.event = free, 0, threading.Event()

    def __call__(self, _req) -> str | Reply:
        self.calls += 1
        if self.calls > self.free and not self.event.is_set():
            return Reply(text=ANSWER, delay=60)
        return ANSWER

    def open(self) -> None:
        self.event.set()


def _args(fixtures_dir, run, *extra: str) -> list[str]:
    return [
        "--model",
        "openai:fake",
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--protocol",
        "direct",
        "--max-concurrency",
        "1",
        "--no-response-cache",
        "--run-dir",
        str(run),
        *extra,
    ]


def _lines_all_parse(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def _start(srv, args, tmp_path, *, sigint_ignored: bool = False) -> subprocess.Popen:
    env = dict(os.environ, OPENAI_API_KEY="sk-x", MATBENCH_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.Popen(
        eval_cmd("--base-url", srv.base_url, *args),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # `matbench eval ... &` in a script (and some schedulers) starts the process with SIGINT ignored
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )


def _wait_records(path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(read_jsonl(path)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {n} records after {timeout} s")


def test_torn_last_line_is_cut_before_resume(tmp_path, fixtures_dir):
    run = tmp_path / "run"
    args = _args(fixtures_dir, run, "--limit", "3")
    preds = run / "predictions.jsonl"
    with FakeOpenAIServer(ANSWER) as srv:
        assert run_eval(["--base-url", srv.base_url, *args]).returncode == 0
        data = preds.read_bytes()
        preds.write_bytes(data[: len(data) - 40])  # the last write was cut short (kill -9, full disk)
        out = run_eval(["--base-url", srv.base_url, *args])
    assert out.returncode == 0, out.stderr
    rows = _lines_all_parse(preds)
    assert "resuming: 2/3 done" in out.stderr
    assert sorted(r["id"] for r in rows) == ["test_0", "test_1", "test_2"]
    assert json.loads((run / "summary.json").read_text())["n"] == 3


def test_limit_must_be_at_least_one(tmp_path, fixtures_dir):
    with FakeOpenAIServer(ANSWER) as srv:
        for bad in ("0", "-1"):
            out = run_eval(
                ["--base-url", srv.base_url, *_args(fixtures_dir, tmp_path / "run", "--limit", bad)]
            )
            assert out.returncode == 2
            assert out.stderr.strip().splitlines() == [
                f"matbench: error: --limit must be at least 1 (got {bad})"
            ]
        assert srv.calls == 0
    assert not (tmp_path / "run").exists()


def test_second_eval_on_a_run_refuses_and_a_stale_lock_is_taken_over(tmp_path, fixtures_dir):
    run = tmp_path / "run"
    args = _args(fixtures_dir, run, "--limit", "6")
    preds = run / "predictions.jsonl"
    gate = Gate(free=1)
    with FakeOpenAIServer(gate) as srv:
        first = _start(srv, args, tmp_path)
        try:
            _wait_records(preds, 1)
            second = run_eval(["--base-url", srv.base_url, *args], cache_dir=tmp_path / "cache")
            assert second.returncode == 2
            (line,) = error_lines(second.stderr)
            assert f"{run} is in use by another `matbench eval` (pid {first.pid}" in line
            assert len(read_jsonl(preds)) == 1  # the refused one ran nothing
        finally:
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=60)
        assert not (run / ".lock").exists()
        # a lock file left by a process that died (kill -9) is taken over
        dead = subprocess.Popen(["true"])
        dead.wait()
        (run / ".lock").write_text(f"pid {dead.pid} on host since 2026-01-01T00:00:00Z\n")
        gate.open()
        again = run_eval(["--base-url", srv.base_url, *args])
    assert again.returncode == 0, again.stderr
    assert "resuming: 1/6 done" in again.stderr
    rows = _lines_all_parse(preds)
    assert len(rows) == 6 == len({r["id"] for r in rows})  # every sample exactly once


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
def test_sigterm_behaves_like_ctrl_c(tmp_path, fixtures_dir, sigint_ignored):
    run = tmp_path / "run"
    args = _args(fixtures_dir, run, "--limit", "12")
    preds = run / "predictions.jsonl"
    gate = Gate(free=2)
    with FakeOpenAIServer(gate) as srv:
        proc = _start(srv, args, tmp_path, sigint_ignored=sigint_ignored)
        _wait_records(preds, 2)
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)  # the gated reply would take 60 s: SIGTERM must not wait
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        gate.open()
        assert proc.returncode == 130
        done = _lines_all_parse(preds)
        assert 2 <= len(done) < 12 and not (run / ".lock").exists()
        # one line: how many samples are saved where, and the exact command that resumes
        assert f"new run: {run}" in err.splitlines()
        (line,) = error_lines(err)
        saved, _, command = line.partition("; resume with: ")
        assert saved == f"matbench: interrupted: {len(done)}/12 samples saved in {run}"
        argv = shlex.split(command)
        assert argv[:2] == ["matbench", "eval"] and argv[2:] == ["--no-progress", "--base-url", srv.base_url, *args]
        out = run_eval(argv[3:])  # run_eval adds `eval --no-progress`
    assert out.returncode == 0, out.stderr
    assert f"resuming: {len(done)}/12 done" in out.stderr
    assert len(_lines_all_parse(preds)) == 12


def test_extending_a_run_resumes_it_and_refusals_name_the_key(tmp_path, fixtures_dir):
    run = tmp_path / "run"
    with FakeOpenAIServer(ANSWER) as srv, FakeOpenAIServer(ANSWER) as other:
        assert (
            run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "3")]).returncode == 0
        )
        out = run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "5")])
        assert out.returncode == 0, out.stderr
        assert "resuming: 3/5 done" in out.stderr and srv.calls == 5  # only the two new samples ran
        ids = ["--ids", "test_0,test_1,test_2,test_3,test_4,test_9"]
        out = run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, *ids)])
        assert out.returncode == 0, out.stderr
        assert "resuming: 5/6 done" in out.stderr and srv.calls == 6
        config = json.loads((run / "config.json").read_text())
        assert config["selection"]["ids"][-1] == "test_9" and config["task"]["n_samples"] == 6
        summary = json.loads((run / "summary.json").read_text())
        assert summary["n"] == 6 and summary["run"]["finished"] is True
        smaller = run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "2")])
        assert smaller.returncode == 2
        assert "changed: selection.limit, selection.ids" in smaller.stderr
        warmer = run_eval(
            ["--base-url", other.base_url, *_args(fixtures_dir, run, *ids, "--temperature", "0.5")]
        )
        assert warmer.returncode == 2
        assert "different configuration (changed: decoding.temperature" in warmer.stderr
        assert other.calls == 0


def test_refused_multi_task_command_leaves_no_directories(tmp_path, fixtures_dir):
    root = tmp_path / "runs"  # a pinned --run-dir: a changed configuration there is refused
    common = ["--model", "openai:fake", "--data-dir", str(fixtures_dir / "multihop"), "--protocol", "direct"]
    common += ["--limit", "2", "--run-dir", str(root), "--no-response-cache"]
    with FakeOpenAIServer(ANSWER) as srv:
        first = run_eval(["--base-url", srv.base_url, *common[:-3], "--run-dir", str(root / "musique"),
                          "--no-response-cache", "--task", "musique"])
        assert first.returncode == 0, first.stderr
        before = sorted(p.name for p in root.iterdir())
        both = ["--task", "bamboogle", "--task", "musique", "--scoring", "squad"]
        out = run_eval(["--base-url", srv.base_url, *common, *both])
        assert out.returncode == 2 and "changed: scoring" in out.stderr
        assert srv.calls == 2
    assert sorted(p.name for p in root.iterdir()) == before  # no empty bamboogle run was left behind
    (musique,) = root.iterdir()
    assert not (musique / ".lock").exists()
