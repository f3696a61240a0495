"""An example matbench plug-in (README "Extending matbench"): a model backend, a scorer, a search backend, a
tool, a data format, a task and a command, each announced by an entry point in the ``.dist-info/entry_points.txt`` beside
this package (what ``pip install`` writes from ``[project.entry-points."matbench.<kind>"]`` tables)."""

from pathlib import Path

#: the ``matbench.tasks`` entry point names this path: the spec, its prompt file beside it
CAPITALS_TASK = Path(__file__).with_name("capitals.yaml")
