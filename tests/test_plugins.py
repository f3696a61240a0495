"""Plug-ins: a package on the path whose ``.dist-info/entry_points.txt`` names a scorer, a search backend, a data
format, a task and a command is used through the command line like matbench's own (README "Extending
matbench"); a plug-in cannot replace a built-in, and a broken one is reported without breaking the rest."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
from runtime_helpers import ROOT, main_eval, read_jsonl, run_dir_of

from matbench.cli import main
from matbench.registry import REGISTRIES

PLUGINS = Path(__file__).resolve().parent / "plugins"

SCRIPT = """
samples:
  fr:
    - "<think> Look it up. </think>\\n<search> capital of France </search>"
    - "<think> The passage says Paris. </think>\\n<answer> It is Paris </answer>"
  jp:
    - "<think> Look it up. </think>\\n<search> capital of Japan </search>"
    - "<think> Found it. </think>\\n<answer> Tokyo </answer>"
  ch:
    - "<think> What is a federal city? </think>\\n<define> federal city </define>"
    - "<think> Bern is the seat of government. </think>\\n<answer> Bern </answer>"
default: ["<think> I do not know. </think>\\n<answer> Lyon </answer>"]
"""
PASSAGES = [
    {"title": "Paris", "text": "Paris is the capital of France"},
    {"title": "Tokyo", "text": "Tokyo is the capital of Japan"},
    {"title": "Bern", "text": "Bern is the federal city of Switzerland"},
]


def _rescan() -> None:
    """As in a fresh process: the registries read the entry points again and the plug-in is imported anew."""
    for registry in REGISTRIES.values():
        registry.rescan()
    for name in [m for m in sys.modules if m.split(".")[0] == "matbench_example_plugin"]:
        del sys.modules[name]


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """The example plug-in installed as pip leaves it: the package and its .dist-info on sys.path."""
    site = tmp_path / "site"
    shutil.copytree(PLUGINS, site)
    monkeypatch.syspath_prepend(str(site))
    _rescan()
    yield site
    monkeypatch.undo()
    _rescan()


def _data(tmp_path: Path) -> tuple[Path, Path, Path]:
    data = tmp_path / "capitals.tsv"
    data.write_text("fr\tWhat is the capital of France?\tParis\njp\tcapital of Japan?\tTokyo\n"
                    "ch\tcapital of Switzerland?\tBern\nit\tcapital of Italy?\tRome\n", encoding="utf-8")
    passages = tmp_path / "passages.jsonl"
    passages.write_text("".join(json.dumps(p) + "\n" for p in PASSAGES), encoding="utf-8")
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    return data, passages, script


def test_each_kind_through_the_command_line(plugin_path, tmp_path, capsys):
    assert main(["tasks", "--json"]) == 0
    tasks = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert tasks["capitals"]["scoring"] == "contains" and "mat-search" in tasks  # beside matbench's own

    assert main(["capitals-info"]) == 0  # a command
    assert "matbench-example-plugin" in capsys.readouterr().out

    data, passages, script = _data(tmp_path)
    rc, out, err = main_eval(
        ["--model", f"scripted:{script}", "--task", "capitals", "--data-file", str(data),
         "--search", f"keyword:{passages}", "--runs-root", str(tmp_path / "runs"),
         "--cache-dir", str(tmp_path / "cache")],
        capsys,
    )
    assert rc == 0, err
    run = run_dir_of(out)
    rows = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    # the data format read the file, the search backend answered, the task's scorer scored
    assert sorted(rows) == ["ch", "fr", "it", "jp"]
    (call,) = rows["fr"]["trajectory"][0]["tool_calls"]
    hits = call["results"]
    assert hits[0]["title"] == "Paris" and len(hits) == 2  # the task's top_k
    assert (rows["fr"]["f1"], rows["fr"]["em"]) == (1.0, 0.0)  # "It is Paris" contains the answer
    assert (rows["jp"]["f1"], rows["jp"]["em"]) == (1.0, 1.0)
    assert (rows["it"]["f1"], rows["it"]["em"]) == (0.0, 0.0)
    # the tool: called by its tag, its record in the one trajectory shape
    assert rows["ch"]["tool_calls"] == {"define": 1} and rows["ch"]["em"] == 1.0
    (call,) = rows["ch"]["trajectory"][0]["tool_calls"]
    assert call["name"] == "define" and call["input"] == "federal city" and call["error"] is None
    assert call["definition"].startswith("Bern is the federal city")
    config = json.loads((run / "config.json").read_text())
    assert config["scoring"] == "contains" and config["search"]["params"] == {"file": "passages.jsonl",
                                                                             "passages": 3}
    assert config["define"] == {"glossary": "glossary.json", "terms": 1}
    capsys.readouterr()
    assert main(["score", str(run)]) == 0  # the run's own scorer, read back from its config
    table = capsys.readouterr().out
    assert "scoring=contains" in table and "Contains" in table and "75.00" in table
    assert main(["score", str(run), "--scoring", "squad", "--json"]) == 0  # a built-in on a plug-in task
    assert json.loads(capsys.readouterr().out)["em"] == pytest.approx(2 / 4)


def test_a_model_backend(plugin_path, tmp_path, capsys):
    assert main(["models"]) == 0
    backends = next(line for line in capsys.readouterr().out.splitlines() if "backends: " in line)
    assert "constant" in backends.split("backends: ", 1)[1].split(";")[0]  # `matbench models` shows it
    data, passages, _ = _data(tmp_path)
    rc, out, err = main_eval(
        ["--model", "constant:Paris", "--task", "capitals", "--data-file", str(data),
         "--search", f"keyword:{passages}", "--runs-root", str(tmp_path / "runs")],
        capsys,
    )
    assert rc == 0, err
    run = run_dir_of(out)
    rows = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    assert {k: (r["prediction"], r["turns"], r["f1"]) for k, r in rows.items()} == {
        "fr": ("Paris", 1, 1.0), "jp": ("Paris", 1, 0.0), "ch": ("Paris", 1, 0.0), "it": ("Paris", 1, 0.0)
    }
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["backend"] == "constant" and config["model"]["model"] == "Paris"
    rc, out, err = main_eval(  # another constant is another model: a new run, not a resume of this one
        ["--model", "constant:Rome", "--task", "capitals", "--data-file", str(data),
         "--search", f"keyword:{passages}", "--runs-root", str(tmp_path / "runs")],
        capsys,
    )
    assert rc == 0, err
    assert run_dir_of(out) != run
    assert json.loads((run_dir_of(out) / "summary.json").read_text())["f1"] == 0.25


def test_a_run_scored_by_a_plugin_that_is_gone(tmp_path, capsys, caplog, monkeypatch):
    site = tmp_path / "site"
    shutil.copytree(PLUGINS, site)
    monkeypatch.syspath_prepend(str(site))
    _rescan()
    demo = ROOT / "matbench" / "data" / "demo"
    rc, out, err = main_eval(
        ["--model", "scripted:quickstart", "--task", "hotpotqa", "--data-dir", str(demo / "hotpotqa"),
         "--search", f"local:{demo / 'hotpotqa-paragraphs.jsonl'}", "--protocol", "matbench-wording",
         "--scoring", "contains", "--limit", "2", "--runs-root", str(tmp_path / "runs")],
        capsys,
    )
    assert rc == 0, err
    run = run_dir_of(out)
    monkeypatch.undo()  # the plug-in is uninstalled
    _rescan()
    assert main(["score", str(run)]) == 2  # no number without the scorer the run was made with
    assert "unknown scorer 'contains'; choose one of: visual-arft, squad, anls" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING):
        assert main(["view", str(run), "--out", str(tmp_path / "r.html")]) == 0  # the recorded numbers
    assert "unknown scorer 'contains'" in caplog.text and "showing the recorded scores" in caplog.text
    assert "scoring</b> contains" in (tmp_path / "r.html").read_text()


def test_a_plugin_cannot_replace_a_builtin(plugin_path, tmp_path, caplog):
    dist = next(plugin_path.glob("*.dist-info"))
    eps = dist / "entry_points.txt"
    eps.write_text(eps.read_text() + "\n[matbench.scorers]\nvisual-arft = matbench_example_plugin.scorers:Contains\n")
    _rescan()
    from matbench.registry import SCORERS
    from matbench.scoring.rules import VisualArft

    with caplog.at_level(logging.WARNING):  # names(): the entry points are read here even if an earlier
        assert "visual-arft" in SCORERS.names()  # test of this process already loaded the built-in scorer
        assert SCORERS.load("visual-arft") is VisualArft
    assert "tries to replace matbench's scorer 'visual-arft'" in caplog.text


def test_a_broken_plugin_is_reported_and_the_rest_works(plugin_path, tmp_path, capsys, caplog):
    (plugin_path / "matbench_example_plugin" / "commands.py").write_text("import not_installed_module\n")
    (plugin_path / "matbench_example_plugin" / "capitals.yaml").write_text("name: [unclosed\n")
    _rescan()
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["tasks"]) == 0  # the broken task is left out; matbench's tasks are listed
    out = capsys.readouterr().out
    assert "mat-search" in out and "capitals" not in out
    warned = [r.getMessage() for r in caplog.records]
    assert any("plug-in command 'capitals-info' left out" in w and "not_installed_module" in w for w in warned)
    assert any("capitals.yaml: cannot read task spec" in w and "\n" not in w for w in warned)  # one line
    assert main(["score", str(tmp_path), "--task", "capitals"]) == 2  # asked for by name: one clear line
    assert "capitals.yaml: cannot read task spec" in capsys.readouterr().err
