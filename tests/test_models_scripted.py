"""`scripted:FILE`: the in-process model that replays a script, driven through `matbench.cli.main` in process.

Uses only what ships with the package (the quickstart script, the five demo HotpotQA rows and their
paragraphs), so these run without the shared fixtures, a server or a key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import ROOT, main_eval, read_jsonl, run_dir_of

from matbench.cli import main

DEMO = ROOT / "matbench" / "data" / "demo"
CORPUS = DEMO / "hotpotqa-paragraphs.jsonl"


def _demo_args(tmp_path: Path, model: str, *extra: str) -> list[str]:
    return [
        "--model", model, "--task", "hotpotqa", "--data-dir", str(DEMO / "hotpotqa"),
        "--search", f"local:{CORPUS}", "--protocol", "matbench-wording",
        "--runs-root", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), *extra,
    ]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_quickstart_dry_run_as_readme_says(tmp_path, capsys):
    """README's first command: five samples, the shipped script, the shipped demo rows, no key, no server."""
    rc, out, err = main_eval(_demo_args(tmp_path, "scripted:quickstart", "--limit", "5"), capsys)
    assert rc == 0, err
    run = run_dir_of(out)
    rows = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    assert sorted(rows) == ["dev_0", "dev_1", "dev_2", "dev_3", "dev_4"]
    assert rows["dev_0"]["prediction"] == "yes" and rows["dev_0"]["turns"] == 3
    assert rows["dev_0"]["tool_calls"] == {"search": 2}
    # the searches ran against the shipped corpus: the supporting paragraph is among the results
    first = rows["dev_1"]["trajectory"][0]["tool_calls"][-1]
    assert "Kiss and Tell (1945 film)" in [h["title"] for h in first["results"]]
    assert rows["dev_4"]["em"] == 0.0 and 0 < rows["dev_4"]["f1"] < 1  # "Greenwich Village": partial credit
    config = json.loads((run / "config.json").read_text())
    script = ROOT / "matbench" / "data" / "scripts" / "quickstart.yaml"
    import hashlib

    assert config["model"]["backend"] == "scripted"
    assert config["model"]["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()


def test_models_lists_the_shipped_scripts(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["alias"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["scripted:quickstart"]["backend"] == "scripted"


def test_replies_per_sample_default_and_past_the_end(tmp_path, capsys):
    script = _write(tmp_path, "s.yaml", """
samples:
  dev_0: ["<answer> yes </answer>"]
  hotpotqa/dev_1:                      # TASK/ID wins over ID
    - "<search> Shirley Temple </search>"
    - "<answer> Chief of Protocol </answer>"
  dev_1: ["<answer> wrong </answer>"]
  dev_2: ["<search> Animorphs </search>"]          # one reply short: turn 2 is an error
  dev_3: [{error: "HTTP 503 from the scripted server"}]
default: ["<answer> no </answer>"]
""")
    rc, out, err = main_eval(_demo_args(tmp_path, f"scripted:{script}"), capsys)
    assert rc == 1 and "2 samples ended in API errors" in err  # as for any backend's failed calls
    rows = {r["id"]: r for r in read_jsonl(run_dir_of(out) / "predictions.jsonl")}
    assert rows["dev_0"]["prediction"] == "yes"
    assert rows["dev_1"]["prediction"] == "Chief of Protocol" and rows["dev_1"]["turns"] == 2
    assert rows["dev_2"]["status"] == "error"
    assert "has 1 reply, turn 2 asked for one more" in rows["dev_2"]["error"]
    assert str(script) in rows["dev_2"]["error"]
    assert rows["dev_3"]["status"] == "error" and "HTTP 503" in rows["dev_3"]["error"]
    assert rows["dev_4"]["prediction"] == "no"  # the default


def test_tool_calls_for_the_tools_protocol(tmp_path, capsys):
    script = _write(tmp_path, "tools.json", json.dumps({"samples": {"dev_1": [
        {"tool_calls": [{"name": "search", "arguments": {"query": "Kiss and Tell 1945 Corliss Archer"}}]},
        {"tool_calls": [{"name": "search", "arguments": "{not json"}]},
        {"text": "Found it.", "tool_calls": [{"name": "answer", "arguments": {"text": "Chief of Protocol"}}]},
    ]}}))
    args = _demo_args(tmp_path, f"scripted:{script}", "--ids", "dev_1")
    args[args.index("matbench-wording")] = "tools"
    rc, out, err = main_eval(args, capsys)
    assert rc == 0, err
    [row] = read_jsonl(run_dir_of(out) / "predictions.jsonl")
    assert row["prediction"] == "Chief of Protocol" and row["turns"] == 3
    calls = [c for t in row["trajectory"] for c in t["tool_calls"]]
    assert calls[0]["call_id"] == "call_1_1" and "Shirley Temple" in calls[0]["result"]
    assert "not a JSON object" in calls[1]["result"]  # malformed arguments go to the model as written
    assert row["tool_errors"] == 1


def test_another_script_is_another_model(tmp_path, capsys):
    """The identity is the script's content: an edited script refuses to resume the run made by the old one."""
    script = _write(tmp_path, "s.yaml", "default: ['<answer> yes </answer>']\n")
    run_dir = tmp_path / "run"
    args = [*_demo_args(tmp_path, f"scripted:{script}", "--limit", "1"), "--run-dir", str(run_dir)]
    assert main_eval(args, capsys)[0] == 0
    script.write_text("default: ['<answer> no </answer>']\n")
    rc, _, err = main_eval(args, capsys)
    assert rc == 2 and "script_sha256" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("samples: {dev_0: [{txt: hi}]}", "s.yaml: samples.dev_0[0]: unknown field(s) txt"),
        ("samples: [1, 2]", "`samples` maps sample ids to lists of replies"),
        ("{}", "the script has no replies"),
        ("default: [{tool_calls: [{arguments: {}}]}]", "default[0].tool_calls[0]: a tool call is a mapping"),
        ("default: [': [", "not a valid script"),
    ],
)
def test_a_bad_script_is_one_line(tmp_path, capsys, text, message):
    script = _write(tmp_path, "s.yaml", text)
    rc, out, err = main_eval(_demo_args(tmp_path, f"scripted:{script}"), capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_unknown_script_and_base_url_are_refused(tmp_path, capsys):
    rc, _, err = main_eval(_demo_args(tmp_path, "scripted:no-such-script"), capsys)
    assert rc == 2 and "no script file 'no-such-script'" in err and "quickstart" in err
    rc, _, err = main_eval(
        [*_demo_args(tmp_path, "scripted:quickstart"), "--base-url", "http://127.0.0.1:9/v1"], capsys
    )
    assert rc == 2 and "drop --base-url" in err
