"""Build step only (metadata lives in pyproject.toml): the wheel carries copies of the task specs, prompt
templates, gold-id indexes (``tasks/``) and the shipped leaderboard entries (``leaderboard/submissions``)
under ``matbench/_shipped/``, so that an installed matbench works from any folder. The repository's
``tasks/`` and ``leaderboard/`` stay the only committed copies: a source checkout reads them directly."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"tasks": "tasks", "leaderboard/submissions": "leaderboard/submissions"}


class BuildPyWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's own folders
        target = Path(self.build_lib) / "matbench" / "_shipped"
        for source, dest in SHIPPED.items():
            out = target / dest
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(ROOT / source, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithShipped})
