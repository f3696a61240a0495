"""What a model replies is recorded faithfully: a 200 with no answer is an API error (retried, then `error`),
never an empty prediction scored 0; a runaway reply is stored once and capped, with its true length."""

from __future__ import annotations

import json

from fake_openai_server import FakeOpenAIServer, Reply, request_text
from runtime_helpers import read_jsonl, run_eval

from matbench.records.run_dir import MAX_TEXT_BYTES


def _args(fixtures_dir, run, *extra: str) -> list[str]:
    return [
        "--model",
        "openai:fake",
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--search",
        "retriever:http://127.0.0.1:9",  # never called: every reply answers at once
        "--max-concurrency",
        "1",
        "--no-response-cache",
        "--max-retries",
        "2",
        "--retry-delay",
        "0.01",
        "--run-dir",
        str(run),
        *extra,
    ]


EMPTY = {
    "no choices": [],
    "content null": [
        {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}
    ],
}


def test_a_200_without_an_answer_is_an_api_error(tmp_path, fixtures_dir):
    first_q = json.loads((fixtures_dir / "multihop/bamboogle/test.jsonl").read_text().splitlines()[0])
    seen: dict[str, int] = {}
    state = {"broken": True}

    def policy(req):
        text = request_text(req)
        seen[text] = seen.get(text, 0) + 1
        if first_q["question"] in text and state["broken"]:
            return Reply(choices=EMPTY["content null"])  # never an answer: retried, then `error`
        if seen[text] <= 2:
            return Reply(choices=EMPTY["no choices"])  # empty twice, then a real answer: retried to success
        return "<answer> x </answer>"

    run = tmp_path / "run"
    with FakeOpenAIServer(policy) as srv:
        out = run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "3")])
        assert out.returncode == 1, out.stderr  # a sample ended in an API error
        recs = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
        assert recs["test_0"]["status"] == "error" and recs["test_0"]["prediction"] is None
        assert (
            "content null" in recs["test_0"]["error"]
            and "gave up after 3 attempts" in recs["test_0"]["error"]
        )
        assert [recs[i]["status"] for i in ("test_1", "test_2")] == ["ok", "ok"]
        assert recs["test_1"]["prediction"] == "x" and srv.calls == 3 + 3 + 3
        assert json.loads((run / "summary.json").read_text())["run"]["errors"] == 1
        state["broken"] = False
        again = run_eval(
            ["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "3", "--retry-errors")]
        )
        assert again.returncode == 0, again.stderr
    recs = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    assert recs["test_0"]["status"] == "ok" and recs["test_0"]["prediction"] == "x"


def test_a_runaway_reply_is_stored_once_and_capped(tmp_path, fixtures_dir):
    long_think = "<think>" + "step " * ((1 << 20) // 5) + "</think>"  # about 1 MiB of thinking
    reply = long_think + "<answer> x </answer>"
    huge_answer = "<answer>" + "字" * (1 << 19) + "</answer>"  # 1.5 MiB of UTF-8 in the answer itself

    def policy(req):
        return huge_answer if "Citibank" in request_text(req) else reply

    run = tmp_path / "run"
    with FakeOpenAIServer(policy) as srv:
        out = run_eval(["--base-url", srv.base_url, *_args(fixtures_dir, run, "--limit", "2")])
    assert out.returncode == 0, out.stderr
    lines = (run / "predictions.jsonl").read_bytes().splitlines()
    recs = {json.loads(line)["id"]: (len(line), json.loads(line)) for line in lines}
    size, rec = recs["test_1"]
    (turn,) = rec["trajectory"]
    assert turn["output_chars"] == len(reply) and len(turn["output"].encode()) <= MAX_TEXT_BYTES
    assert turn["output"] == reply[: len(turn["output"])]
    assert rec["prediction"] == "x"
    assert size < MAX_TEXT_BYTES + 16 * 1024  # the reply's text once, not reply + think
    size, rec = recs["test_0"]
    (turn,) = rec["trajectory"]
    assert len(rec["prediction"].encode()) <= MAX_TEXT_BYTES and set(rec["prediction"]) == {"字"}
    assert turn["answer"] == rec["prediction"] and turn["output_chars"] == len(huge_answer)
    assert size < 3 * MAX_TEXT_BYTES + 16 * 1024  # the reply, its answer and the prediction, each capped
