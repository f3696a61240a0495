"""Shared test fixtures: the real public data in ../shared/fixtures, and an offline hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = (ROOT / ".." / "shared" / "fixtures").resolve()

# Never touch the network for the hub: fail at once instead of retrying for ~23 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The authors' prompt strings come from their scripts in the fixtures (never a download); a test that
# needs the download or the no-copy case unsets this and points the raw-file host at 127.0.0.1.
os.environ.setdefault("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo"))
os.environ.setdefault("MATBENCH_AUTHORS_BASE_URL", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture()
def fast_search_retries(monkeypatch):
    """Search backends retry a dead server as in a real run (every attempt is made) without the backoff's
    seconds of waiting: for tests where a search failure is the input, not the thing timed."""
    from matbench.tools.search.base import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after=None: 0.001)
