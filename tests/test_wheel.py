"""The wheel works anywhere (#22.9): built from a copy of the sources, installed into a fresh venv, and run
from another folder, it carries the task specs, prompt templates, gold indexes, leaderboard entries and the
model table, and `matbench eval` runs against a local server. Dependencies come from the shared venv (no
network): a path entry in the new venv, which does not process that venv's own .pth files, so the editable
install of the checkout cannot shadow the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("matbench", "tasks", "leaderboard/submissions", "pyproject.toml", "setup.py", "README.md")


def _copy_sources(dest: Path) -> None:
    for rel in SOURCES:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / rel)


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATBENCH_", "PYTHON"))}
    env.update(HOME=str(home), MATBENCH_CACHE_DIR=str(home / "cache"), OPENAI_API_KEY="sk-test-123456",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


@pytest.mark.slow
def test_the_wheel_runs_outside_the_repository(tmp_path: Path, fixtures_dir: Path) -> None:
    import importlib.util

    import setuptools

    has_bdist_wheel = importlib.util.find_spec("wheel") is not None or tuple(
        int(x) for x in setuptools.__version__.split(".")[:2]
    ) >= (70, 1)
    assert has_bdist_wheel, "building the wheel offline needs `wheel` (pip install -e '.[dev]')"
    src, dist, where = tmp_path / "src", tmp_path / "dist", tmp_path / "elsewhere"
    src.mkdir()
    where.mkdir()
    _copy_sources(src)
    tools_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # pip sees no checkout
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=180, env=tools_env,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("vlm_matbench-*.whl")  # the distribution name, free on PyPI (not `matbench`)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())
    (site / "shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # deps, not matbench
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=180, env=tools_env,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    exe = env_dir / "bin" / "matbench"
    env = _clean_env(tmp_path / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], cwd=where, env=env, capture_output=True, text=True, timeout=120)

    located = subprocess.run([str(py), "-c", "import matbench; print(matbench.__file__)"], cwd=where, env=env,
                             capture_output=True, text=True)
    assert located.stdout.startswith(str(site)), located  # the wheel's copy, not the checkout's

    assert run("--version").stdout.startswith("matbench ")
    tasks = run("tasks")
    assert tasks.returncode == 0 and "mat-search" in tasks.stdout and "bamboogle" in tasks.stdout, tasks.stderr
    models = run("models")
    assert models.returncode == 0 and "gpt-6-sol" in models.stdout and "scripted:quickstart" in models.stdout
    board = run("leaderboard")
    assert board.returncode == 0 and "visual-arft" in board.stdout.lower(), board.stderr
    # writing needs a folder of the user's: never into the installed package
    refused = run("submit", str(where / "nowhere"))
    assert refused.returncode == 2 and "--leaderboard-dir" in refused.stderr, refused.stderr
    assert not (site / "matbench" / "_shipped" / "leaderboard" / "submissions" / "nowhere.json").exists()

    with FakeOpenAIServer("<answer>x</answer>") as srv:
        evaluated = run(
            "eval", "--no-progress", "--json", "--model", "openai:fake", "--base-url", srv.base_url,
            "--task", "bamboogle", "--protocol", "direct", "--data-dir", str(fixtures_dir / "multihop"),
            "--limit", "2", "--run-dir", str(where / "run"),
            "--authors-repo", str(fixtures_dir / "visual-arft-repo"),
        )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    [summary] = json.loads(evaluated.stdout)
    assert summary["run"]["finished"] is True and srv.calls == 2
    assert len((where / "run" / "predictions.jsonl").read_text().splitlines()) == 2
    config = json.loads((where / "run" / "config.json").read_text())
    assert config["task"]["name"] == "bamboogle" and config["task"]["spec_sha256"]
