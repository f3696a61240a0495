"""#21.10: a run says when its model never used its tools. Samples that called no tool and samples that never
answered are counted (running totals, so a resume stays right) in the summary line and summary.json, with a
hint when most samples called no tool; driven in process with the `scripted:` model."""

from __future__ import annotations

import json
from pathlib import Path

from runtime_helpers import ROOT, main_eval, read_jsonl, run_dir_of

DEMO = ROOT / "matbench" / "data" / "demo"
CORPUS = DEMO / "hotpotqa-paragraphs.jsonl"
TALK = "I think the answer is yes."  # plain text, no native tool call


def _args(tmp_path: Path, script: dict, protocol: str, *extra: str) -> list[str]:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script), encoding="utf-8")
    return [
        "--model", f"scripted:{path}", "--task", "hotpotqa", "--data-dir", str(DEMO / "hotpotqa"),
        "--search", f"local:{CORPUS}", "--protocol", protocol,
        "--runs-root", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), *extra,
    ]


def _summary_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("errors="))


def test_tools_protocol_without_native_calls_says_so(tmp_path, capsys):
    """The model writes text every turn (a server without --enable-auto-tool-choice): five samples end with no
    answer after the call limit. The run still ends ok, but says what happened and what to check."""
    rc, out, err = main_eval(_args(tmp_path, {"default": [TALK] * 5}, "tools"), capsys)
    assert rc == 0, err
    assert "no_tool_calls=5 no_answer=5" in _summary_line(out)
    assert "hint: 5 of 5 samples called no tool: is the model using native tool calls?" in out
    assert "--enable-auto-tool-choice" in out
    run = json.loads((run_dir_of(out) / "summary.json").read_text())["run"]
    assert run["no_tool_calls"] == 5 and run["no_answer"] == 5 and "native tool calls" in run["no_tool_hint"]


def test_counts_over_a_mixed_run_and_its_resume(tmp_path, capsys):
    """Two samples search and answer with native calls, one answers at once with answer(), two only talk; the
    counts survive a resume that adds samples (totals loaded from predictions.jsonl)."""
    search = {"tool_calls": [{"name": "search", "arguments": {"query": "Scott Derrickson"}}]}
    answer = {"tool_calls": [{"name": "answer", "arguments": {"text": "yes"}}]}
    script = {
        "samples": {"dev_0": [search, answer], "dev_1": [search, answer], "dev_2": [answer]},
        "default": [TALK] * 5,
    }
    args = _args(tmp_path, script, "tools")
    rc, out, err = main_eval([*args, "--limit", "3"], capsys)
    assert rc == 0, err
    assert "no_tool_calls=0 no_answer=0" in _summary_line(out) and "hint:" not in out
    rc, out, err = main_eval(args, capsys)  # the same command resumes: dev_3 and dev_4 only talk
    assert rc == 0, err
    assert "no_tool_calls=2 no_answer=2" in _summary_line(out)
    assert "hint:" not in out  # 2 of 5: most samples did use their tools
    run = json.loads((run_dir_of(out) / "summary.json").read_text())["run"]
    assert (run["no_tool_calls"], run["no_answer"], run.get("no_tool_hint")) == (2, 2, None)
    rows = {r["id"]: r for r in read_jsonl(run_dir_of(out) / "predictions.jsonl")}
    assert rows["dev_2"]["tool_calls"] == {} and rows["dev_2"]["prediction"] == "yes"  # answer() is a call
    rc, out, err = main_eval(args, capsys)  # nothing left to do: the counts stay
    assert rc == 0 and "no_tool_calls=2 no_answer=2" in _summary_line(out)


def test_tag_protocol_counts_samples_that_never_searched(tmp_path, capsys):
    """Tag protocols count too; their hint does not talk about native tool calls. An API error is not a sample
    that called no tool (it never had the chance)."""
    script = {
        "samples": {"dev_0": ["<search> Scott Derrickson </search>", "<answer> yes </answer>"],
                    "dev_1": [{"error": "HTTP 500 from the scripted server"}]},
        "default": ["<answer> no </answer>"],
    }
    rc, out, err = main_eval(_args(tmp_path, script, "matbench-wording"), capsys)
    assert rc == 1, err  # dev_1's API error
    assert "no_tool_calls=3 no_answer=0" in _summary_line(out)
    assert "hint: 3 of 4 samples called no tool: the model answered without the task's tools" in out
    assert "native" not in out
