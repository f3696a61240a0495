"""Leaderboard and reports: submit runs, keep reference entries, build the leaderboard, compare and view runs.

Modules: ``entries`` (the stored entry record), ``submit`` (validate a run, rescore it), ``reference`` (the
authors' published results), ``leaderboard`` (the pivot and its md/csv/json outputs), ``html_page`` (the static
leaderboard page), ``compare`` (paired bootstrap), ``viewer`` (one run's HTML report), ``browser`` (headless
screenshots for docs and tests).
"""

from __future__ import annotations

import os
from pathlib import Path


def leaderboard_dir(override: str | Path | None = None) -> Path:
    """``--leaderboard-dir``, else ``$MATBENCH_LEADERBOARD_DIR``, else the repository's ``leaderboard/`` (an
    installed wheel: its shipped entries)."""
    if override:
        return Path(override)
    env = os.environ.get("MATBENCH_LEADERBOARD_DIR")
    if env:
        return Path(env)
    from matbench.data.shipped import shipped_path

    return shipped_path("leaderboard")  # the checkout's leaderboard/, else the installed copy


def submissions_dir(root: Path) -> Path:
    return root / "submissions"
