"""An example matbench plug-in (README "Extending matbench"): a scorer, a search backend, a data format, a task
and a command, each announced by an entry point in ``matbench_example_plugin-0.1.dist-info/entry_points.txt``
(what ``pip install`` writes from a ``[project.entry-points."matbench.<kind>"]`` table)."""

from pathlib import Path

#: the ``matbench.tasks`` entry point names this path: the spec, its prompt file beside it
CAPITALS_TASK = Path(__file__).with_name("capitals.yaml")
