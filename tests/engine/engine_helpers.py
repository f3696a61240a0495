"""Paths and small helpers shared by the engine tests (conftest.py holds the hooks and fixtures)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(
    os.environ.get("MATBENCH_FIXTURES") or ROOT / ".." / "shared" / "fixtures"
).expanduser().resolve()  # as tests/fixture_paths.py resolves them (this lane runs from its own venv)
HERE = Path(__file__).resolve().parent


def training_texts() -> list[Path]:
    """The tiny model's BPE training text: real passages and the MAT-Coding questions (CJK included)."""
    return [
        FIXTURES / "corpora" / "wiki18-first1000-passages.jsonl",
        FIXTURES / "mat" / "coding-demo" / "MAT-Coding.json",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_request(task: str, sample, run_dir: Path, max_new_tokens: int = 32):
    """The first model request of a real episode of ``task``: the task's default protocol, resolved the way
    `matbench eval` resolves it (the authors' strings by default), so no test depends on prompt wording."""
    from matbench.protocols.resolve import resolve_protocol
    from matbench.run.episode import Episode, EpisodeOptions, Tools
    from matbench.tasks import get_task

    spec = get_task(task)
    resolved = resolve_protocol(spec, None, None, authors_repo=None, cache_dir=run_dir / "protocol-cache")
    options = EpisodeOptions(max_new_tokens=max_new_tokens, temperature=0.0)
    return Episode(sample, resolved.templates, Tools(), options, run_dir, task=task).request()
