"""`--data-revision` reaches the hub loader: MAT data comes from the Hugging Face cache at exactly that commit.

The cache is laid out as huggingface_hub writes it (``datasets--OWNER--NAME/snapshots/COMMIT/...``, and
``refs/main`` naming the head) from the fixture rows, and the hub is offline (HF_HUB_OFFLINE=1), so
``snapshot_download`` resolves the commit from the cache alone: the real code path without the network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fake_openai_server import FakeOpenAIServer
from runtime_helpers import run_dir_of, run_eval

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MOVED = "fedcba9876543210fedcba9876543210fedcba98"


def _answer(_req) -> str:
    return "<think> x </think>\n<answer> 1 Can (473ml) </answer>"


class HubCache:
    """An offline HF cache holding the MAT-Coding fixture rows at ``COMMIT``; ``head`` names ``refs/main``."""

    def __init__(self, tmp_path: Path, fixtures_dir: Path, head: str | None = None):
        self.root = tmp_path / "hub"
        self.repo = self.root / "datasets--laolao77--MAT"
        snapshot = self.repo / "snapshots" / COMMIT / "MAT-Benchmark"
        (snapshot / "MAT-Coding-image").mkdir(parents=True)
        demo = fixtures_dir / "mat" / "coding-demo"
        shutil.copy(demo / "MAT-Coding.json", snapshot)
        for image in demo.glob("*.png"):
            shutil.copy(image, snapshot / "MAT-Coding-image")
        self.cache_dir = tmp_path / "cache"
        if head is not None:
            self.move_head(head)

    def move_head(self, commit: str) -> None:
        """Point refs/main at ``commit`` (a copy of the first snapshot when it is a new one)."""
        if not (self.repo / "snapshots" / commit).exists():
            shutil.copytree(self.repo / "snapshots" / COMMIT, self.repo / "snapshots" / commit)
        (self.repo / "refs").mkdir(exist_ok=True)
        (self.repo / "refs" / "main").write_text(commit)

    def eval(self, srv, *extra: str):
        args = ["--model", "openai:fake", "--base-url", srv.base_url, "--task", "mat-coding", *extra]
        env = {"HF_HUB_CACHE": str(self.root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        # huggingface_hub reads HF_HUB_CACHE once, when it is imported: in this process, set what it read
        from huggingface_hub import constants

        saved = constants.HF_HUB_CACHE
        constants.HF_HUB_CACHE = str(self.root)
        try:
            return run_eval(args, env_extra=env, cache_dir=self.cache_dir)
        finally:
            constants.HF_HUB_CACHE = saved


def _one_line(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_data_revision_loads_that_commit_and_is_recorded(tmp_path, fixtures_dir):
    hub = HubCache(tmp_path, fixtures_dir)
    with FakeOpenAIServer(_answer) as srv:
        out = hub.eval(srv, "--ids", "12", "--data-revision", COMMIT, "--runs-root", str(tmp_path / "a"))
        assert out.returncode == 0, out.stderr
        task = json.loads((run_dir_of(out.stdout) / "config.json").read_text())["task"]
        assert task["revision"] == COMMIT and task["revision_pinned"] is True
        assert task["data_dir"] is None and task["source"] != "local"
        calls = srv.calls
        other = hub.eval(srv, "--ids", "12", "--data-revision", "f" * 40, "--runs-root", str(tmp_path / "b"))
        assert srv.calls == calls  # refused before any model call
    assert other.returncode == 2
    assert "cannot load task mat-coding from the Hugging Face hub" in _one_line(other)


def test_an_unpinned_run_records_the_commit_it_loaded_and_a_moved_hub_refuses_the_resume(
    tmp_path, fixtures_dir
):
    """No --data-revision: the hub's head (here the cache's refs/main) decides; config records that commit, and
    resuming after the head moved would mix two versions of the data, so it is refused in one line."""
    hub = HubCache(tmp_path, fixtures_dir, head=COMMIT)
    run = tmp_path / "run"
    with FakeOpenAIServer(_answer) as srv:
        out = hub.eval(srv, "--ids", "12", "--run-dir", str(run))
        assert out.returncode == 0, out.stderr
        task = json.loads((run / "config.json").read_text())["task"]
        assert task["revision"] is None and task["revision_pinned"] is False
        assert task["revision_resolved"] == COMMIT

        hub.move_head(MOVED)
        again = hub.eval(srv, "--ids", "12,22", "--run-dir", str(run))
        assert srv.calls == 1
    assert again.returncode == 2
    line = _one_line(again)
    assert "task.revision_resolved" in line
    assert f"--data-revision {COMMIT} finishes it on the data it started with" in line


def test_the_suggested_revision_finishes_the_run_on_its_own_data(tmp_path, fixtures_dir):
    """After the hub moved, ``--data-revision OLD`` (what the refusal suggests) resumes the unpinned run."""
    hub = HubCache(tmp_path, fixtures_dir, head=COMMIT)
    run = tmp_path / "run"
    with FakeOpenAIServer(_answer) as srv:
        assert hub.eval(srv, "--ids", "12", "--run-dir", str(run)).returncode == 0
        hub.move_head(MOVED)
        out = hub.eval(srv, "--ids", "12,22", "--data-revision", COMMIT, "--run-dir", str(run))
    assert out.returncode == 0, out.stderr
    assert "resuming: 1/2 done" in out.stderr
