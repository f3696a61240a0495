"""With no protocol flags (the authors' strings read from their scripts), and with the same strings as a
--protocol-file, every request text matches the fixture's worked examples byte for byte."""

from __future__ import annotations

import json

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer, request_text
from runtime_helpers import RetrievalServer, fake_eval, read_jsonl, run_dir_of

from matbench.protocols import visual_arft as va


def _template(described: str) -> str:
    """The fixture writes templates with a literal backslash-n and {model_output}; matbench uses {output}."""
    return described.replace("\\n", "\n").replace("{model_output}", "{output}")


def authors_protocol_files(fixtures_dir, tmp_path):
    proto = json.loads((fixtures_dir / "protocol" / "visual-arft-protocol.json").read_text())
    s, c = proto["search"], proto["coding"]
    search = {
        "layout": "search",
        "instructions": (fixtures_dir / "protocol" / s["instructions_file"]).read_text(),
        "first": _template(s["first_text"]),
        "after_search": _template(s["after_search"]),
        "after_other": _template(s["after_other"]),  # no tag: the text stays as it was
        "after_answer": _template(s["after_answer"]),
        # "'<information> ' + for i, snippet: f'{i+1}. Content:' + snippet (no separator) + ' </information> '"
        "information": {
            "header": "<information> ",
            "item": "{i}. Content:{snippet}",
            "separator": "",
            "footer": " </information> ",
        },
    }
    coding = {
        "layout": "coding",
        "instructions": (fixtures_dir / "protocol" / c["instructions_file"]).read_text(),
        "first": _template(c["first_text"]),
        "after_problem": _template(c["after_problem"]),
        "after_code": _template(c["after_code"].split("  (")[0]),
        "after_other": "{text}",
        "tips": dict(c["tips"]),
    }
    paths = []
    for name, data in (("search", search), ("coding", coding)):
        path = tmp_path / f"authors-{name}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        paths.append(path)
    return proto, paths


@pytest.mark.parametrize("how", ["default", "protocol-file"])
def test_search_layout_byte_exact(tmp_path, fixtures_dir, how):
    proto, (search_file, _) = authors_protocol_files(fixtures_dir, tmp_path)
    flags = ["--protocol-file", str(search_file)] if how == "protocol-file" else []
    turns = proto["examples"]["mat-search id 1"]
    snippets = turns[1]["search_snippets"]
    outputs = iter([t["model_output"] for t in turns[1:]])
    with (
        RetrievalServer([(f"t{i}", s) for i, s in enumerate(snippets)]) as rs,
        FakeOpenAIServer(lambda req: next(outputs)) as srv,
    ):
        out = fake_eval(
            srv,
            tmp_path,
            "mat-search",
            str(fixtures_dir / "mat" / "search-demo"),
            "--ids",
            "1",
            *flags,
            "--search",
            f"retriever:{rs.url}",
            "--search-cache",
            "off",
        )
        assert out.returncode == 0, out.stderr
        sent = [request_text(r) for r in srv.requests]
        assert rs.queries == [turns[1]["search_query"]]
    assert len(sent) == 2
    assert sent[0] == turns[0]["request_text"]
    assert sent[1] == turns[1]["request_text"]
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert rec["prediction"] == turns[2]["answer"]
    cfg = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    if how == "protocol-file":
        assert cfg["protocol"]["name"] == "custom" and cfg["protocol"]["file"].endswith("authors-search.yaml")
    else:
        assert cfg["protocol"]["name"] == "visual-arft" and cfg["protocol"]["wording"] == "authors"
        source = cfg["protocol"]["source"]
        assert source["commit"] == "94866331ff38c516581697882a00f947c8bfda8a"
        assert source["file"].endswith("MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_visual_arft.py")
        assert set(source["strings_sha256"]) >= {"search.instructions", "search.first", "search.after_search"}
        assert cfg["protocol_source"]["via"] == "authors-repo"


def test_coding_layout_byte_exact(tmp_path, fixtures_dir):
    proto, _ = authors_protocol_files(fixtures_dir, tmp_path)
    turns = proto["examples"]["mat-coding id 12"]
    outputs = iter([t["model_output"] for t in turns[1:]])
    with FakeOpenAIServer(lambda req: next(outputs)) as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(fixtures_dir / "mat" / "coding-demo"), "--ids", "12")
        assert out.returncode == 0, out.stderr
        sent = [request_text(r) for r in srv.requests]
    assert sent == [t["request_text"] for t in turns[:3]]
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert rec["prediction"] == turns[3]["answer"] and rec["em"] == 1.0
    assert rec["trajectory"][0]["tool_calls"][0]["problems"] == turns[1]["problems"]
    assert rec["trajectory"][1]["tool_calls"][-1]["ok"] is turns[2]["code_ok"]


@pytest.mark.parametrize(
    "output,steps,answer",
    [
        ("<think> a </think>\n<answer> line one\nline two </answer>", ["answer"], "line one\nline two"),
        ("<answer> first </answer> <answer> second </answer>", ["answer"], "first"),
        ("<answer> never closed", ["answer"], None),
        ("<problem> {'rotation90', 'dark'} </problem>", ["problem"], None),
        ("<problem> {'crop'} </problem>\n<code>\n```python\nx=1\n```\n</code>", ["problem", "code"], None),
        ("nothing", [], None),
    ],
)
def test_parse_coding(output, steps, answer):
    act = va.parse_coding(output)
    assert act.steps == steps and act.answer == answer
    if "problem" in steps:
        assert act.problems == sorted(act.problems)


def test_search_prefers_answer():
    assert va.parse_search("<search> q </search><answer> a </answer>").steps == ["answer"]
    assert va.parse_search("<search>\n multi\nline </search>").query == "multi\nline"
    assert va.parse_search("<search>\n multi\nline </search>", dotall=False).query is None  # theirs
    assert va.parse_search("<search></search>").query == ""  # searched as is, like theirs
    unclosed = va.parse_search("<search> never closed")
    assert unclosed.kind == "search" and unclosed.query is None  # the episode repeats the last query
    assert va.parse_search("no tag at all").kind == "invalid"
    assert va.extract_answer("<answer> a\nb </answer>", dotall=False) is None
