"""Where the files matbench ships next to its code live: a source checkout's own ``tasks/`` and
``leaderboard/``, else the copies a built wheel carries under ``matbench/_shipped/`` (setup.py's build
step), so that an installed matbench works from any folder."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_ROOT.parent
SHIPPED_ROOT = PACKAGE_ROOT / "_shipped"


def source_checkout() -> Path | None:
    """The repository root when matbench runs from a checkout (editable install, PYTHONPATH), else None."""
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "tasks").is_dir():
        return REPO_ROOT
    return None


def shipped_path(relative: str) -> Path:
    """``tasks`` or ``leaderboard``: the checkout's folder, else the installed copy."""
    root = source_checkout()
    return (root if root is not None else SHIPPED_ROOT) / relative
