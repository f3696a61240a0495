"""Engine tests: real vLLM (the CPU build) on a tiny random Qwen2.5-VL built offline.

They run in the engine venv (``bash scripts/engine-venv.sh``), from the repository root:
    ~/.cache/matbench/engine-venv/bin/python -m pytest -m engine tests/engine
Anywhere else they skip with that reason; with MATBENCH_REQUIRE_ENGINE=1 (CI's engine lane) a missing
engine is an error instead, so that a lane that ran nothing can never pass.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_helpers import FIXTURES, HERE, ROOT, training_texts  # noqa: E402


def _engine_present() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("vllm", "torch", "transformers"))


ENGINE = _engine_present()
SKIP_REASON = (
    "needs the vLLM engine venv: `bash scripts/engine-venv.sh`, then "
    "`~/.cache/matbench/engine-venv/bin/python -m pytest -m engine tests/engine`"
)

if ENGINE:
    # vLLM's CPU build in this process, set before anything imports torch (vLLM pins its own threads).
    for key, value in {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OMP_NUM_THREADS": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(key, value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [i for i in items if Path(str(i.fspath)).resolve().is_relative_to(HERE)]
    for item in mine:
        item.add_marker(pytest.mark.engine)
    if ENGINE or not mine:
        return
    if os.environ.get("MATBENCH_REQUIRE_ENGINE") == "1":
        raise pytest.UsageError(f"MATBENCH_REQUIRE_ENGINE=1 but vLLM is not importable here; {SKIP_REASON}")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


# --- fixtures --------------------------------------------------------------------------------------------
def _cache_root() -> Path:
    return Path(os.environ.get("MATBENCH_CACHE_DIR") or Path.home() / ".cache" / "matbench")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():  # the collection hook of tests/conftest.py says so first, for the whole session
        pytest.fail(f"test fixtures not found at {FIXTURES}: see scripts/fetch-fixtures.sh", pytrace=False)
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model(fixtures: Path) -> tuple[Path, str]:
    """(checkpoint dir, its sha256), built once per input hash and reused across runs."""
    from tiny_qwen import build_cached

    return build_cached(_cache_root() / "tiny-qwen2.5-vl", training_texts())


@pytest.fixture(scope="session")
def data_dir(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The six MAT-Coding demo rows and Bamboogle in one folder (one eval runs both tasks)."""
    root = tmp_path_factory.mktemp("data")
    for f in (fixtures / "mat" / "coding-demo").iterdir():
        shutil.copy(f, root / f.name)
    (root / "bamboogle").mkdir()
    shutil.copy(fixtures / "multihop" / "bamboogle" / "test.jsonl", root / "bamboogle" / "test.jsonl")
    return root


@pytest.fixture(scope="session")
def local_index(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "wiki"
    corpus = fixtures / "corpora" / "wiki18-first1000-passages.jsonl"
    res = subprocess.run(
        [sys.executable, "-m", "matbench.cli", "index", "build", str(corpus), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    return out
