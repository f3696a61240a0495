"""#20.12: the native-tools protocol stores replies, arguments, tool output and answers capped at 256 KiB with
their true length, as the tag protocols do; the model still gets every byte."""

from __future__ import annotations

import json

from runtime_helpers import RetrievalServer

from matbench.cli import main
from matbench.records.run_dir import MAX_TEXT_BYTES

HUGE = MAX_TEXT_BYTES + 50_000


def _strings(node, path=""):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")


def test_huge_reply_arguments_output_and_answer_are_capped(tmp_path, fixtures_dir, monkeypatch):
    reply, query, answer, name = "r" * HUGE, "q" * HUGE, "a" * HUGE, "n" * HUGE
    script = {"samples": {"1": [
        {"text": reply, "reasoning": "t" * HUGE, "tool_calls": [
            {"id": "c1", "name": "search", "arguments": {"query": query}},
            {"id": "c2", "name": name, "arguments": "{" + "x" * HUGE},
        ]},
        {"text": "", "tool_calls": [{"id": "c3", "name": "answer", "arguments": {"text": answer}}]},
    ]}}
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with RetrievalServer([("Big", "p" * HUGE)]) as rs:
        rc = main(["eval", "--no-progress", "--model", f"scripted:{path}", "--task", "mat-search",
                   "--protocol", "tools", "--data-dir", str(fixtures_dir / "mat" / "search-demo"), "--ids", "1",
                   "--search", f"retriever:{rs.url}", "--search-cache", "off", "--runs-root", str(tmp_path / "r")])
        assert rs.queries == [query]  # the tool got the whole argument
    assert rc == 0
    (run,) = (tmp_path / "r").iterdir()
    (line,) = (run / "predictions.jsonl").read_text().splitlines()
    rec = json.loads(line)
    too_long = [p for p, s in _strings(rec) if len(s.encode()) > MAX_TEXT_BYTES]
    assert not too_long, too_long
    first, second = rec["trajectory"]
    assert first["output_chars"] == HUGE and first["think_chars"] == HUGE
    search, unknown = first["tool_calls"]
    assert search["arguments_chars"] == len(json.dumps({"query": query}))
    assert search["result_chars"] > MAX_TEXT_BYTES and search["input"] == query[:MAX_TEXT_BYTES]
    assert unknown["function"] == name[:MAX_TEXT_BYTES] and unknown["result_chars"] > HUGE
    assert second["answer_chars"] == HUGE and rec["prediction"] == answer[:MAX_TEXT_BYTES]
    assert len(line) < 20 * MAX_TEXT_BYTES
