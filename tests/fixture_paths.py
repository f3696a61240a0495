"""Where the test fixtures (real public data, see ../shared/fixtures/README.md) are, and what to say when
they are missing: one place for the main suite and the engine lane."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / ".." / "shared" / "fixtures"
FIXTURES = Path(os.environ.get("MATBENCH_FIXTURES") or DEFAULT).expanduser().resolve()
#: MATBENCH_ALLOW_SKIP=1: tests that need the fixtures are skipped instead of failing the session
ALLOW_SKIP = os.environ.get("MATBENCH_ALLOW_SKIP", "") == "1"
#: the fixtures a test asks for by name; a test that takes one of these needs the folder
FIXTURE_NAMES = ("fixtures_dir", "fixtures")


def missing_message(n_tests: int) -> str:
    """One line: where the fixtures were looked for, how to get them, how to skip instead."""
    return (
        f"test fixtures not found at {FIXTURES} ({n_tests} selected tests need them): assemble them with "
        f"`scripts/fetch-fixtures.sh {FIXTURES}` (or point MATBENCH_FIXTURES at a copy); "
        "MATBENCH_ALLOW_SKIP=1 skips those tests instead"
    )
