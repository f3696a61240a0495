"""A protocol cannot be relabelled (#20.11) and search settings rank apart (#19.2): `matbench eval` records the
sha256 of every turn's request text; `matbench submit` rebuilds each turn's text from the claimed protocol's
strings and the recorded outputs and refuses a run whose texts differ (a --protocol-file run whose config was
edited consistently to claim a stock protocol). Runs over different search settings get one ranking each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer, Reply, request_text
from runtime_helpers import RetrievalServer, fake_eval, read_jsonl, run_dir_of

from matbench.cli import main
from matbench.run.config import config_fingerprint

USAGE = {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}


def _searching(req: dict) -> Reply:
    """Search once, then answer: two turns, so that the rebuilt second text carries the search results."""
    text = request_text(req)
    if "<information>" in text:
        return Reply(text="<think>found it</think>\n<answer> Paris </answer>", usage=USAGE)
    return Reply(text="<think>look it up</think>\n<search> capital of France </search>", usage=USAGE)


def _eval(tmp_path: Path, data: Path, policy, *extra: str) -> Path:
    with FakeOpenAIServer(policy) as srv:
        out = fake_eval(srv, tmp_path, "bamboogle", str(data), *extra)
    assert out.returncode == 0, out.stderr
    return run_dir_of(out.stdout)


@pytest.fixture(scope="module")
def search_runs(fixtures_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """Two finished two-turn Bamboogle runs (the authors' protocol): a retriever and a local BM25 index."""
    tmp = tmp_path_factory.mktemp("search-runs")
    data = fixtures_dir / "multihop"
    corpus = fixtures_dir / "corpora" / "wiki18-first1000-passages.jsonl"
    with RetrievalServer([("Paris", "Paris is the capital of France."), ("France", "A country.")]) as rs:
        retriever = _eval(
            tmp / "a", data, _searching, "--search", f"retriever:{rs.url}", "--search-cache", "off"
        )
    local = _eval(tmp / "b", data, _searching, "--search", f"local:{corpus}", "--search-cache", "off")
    return {"retriever": retriever, "local": local, "url": rs.url}


def test_turns_record_their_request_sha256(search_runs):
    rec = read_jsonl(search_runs["retriever"] / "predictions.jsonl")[0]
    assert len(rec["trajectory"]) == 2
    assert all(len(t["request_sha256"]) == 64 for t in rec["trajectory"])


def test_stock_runs_pass_and_rank_apart_by_search_setting(search_runs, tmp_path, capsys):
    lb = tmp_path / "lb"
    for name in ("retriever", "local"):
        capsys.readouterr()
        rc = main(["submit", str(search_runs[name]), "--name", f"fake {name}", "--leaderboard-dir", str(lb)])
        assert rc == 0, capsys.readouterr().err
    setting = json.loads((search_runs["local"] / "config.json").read_text())["search"]["setting"]
    assert setting["name"] == "wiki18-first1000-passages.jsonl" and setting["passages"] == 1000
    assert len(setting["corpus_sha256"]) == 64
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json", "--leaderboard-dir", str(lb)]) == 0
    groups = json.loads(capsys.readouterr().out)["rankings"]["bamboogle"]
    labels = {g["search"]: g["systems"] for g in groups}
    local_label = f"local index wiki18-first1000-passages.jsonl (1000 passages, corpus sha256 {setting['corpus_sha256'][:12]})"
    assert labels == {f"retriever {search_runs['url']}": ["fake retriever"], local_label: ["fake local"]}
    assert main(["leaderboard", "--format", "md", "--leaderboard-dir", str(lb)]) == 0
    md = capsys.readouterr().out
    assert f"## Bamboogle — search: {local_label}" in md.replace("\\", "")
    assert md.count("## Bamboogle — search:") == 2  # one ranking per search setting, each from #1


def test_an_edited_search_result_is_caught_by_the_rebuild(search_runs, tmp_path, capsys):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(search_runs["retriever"], run)
    path = run / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[3]["trajectory"][0]["tool_calls"][0]["results"][0]["snippet"] = "Lyon is the capital of France."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(["submit", str(run), "--leaderboard-dir", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"sample {rows[3]['id']}, turn 2" in err


def test_a_relabelled_protocol_file_run_is_refused(fixtures_dir, tmp_path, capsys):
    data = fixtures_dir / "multihop"
    answer = lambda req: Reply(text="Paris", usage=USAGE)  # noqa: E731
    stock = _eval(tmp_path / "stock", data, answer, "--protocol", "direct")
    custom_file = tmp_path / "mine.yaml"
    custom_file.write_text(
        yaml.safe_dump(
            {
                "layout": "direct",
                "instructions": "Hint: the answer is usually Paris.",
                "first": "{instructions}\n{question}",
            }
        )
    )
    custom = _eval(
        tmp_path / "custom", data, answer, "--protocol", "direct", "--protocol-file", str(custom_file)
    )
    stock_config = json.loads((stock / "config.json").read_text())
    config = json.loads((custom / "config.json").read_text())
    assert config["protocol"]["name"] == "custom"
    config["protocol"] = stock_config["protocol"]  # relabelled, consistently: the fingerprint recomputed
    config["fingerprint"] = config_fingerprint(config)
    (custom / "config.json").write_text(json.dumps(config))
    lb = tmp_path / "lb"
    capsys.readouterr()
    assert main(["submit", str(custom), "--leaderboard-dir", str(lb)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "turn 1" in err and "relabelled" in err and "protocol direct" in err
    assert not (lb / "submissions").exists()
    assert main(["submit", str(stock), "--leaderboard-dir", str(lb)]) == 0  # the stock run passes


def _coding(req: dict) -> Reply:
    """problem -> code -> answer: the three kinds of turn of the coding layout."""
    text = request_text(req)  # the instructions name every tag: tell the turns by the replies so far
    if "fix it" in text:
        return Reply(text="<think>readable now</think>\n<answer> 42 </answer>", usage=USAGE)
    if "upside down" in text:
        code = "<code>\n```python\nimport cv2\nimg = cv2.imread(path)\ncv2.imwrite(path, img)\n```\n</code>"
        return Reply(text=f"<think>fix it</think>\n{code}", usage=USAGE)
    return Reply(text="<think>upside down</think>\n<problem> {'rotation180'} </problem>", usage=USAGE)


def test_a_stock_coding_run_passes_the_rebuild(fixtures_dir, tmp_path, capsys):
    with FakeOpenAIServer(_coding) as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(fixtures_dir / "mat" / "coding-demo"))
    assert out.returncode == 0, out.stderr
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    assert [t["action"] for t in rec["trajectory"]] == ["problem", "code", "answer"]
    capsys.readouterr()
    assert main(["submit", str(run), "--leaderboard-dir", str(tmp_path / "lb")]) == 0, capsys.readouterr().err


# --- native tool calling: every turn's conversation is rebuilt too ------------------------------------------
def _rebuilt_all_turns(run: Path) -> int:
    """Check every record of ``run`` with submit's rebuild; the number of turns rebuilt."""
    from matbench.protocols.replay import request_digests
    from matbench.report.submit import request_check
    from matbench.tasks import get_task

    config = json.loads((run / "config.json").read_text())
    check = request_check(config, get_task(config["task"]["name"]), None)
    assert check is not None and check.templates.layout == "tools"
    turns = 0
    for rec in read_jsonl(run / "predictions.jsonl"):
        check.check(rec)  # raises Refused on a mismatch
        built = list(request_digests(check.templates, rec["question"], rec["trajectory"]))
        assert len(built) == len(rec["trajectory"])  # no turn left unchecked
        turns += len(built)
    return turns


def test_native_tools_runs_pass_the_rebuild_turn_by_turn(tmp_path, fixtures_dir):
    from test_tools_protocol import _coding_run, _search_run, _tool_results

    def search_then_answer(req):
        if not _tool_results(req):
            return Reply(tool_calls=[{"id": "c1", "name": "search", "arguments": {"query": "LEGO name"}}])
        return Reply(tool_calls=[{"id": "c2", "name": "answer", "arguments": {"text": "Play well"}}])

    def parallel_searches(req):  # two per message, then the budget is used up
        n = len(_tool_results(req))
        return Reply(
            tool_calls=[
                {"id": f"c{n + i}", "name": "search", "arguments": {"query": f"q{n}"}} for i in range(2)
            ]
        )

    def malformed(req):
        results = _tool_results(req)
        if not results:
            return Reply(tool_calls=[{"id": "bad", "name": "search", "arguments": '{"query": "LEGO'}])
        if len(results) == 1:
            return Reply(tool_calls=[{"id": "nope", "name": "browse", "arguments": "{}"}])
        return Reply(tool_calls=[{"id": "ok", "name": "answer", "arguments": {"text": "Play well"}}])

    counts = []
    for i, policy in enumerate((search_then_answer, parallel_searches, malformed)):
        out, _, _ = _search_run(tmp_path / str(i), fixtures_dir, policy)
        counts.append(_rebuilt_all_turns(run_dir_of(out.stdout)))
    out, _, _ = _coding_run(tmp_path / "code", fixtures_dir / "mat" / "coding-demo", "gpt-4o")
    counts.append(_rebuilt_all_turns(run_dir_of(out.stdout)))  # run_python, its image message, answer
    assert counts == [2, 5, 3, 2]


def test_native_tools_search_text_is_rebuilt_from_the_claimed_strings(tmp_path, fixtures_dir):
    from test_tools_protocol import _search_run, _tool_results

    from matbench.report.submit import Refused

    def policy(req):
        if not _tool_results(req):
            return Reply(tool_calls=[{"id": "c1", "name": "search", "arguments": {"query": "LEGO name"}}])
        return Reply(tool_calls=[{"id": "c2", "name": "answer", "arguments": {"text": "Play well"}}])

    out, _, _ = _search_run(tmp_path, fixtures_dir, policy)
    run = run_dir_of(out.stdout)
    path = run / "predictions.jsonl"
    rec = read_jsonl(path)[0]
    rec["trajectory"][0]["tool_calls"][0]["results"][1]["snippet"] = "LEGO was founded in Lyon."
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(Refused, match="turn 2"):
        _rebuilt_all_turns(run)
