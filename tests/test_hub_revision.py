"""`--data-revision` reaches the hub loader: MAT data comes from the Hugging Face cache at exactly that commit.

The cache is laid out as huggingface_hub writes it (``datasets--OWNER--NAME/snapshots/COMMIT/...``) from the
fixture rows, and the hub is offline (HF_HUB_OFFLINE=1), so ``snapshot_download`` resolves the commit from the
cache alone: the real code path without the network.
"""

from __future__ import annotations

import json
import shutil

from fake_openai_server import FakeOpenAIServer
from runtime_helpers import run_dir_of, run_eval

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(tmp_path, fixtures_dir):
    snapshot = tmp_path / "hub" / "datasets--laolao77--MAT" / "snapshots" / COMMIT / "MAT-Benchmark"
    (snapshot / "MAT-Coding-image").mkdir(parents=True)
    demo = fixtures_dir / "mat" / "coding-demo"
    shutil.copy(demo / "MAT-Coding.json", snapshot)
    for image in demo.glob("*.png"):
        shutil.copy(image, snapshot / "MAT-Coding-image")
    return tmp_path / "hub"


def test_data_revision_loads_that_commit_and_is_recorded(tmp_path, fixtures_dir):
    cache = _hub_cache(tmp_path, fixtures_dir)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

    def args(revision: str) -> list[str]:
        return [
            "--model",
            "openai:fake",
            "--base-url",
            srv.base_url,
            "--task",
            "mat-coding",
            "--ids",
            "12",
            "--data-revision",
            revision,
            "--runs-root",
            str(tmp_path / f"runs-{revision[:4]}"),
        ]

    with FakeOpenAIServer(lambda req: "<think> x </think>\n<answer> 1 Can (473ml) </answer>") as srv:
        out = run_eval(args(COMMIT), env_extra=env, cache_dir=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
        task = json.loads((run_dir_of(out.stdout) / "config.json").read_text())["task"]
        assert task["revision"] == COMMIT and task["revision_pinned"] is True
        assert task["data_dir"] is None and task["source"] != "local"
        calls = srv.calls
        other = run_eval(args("f" * 40), env_extra=env, cache_dir=tmp_path / "cache")
        assert srv.calls == calls  # refused before any model call
    assert other.returncode == 2
    lines = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot load task mat-coding from the Hugging Face hub" in lines[0], (
        other.stderr
    )


def test_an_unpinned_run_records_the_commit_it_loaded_and_a_moved_hub_refuses_the_resume(
    tmp_path, fixtures_dir
):
    """No --data-revision: the hub's head (here the cache's refs/main) decides; config records that commit, and
    resuming after the head moved would mix two versions of the data, so it is refused in one line."""
    cache = _hub_cache(tmp_path, fixtures_dir)
    repo = cache / "datasets--laolao77--MAT"
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = tmp_path / "run"
    with FakeOpenAIServer(lambda req: "<think> x </think>\n<answer> 1 Can (473ml) </answer>") as srv:
        args = [
            "--model",
            "openai:fake",
            "--base-url",
            srv.base_url,
            "--task",
            "mat-coding",
            "--ids",
            "12",
            "--run-dir",
            str(run),
        ]
        out = run_eval(args, env_extra=env, cache_dir=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
        task = json.loads((run / "config.json").read_text())["task"]
        assert task["revision"] is None and task["revision_pinned"] is False
        assert task["revision_resolved"] == COMMIT

        moved = "fedcba9876543210fedcba9876543210fedcba98"
        shutil.copytree(repo / "snapshots" / COMMIT, repo / "snapshots" / moved)
        (repo / "refs" / "main").write_text(moved)
        again = run_eval([*args, "--ids", "12,22"], env_extra=env, cache_dir=tmp_path / "cache")
        assert srv.calls == 1
    assert again.returncode == 2
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "task.revision_resolved" in lines[0], again.stderr
    assert f"--data-revision {COMMIT} finishes it on the data it started with" in lines[0]


def test_the_suggested_revision_finishes_the_run_on_its_own_data(tmp_path, fixtures_dir):
    """After the hub moved, ``--data-revision OLD`` (what the refusal suggests) resumes the unpinned run."""
    cache = _hub_cache(tmp_path, fixtures_dir)
    repo = cache / "datasets--laolao77--MAT"
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = tmp_path / "run"
    with FakeOpenAIServer(lambda req: "<think> x </think>\n<answer> 1 Can (473ml) </answer>") as srv:
        args = [
            "--model",
            "openai:fake",
            "--base-url",
            srv.base_url,
            "--task",
            "mat-coding",
            "--run-dir",
            str(run),
        ]
        assert run_eval([*args, "--ids", "12"], env_extra=env, cache_dir=tmp_path / "cache").returncode == 0
        (repo / "refs" / "main").write_text("fedcba9876543210fedcba9876543210fedcba98")
        out = run_eval(
            [*args, "--ids", "12,22", "--data-revision", COMMIT], env_extra=env, cache_dir=tmp_path / "cache"
        )
    assert out.returncode == 0, out.stderr
    assert "resuming: 1/2 done" in out.stderr
