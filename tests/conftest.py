"""Shared test fixtures: the real public data in $MATBENCH_FIXTURES (default ../shared/fixtures), and an
offline hub. Missing fixtures fail the session at collection, in one line that says how to get them
(``scripts/fetch-fixtures.sh``), unless MATBENCH_ALLOW_SKIP=1: a suite that passes while skipping most of
itself tells nobody anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixture_paths import ALLOW_SKIP, FIXTURE_NAMES, FIXTURES, ROOT, missing_message

__all__ = ["FIXTURES", "ROOT"]

# Never touch the network for the hub: fail at once instead of retrying for ~23 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The authors' prompt strings come from their scripts in the fixtures (never a download); a test that
# needs the download or the no-copy case unsets this and points the raw-file host at 127.0.0.1.
os.environ.setdefault("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo"))
os.environ.setdefault("MATBENCH_AUTHORS_BASE_URL", "http://127.0.0.1:9")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """No fixtures: fail now, before any test runs (or, with MATBENCH_ALLOW_SKIP=1, skip what needs them)."""
    if FIXTURES.is_dir():
        return
    needing = [i for i in items if set(FIXTURE_NAMES) & set(getattr(i, "fixturenames", ()))]
    if not needing:
        return
    if not ALLOW_SKIP:
        raise pytest.UsageError(missing_message(len(needing)))
    for item in needing:
        item.add_marker(pytest.mark.skip(reason=f"MATBENCH_ALLOW_SKIP=1 and no fixtures at {FIXTURES}"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():  # only reachable when a test asks for it outside collection
        pytest.fail(missing_message(1), pytrace=False)
    return FIXTURES


@pytest.fixture()
def fast_search_retries(monkeypatch):
    """Search backends retry a dead server as in a real run (every attempt is made) without the backoff's
    seconds of waiting: for tests where a search failure is the input, not the thing timed."""
    from matbench.tools.search.base import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after=None: 0.001)
