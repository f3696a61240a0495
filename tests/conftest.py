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
