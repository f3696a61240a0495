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


def writable_leaderboard_dir(override: str | Path | None = None) -> Path:
    """The leaderboard folder a command writes to (``submit``, ``leaderboard --write``): an installed matbench
    reads its shipped entries from inside the package, which is no place to write, so there a folder must be
    named."""
    root = leaderboard_dir(override)
    if not override and not os.environ.get("MATBENCH_LEADERBOARD_DIR"):
        from matbench.data.shipped import source_checkout

        if source_checkout() is None:
            from matbench.errors import ConfigError

            raise ConfigError(
                "an installed matbench has no leaderboard folder of its own to write to: pass --leaderboard-dir "
                "DIR (or set MATBENCH_LEADERBOARD_DIR=DIR); `matbench leaderboard` still reads the shipped entries"
            )
    return root


def submissions_dir(root: Path) -> Path:
    return root / "submissions"
