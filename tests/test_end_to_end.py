"""Whole paths from the CLI on run directories that `matbench eval` made against local servers:
eval -> submit -> leaderboard -> compare -> view, a search run replayed offline from the cache, and the
lock-step scheduler driving a real HTTP adapter."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_openai_server import FakeOpenAIServer, request_text
from runtime_helpers import RetrievalServer, read_jsonl, run_dir_of, run_eval

from matbench.cli import main


def _gold_by_question(fixtures_dir) -> dict[str, str]:
    rows = [json.loads(x) for x in (fixtures_dir / "multihop/bamboogle/test.jsonl").read_text().splitlines()]
    return {r["question"]: r["golden_answers"][0] for r in rows}


def _oracle(gold: dict[str, str], every: int):
    """Answers right for every ``every``-th question (by position in the set), else a fixed wrong answer
    (a bare reply: the direct protocol scores the whole reply, as the authors' direct scripts did)."""
    order = list(gold)

    def policy(req):
        text = request_text(req)
        for i, q in enumerate(order):
            if q in text:
                return f" {gold[q] if i % every == 0 else 'nobody'}\n"
        return "?"

    return policy


def test_eval_submit_leaderboard_compare_view(tmp_path, fixtures_dir):
    gold = _gold_by_question(fixtures_dir)
    data = ["--task", "bamboogle", "--data-dir", str(fixtures_dir / "multihop"), "--protocol", "direct"]
    runs = {}
    for name, every in (("weak", 4), ("strong", 1)):
        with FakeOpenAIServer(_oracle(gold, every)) as srv:
            out = run_eval(
                [
                    "--model",
                    f"openai:{name}",
                    "--base-url",
                    srv.base_url,
                    *data,
                    "--runs-root",
                    str(tmp_path / "runs"),
                ],
                cache_dir=tmp_path / "cache",
            )
        assert out.returncode == 0, out.stderr
        runs[name] = run_dir_of(out.stdout)
    summary = json.loads((runs["strong"] / "summary.json").read_text())
    assert summary["n"] == 125 and summary["em"] == 1.0
    lb = tmp_path / "lb"
    for name, run in runs.items():
        assert main(["submit", str(run), "--name", name.title(), "--leaderboard-dir", str(lb)]) == 0
    assert (
        main(
            [
                "leaderboard",
                "--format",
                "json",
                "--out",
                str(tmp_path / "lb.json"),
                "--leaderboard-dir",
                str(lb),
            ]
        )
        == 0
    )
    table = json.loads((tmp_path / "lb.json").read_text())
    assert "Strong" in json.dumps(table) and "Weak" in json.dumps(table)
    assert main(["compare", str(runs["weak"]), str(runs["strong"]), "--json", "--resamples", "2000"]) == 0
    # a tampered summary is refused with the reason
    s = json.loads((runs["weak"] / "summary.json").read_text())
    s["f1"] = 0.99
    (runs["weak"] / "summary.json").write_text(json.dumps(s))
    assert main(["submit", str(runs["weak"]), "--leaderboard-dir", str(tmp_path / "lb2")]) == 2
    assert main(["view", str(runs["strong"])]) == 0
    html = (runs["strong"] / "report.html").read_text()
    assert "james madison" in html.lower() and "data:image" not in html


def test_compare_json_numbers(tmp_path, fixtures_dir, capsys):
    gold = _gold_by_question(fixtures_dir)
    data = [
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--protocol",
        "direct",
        "--limit",
        "40",
    ]
    runs = []
    for name, every in (("a", 4), ("b", 2)):
        with FakeOpenAIServer(_oracle(gold, every)) as srv:
            out = run_eval(
                [
                    "--model",
                    f"openai:{name}",
                    "--base-url",
                    srv.base_url,
                    *data,
                    "--runs-root",
                    str(tmp_path / "runs"),
                ],
                cache_dir=tmp_path / "cache",
            )
        assert out.returncode == 0, out.stderr
        runs.append(run_dir_of(out.stdout))
    capsys.readouterr()
    assert main(["compare", str(runs[0]), str(runs[1]), "--json", "--resamples", "2000"]) == 0
    overall = json.loads(capsys.readouterr().out)["overall"]
    # b answers every 2nd question right, a every 4th: b wins exactly 10 of 40 samples and loses none
    em_a = sum(r["em"] for r in read_jsonl(runs[0] / "predictions.jsonl"))
    em_b = sum(r["em"] for r in read_jsonl(runs[1] / "predictions.jsonl"))
    assert (em_a, em_b) == (10, 20)
    assert (overall["n"], overall["won"], overall["lost"], overall["tied"]) == (40, 10, 0, 30)
    assert overall["diff_em"] == pytest.approx(0.25)
    assert overall["ci_em"][0] <= 0.25 <= overall["ci_em"][1] and overall["ci_em"][0] > 0


class _Serper:
    """A Serper-compatible endpoint on 127.0.0.1 that counts its calls."""

    def __init__(self):
        self.calls = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                organic = [
                    {
                        "title": f"T{i}",
                        "link": f"https://example.org/{i}",
                        "snippet": f"{body['q']} snippet {i}",
                        "position": i,
                    }
                    for i in range(1, 6)
                ]
                data = json.dumps({"organic": organic}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_search_run_replays_offline_from_the_cache(tmp_path, fixtures_dir):
    def policy(req):
        text = request_text(req)
        return (
            "<answer> done </answer>"
            if "<information>" in text
            else "<think> x </think>\n<search> lego </search>"
        )

    serper = _Serper()
    common = [
        "--model",
        "openai:fake",
        "--task",
        "mat-search",
        "--data-dir",
        str(fixtures_dir / "mat" / "search-demo"),
        "--search",
        "serper",
    ]
    srv = FakeOpenAIServer(policy).start()  # the same model server for both runs: its answers are cached
    try:
        first = run_eval(
            [*common, "--base-url", srv.base_url, "--run-dir", str(tmp_path / "live")],
            env_extra={"SERPER_API_KEY": "serper-secret", "SERPER_BASE_URL": serper.url},
            cache_dir=tmp_path / "cache",
        )
        assert first.returncode == 0, first.stderr
        assert serper.calls == 1  # both samples search "lego": the second is a cache hit
    finally:
        serper.stop()
    # No key, no search server, same model answers from the response cache: a bit-identical replay.
    calls, srv.policy = srv.calls, lambda req: "<answer> not from the cache </answer>"
    try:
        replay = run_eval(
            [
                *common,
                "--base-url",
                srv.base_url,
                "--search-cache",
                "read",
                "--response-cache",  # another run's answers: reuse across runs is asked for by name
                "--run-dir",
                str(tmp_path / "replay"),
            ],
            env_extra={"SERPER_API_KEY": "", "SERPER_BASE_URL": serper.url},  # now closed
            cache_dir=tmp_path / "cache",
        )
        assert replay.returncode == 0, replay.stderr
        assert srv.calls == calls
    finally:
        srv.stop()
    # Records are appended as samples finish: two concurrent samples may finish in either order.
    a = sorted(read_jsonl(tmp_path / "live" / "predictions.jsonl"), key=lambda r: r["id"])
    b = sorted(read_jsonl(tmp_path / "replay" / "predictions.jsonl"), key=lambda r: r["id"])
    strip = [{k: v for k, v in r.items() if k != "latency"} for r in a]
    again = [{k: v for k, v in r.items() if k != "latency"} for r in b]
    for rows in (strip, again):
        for r in rows:
            for t in r["trajectory"]:
                t.pop("latency"), t.pop("cached")
                for call in t["tool_calls"]:
                    call.pop("cached", None)
    assert strip == again
    summary = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert summary["run"]["search_cache"]["hits"] == 2 and summary["run"]["search_cache"]["misses"] == 0
    assert "serper-secret" not in (tmp_path / "live" / "config.json").read_text()


@pytest.mark.parametrize("n", [5])
def test_lockstep_scheduler_batches_rounds(tmp_path, fixtures_dir, n):
    """The in-process-engine scheduler, driven through a real HTTP adapter: one generate() per round."""
    from matbench.run.scheduler import EvalSettings, _evaluate, build_model, plan_task

    def policy(req):
        text = request_text(req)
        return (
            "<answer> a </answer>"
            if text.count("<think> x") >= 1
            else "<think> x </think>\n<search> q </search>"
        )

    with FakeOpenAIServer(policy) as srv, RetrievalServer([("Q", "a passage")]) as retriever:
        settings = EvalSettings(
            model="openai:fake",
            tasks=["bamboogle"],
            data_dir=str(fixtures_dir / "multihop"),
            limit=n,
            base_url=srv.base_url,
            run_dir=str(tmp_path / "run"),
            cache_dir=str(tmp_path / "cache"),
            response_cache=False,
            progress=False,
            search=f"retriever:{retriever.url}/retrieve",
        )
        model = build_model(settings)
        model.lockstep = True
        batches = []
        inner = model.generate

        async def generate(requests):
            batches.append(len(requests))
            return await inner(requests)

        model.generate = generate
        plan = plan_task(settings, "bamboogle", model, {})
        (summary,) = asyncio.run(_evaluate([plan], model, settings))
    assert batches == [n, n]  # round 1: all live episodes; round 2: the same ones, then all are done
    assert summary["n"] == n and summary["run"]["calls"] == 2 * n
    assert set(retriever.queries) == {"q"}  # the searches between the two rounds reached the live retriever
