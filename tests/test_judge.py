"""The LLM judge (issue 19.1): `matbench judge RUN` and `matbench eval --judge` against scripted OpenAI-compatible
servers on 127.0.0.1, with both prompts; judgments.jsonl's guarantees; the judge block in summary and score.

The SenseNova-MARS reference below is written from reading their ``compute_score_llm``: their strings are taken
from the fixture copy of their script (by source order of the assignments), never pasted here.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import shutil
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply, request_text
from PIL import Image

from matbench.cli import main
from matbench.judge import sensenova

SCRIPT = "verl/verl/utils/reward_score/tool.py"


@pytest.fixture
def env(tmp_path, monkeypatch, fixtures_dir):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-never-logged")
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MATBENCH_SENSENOVA_REPO", str(fixtures_dir / "sensenova-mars-repo"))
    return tmp_path


def model_policy(req: dict) -> str:
    """The evaluated model: a paraphrase for MAT-Search id 1 (gold "Play well."), the exact gold for 1001."""
    return "Playing well" if "brand" in request_text(req) else "Yes"


def eval_args(srv, tmp_path: Path, fixtures_dir: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--no-progress",
        "--model",
        "openai:fake",
        "--base-url",
        srv.base_url,
        "--task",
        "mat-search",
        "--data-dir",
        str(fixtures_dir / "mat" / "search-demo"),
        "--protocol",
        "direct",
        "--runs-root",
        str(tmp_path / "runs"),
        *extra,
    ]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory, fixtures_dir) -> tuple[Path, int]:
    """One evaluated run (2 samples) for the module; each test judges its own copy. Returns (run, model calls)."""
    base = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "sk-test-secret-never-logged")
    mp.setenv("MATBENCH_CACHE_DIR", str(base / "cache"))
    try:
        with FakeOpenAIServer(model_policy) as srv:
            assert main(eval_args(srv, base, fixtures_dir)) == 0
            calls = srv.calls
    finally:
        mp.undo()
    (run,) = (base / "runs").iterdir()
    return run, calls


@pytest.fixture
def run(made_run, env) -> Path:
    copy = env / "runs" / made_run[0].name
    shutil.copytree(made_run[0], copy)
    return copy


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judge(run: Path, srv, *extra: str) -> int:
    return main(["judge", str(run), "--judge", "openai:judge", "--judge-base-url", srv.base_url, *extra])


def system_of(req: dict) -> str:
    return req["messages"][0]["content"]


# --- their loop, from reading compute_score_llm ---------------------------------------------------------------
def their_strings(fixtures_dir: Path) -> tuple[list[str], list[str]]:
    """``system_message`` and ``prompt`` assignments of compute_score_llm in source order: [vision, text] and
    [vision+candidates, vision, text+candidates, text]."""
    tree = ast.parse((fixtures_dir / "sensenova-mars-repo" / SCRIPT).read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_score_llm")

    def assigned(name: str) -> list[str]:
        nodes = [
            n
            for n in ast.walk(fn)
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
        ]
        return [
            n.value.value for n in sorted(nodes, key=lambda n: n.lineno) if isinstance(n.value, ast.Constant)
        ]

    return assigned("system_message"), assigned("prompt")


def their_image(path: Path) -> str:
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def test_sensenova_judge_is_their_loop(run, fixtures_dir):
    """Their EM short-circuit (1001: "Yes" = "Yes", no call), one call per gold answer with their system message
    and template, the text then the JPEG image, <judge>Yes</judge> parsed (the evaluated model's server is gone)."""
    systems, prompts = their_strings(fixtures_dir)
    replies = iter(["Some words <JUDGE> yes </judge> <reason>same meaning</reason>"])
    with FakeOpenAIServer(lambda req: next(replies), models=["judge"]) as js:
        assert judge(run, js, "--judge-prompt", "sensenova-mars") == 0
        assert js.calls == 1  # id 1001 is an exact match by their rules: no call
        req = js.requests[0]
    recs = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    q = recs["1"]["question"]
    assert req["messages"][0] == {"role": "system", "content": systems[0]}
    text = prompts[1].format(question=q, ground_truth_answer="Play well.", model_response="Playing well")
    image = their_image(run / recs["1"]["trajectory"][0]["image"])
    assert req["messages"][1]["content"] == [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": image}},
    ]
    assert req["temperature"] == 0.0 and len(req["messages"]) == 2
    judged = {j["id"]: j for j in read_jsonl(run / "judgments.jsonl")}
    assert judged["1"]["verdict"] == "correct" and judged["1"]["reason"] == "same meaning"
    assert (
        judged["1"]["schema_version"] == 1
        and json.loads((run / "judge.json").read_text())["schema_version"] == 1
    )
    assert judged["1"]["method"] == "llm_judge" and judged["1"]["tokens"]["input"] > 0
    assert judged["1001"]["verdict"] == "correct" and judged["1001"]["method"] == "em_match"
    block = json.loads((run / "summary.json").read_text())["judge"]
    assert block["accuracy"] == 1.0 and block["n"] == 2 and block["prompt"] == "sensenova-mars"
    assert (
        block["source"]["commit"] == sensenova.SENSENOVA.commit and block["source"]["via"] == "authors-repo"
    )
    assert block["agreement_with_em"] == {"value": 1.0, "n": 1}
    assert any("first user message" in d for d in block["deviations"])


def test_sensenova_max_over_gold_and_text_only(env, fixtures_dir):
    """Several gold answers: one call each, the max decides; a text-only judge gets their text-only strings."""
    from matbench.judge.prompts import JudgeItem, SenseNovaPrompt

    systems, prompts = their_strings(fixtures_dir)
    p = SenseNovaPrompt(judge_repo=None, cache_dir=env / "cache", image_dir=env)
    item = JudgeItem("7", "hard", "Who?", ["Alan Turing", "A. M. Turing"], "Turing", 0.0)
    plan = p.plan(item, vision=False)
    assert [c.gold for c in plan.calls] == ["Alan Turing", "A. M. Turing"]
    first = plan.calls[0].request.messages
    assert first[0].text == systems[1] and not first[1].images
    assert first[1].text == prompts[3].format(
        question="Who?", ground_truth_answer="Alan Turing", model_response="Turing"
    )
    # their normalisation: punctuation, articles ("a" alone stays), case, spaces
    assert p.plan(JudgeItem("8", None, "q", ["The Play well."], "play  WELL", 0.0), True).method == "em_match"
    assert p.plan(JudgeItem("9", None, "q", ["A"], "a", 0.0), True).method == "em_match"
    assert p.plan(JudgeItem("9", None, "q", ["x"], None, 0.0), True).verdict == "incorrect"
    assert p.parse("<judge>No</judge>") is False and p.parse("Yes") is None and p.parse("<judge>YES </judge>")


def test_matbench_prompt_unparsed_and_em_shortcut(run, fixtures_dir, capsys):
    """matbench's prompt: EM=1 is correct without a call; a reply without a verdict is unparsed (never correct);
    score prints the judge beside F1/EM."""
    with FakeOpenAIServer("I think it is fine.", models=["judge"]) as js:
        assert judge(run, js) == 0
        assert js.calls == 1
        assert "Reference answers: Play well." in request_text(js.requests[0])
        assert js.requests[0]["messages"][1]["content"][0]["type"] == "image_url"
    block = json.loads((run / "summary.json").read_text())["judge"]
    assert (block["correct"], block["unparsed"], block["n"], block["accuracy"]) == (1, 1, 2, 0.5)
    assert block["by_method"] == {"em_match": 1, "llm_judge": 1}
    capsys.readouterr()
    assert main(["score", str(run), "--data-dir", str(fixtures_dir / "mat" / "search-demo")]) == 0
    out = capsys.readouterr().out
    assert "Judge" in out.splitlines()[1] and "50.00 (n=2)" in out and "unparsed=1" in out


def test_errors_are_rerun_and_torn_tail_repaired(run):
    """A judge API failure is `error` (not incorrect, exit 1); the same command judges only it again; a torn last
    line is cut off before appending; --judge-overwrite rejudges from the response cache."""
    with FakeOpenAIServer(lambda req: Reply.error(400, "bad request"), models=["judge"]) as js:
        assert judge(run, js, "--judge-prompt", "matbench") == 1
    block = json.loads((run / "summary.json").read_text())["judge"]
    assert block["errors"] == 1 and block["n"] == 1 and block["accuracy"] == 1.0
    with open(run / "judgments.jsonl", "ab") as fh:
        fh.write(b'{"id": "1", "verdict": "corr')  # a killed writer
    with FakeOpenAIServer("REASON: same\nVERDICT: CORRECT", models=["judge"]) as js:
        assert judge(run, js) == 0
        assert js.calls == 1
        assert judge(run, js, "--judge-overwrite") == 0
        assert js.calls == 1  # every judge reply came from the response cache
    lines = (run / "judgments.jsonl").read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)
    block = json.loads((run / "summary.json").read_text())["judge"]
    assert block["errors"] == 0 and block["accuracy"] == 1.0 and block["n"] == 2


def test_eval_judges_each_sample(env, fixtures_dir, capsys):
    with (
        FakeOpenAIServer(model_policy) as model,
        FakeOpenAIServer("<judge>No</judge>", models=["judge"]) as js,
    ):
        args = eval_args(model, env, fixtures_dir, "--judge", "openai:judge", "--judge-base-url", js.base_url)
        assert main([*args, "--judge-prompt", "sensenova-mars"]) == 0
        assert js.calls == 1
    out = capsys.readouterr().out
    assert "judge accuracy: 50.00" in out and "agreement with EM: 100.0% of 1" in out
    (run,) = (env / "runs").iterdir()
    assert {j["id"]: j["verdict"] for j in read_jsonl(run / "judgments.jsonl")} == {
        "1": "incorrect",
        "1001": "correct",
    }
    assert json.loads((run / "summary.json").read_text())["judge"]["accuracy"] == 0.5


def test_bad_input_fails_in_one_line(run, fixtures_dir, capsys, tmp_path):
    capsys.readouterr()
    with FakeOpenAIServer("x", models=["judge"]) as js:
        assert judge(tmp_path / "nowhere", js) == 2
        assert judge(fixtures_dir / "mat", js) == 2  # a folder that is not a run
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "config.json").write_text("{}")
        (empty / "predictions.jsonl").write_text("")
        assert judge(empty, js) == 2
        assert main(["judge", str(run), "--judge", "openai:other", "--judge-base-url", js.base_url]) == 2
        assert js.calls == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("matbench: error: ") for line in err)
    assert "no such run directory" in err[0] and "not a matbench run directory" in err[1]
    assert "holds no predictions" in err[2] and "other" in err[3]
    # a dead endpoint: one line before any call, nothing written
    assert (
        main(["judge", str(run), "--judge", "openai:judge", "--judge-base-url", "http://127.0.0.1:9/v1"]) == 2
    )
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (run / "judgments.jsonl").exists()


def test_their_script_changed_or_missing(run, fixtures_dir, capsys, monkeypatch, tmp_path):
    copy = tmp_path / "copy"
    target = copy / SCRIPT
    target.parent.mkdir(parents=True)
    target.write_bytes((fixtures_dir / "sensenova-mars-repo" / SCRIPT).read_bytes() + b"\n# changed\n")
    capsys.readouterr()
    with FakeOpenAIServer("x", models=["judge"]) as js:
        assert judge(run, js, "--judge-prompt", "sensenova-mars", "--judge-repo", str(copy)) == 2
        monkeypatch.delenv("MATBENCH_SENSENOVA_REPO")
        monkeypatch.setenv("MATBENCH_AUTHORS_BASE_URL", "http://127.0.0.1:9")
        assert judge(run, js, "--judge-prompt", "sensenova-mars") == 2
        assert js.calls == 0
    changed, offline = capsys.readouterr().err.strip().splitlines()
    assert "sha256" in changed and sensenova.SENSENOVA.commit[:12] in changed
    assert "--judge-repo DIR" in offline and "--judge-prompt matbench" in offline


def test_compare_view_and_submit_carry_the_judge(run, fixtures_dir, capsys):
    """compare bootstraps the judge-accuracy difference (same judge only); view shows verdict and reason;
    submit carries the judge field (the leaderboard's judge column)."""
    from matbench.report.submit import validate_run

    other = run.parent / "other"
    shutil.copytree(run, other)
    with FakeOpenAIServer("REASON: a paraphrase\nVERDICT: CORRECT", models=["judge"]) as js:
        assert judge(run, js) == 0
    with FakeOpenAIServer("REASON: wrong\nVERDICT: INCORRECT", models=["judge"]) as js:
        assert judge(other, js) == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(other), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)["judge"]
    overall = j["groups"][0]
    assert (overall["n"], overall["a"], overall["b"], overall["diff"]) == (2, 1.0, 0.5, -0.5)
    assert overall["ci"][0] <= -0.5 <= overall["ci"][1] and j["judge"]["prompt"] == "matbench"
    assert main(["compare", str(run), str(other)]) == 0
    assert "dJudge" in capsys.readouterr().out
    with FakeOpenAIServer("<judge>No</judge>", models=["judge"]) as js:
        assert judge(other, js, "--judge-prompt", "sensenova-mars", "--judge-overwrite") == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(other)]) == 0
    assert "judge accuracies of different judges are not compared" in capsys.readouterr().out

    assert main(["view", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "judge openai:judge (matbench prompt): accuracy 100.00 over 2 judged" in page
    chunk = "".join(f.read_text() for f in (run / "report_data").glob("*.js"))
    assert '"judge":{"verdict":"correct","reason":"a paraphrase"' in chunk

    entry = validate_run(run, data_dir=str(fixtures_dir / "mat" / "search-demo"))
    assert entry.judge["accuracy"] == 1.0 and entry.judge["n"] == 2 and entry.judge["prompt"] == "matbench"
    assert entry.judge["model"] == "openai:judge" and entry.judge["prompt_source"] == "matbench"
    assert len(entry.judge["ci95"]) == 2 and entry.judge["by_split"] == {"simple": {"accuracy": 1.0, "n": 1}}


def test_disk_full_is_one_line_and_a_rerun_finishes(run, tmp_path):
    """judge.json fits, the exact-match sample's line fits, the judged sample's 12 KiB reply does not: one line,
    whole lines kept; after freeing space the same command finishes."""
    import os
    import subprocess
    import sys

    from runtime_helpers import ROOT

    small, out = tmp_path / "small", tmp_path / "out"
    small.mkdir()
    out.mkdir()
    reply = "REASON: " + "x" * 12_000 + "\nVERDICT: CORRECT"
    with FakeOpenAIServer(reply, models=["judge"]) as js:
        cmd = " ".join(
            [sys.executable, "-m", "matbench.cli", "judge", str(small / "run"), "--judge", "openai:judge"]
            + ["--judge-base-url", js.base_url, "--judge-concurrency", "1"]
        )
        script = f"""
            mount -t tmpfs -o size=16m tmpfs {small}
            cp -r {run} {small}/run
            rm -f {small}/run/report.html
            free=$(df -B1 --output=avail {small} | tail -1)
            head -c $((free - 16384)) /dev/zero > {small}/filler
            {cmd} > {out}/1.out 2> {out}/1.err; echo $? > {out}/1.rc
            cp -r {small}/run {out}/run1
            rm {small}/filler
            {cmd} > {out}/2.out 2> {out}/2.err; echo $? > {out}/2.rc
            cp -r {small}/run {out}/run2
        """
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(["unshare", "-rm", "bash", "-c", script], cwd=ROOT, env=env, timeout=300)
        assert done.returncode == 0
    err1 = (out / "1.err").read_text().strip().splitlines()
    assert (out / "1.rc").read_text().strip() == "2", "\n".join(err1)
    assert (
        len(err1) == 1 and "No space left on device while writing" in err1[0] and "judgments.jsonl" in err1[0]
    )
    raw = (out / "run1" / "judgments.jsonl").read_bytes()
    assert raw.endswith(b"\n") and [json.loads(line)["id"] for line in raw.splitlines()] == ["1001"]
    assert (out / "2.rc").read_text().strip() == "0", (out / "2.err").read_text()
    final = {j["id"]: j["verdict"] for j in read_jsonl(out / "run2" / "judgments.jsonl")}
    assert final == {"1001": "correct", "1": "correct"}


def test_max_cost_refusing_endpoint_and_a_judge_added_on_resume(run, fixtures_dir, capsys, tmp_path):
    """--max-cost stops judging (a rerun with more finishes it); an endpoint refusing the key fails in one line
    before any call; `eval --judge` on a finished run resumes it (no episode reruns) and judges every sample."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n  judge: {input: 1000, cached_input: 1000, output: 1000, checked: 2026-12-07}\n"
    )
    with FakeOpenAIServer("REASON: ok\nVERDICT: CORRECT", models=["judge"]) as js:
        assert judge(run, js, "--prices", str(prices), "--max-cost", "0") == 0
        assert js.calls == 0
        out = capsys.readouterr().out
        assert "stopped by --max-cost $0: 1 sample(s) not judged" in out and "pending=1" in out
        assert judge(run, js, "--prices", str(prices), "--max-cost", "10") == 0
        assert js.calls == 1
    block = json.loads((run / "summary.json").read_text())["judge"]
    assert block["pending"] == 0 and block["cost"]["usd"] > 0 and block["max_cost"]["spent_usd"] > 0
    with FakeOpenAIServer("x", models=["judge"], api_key="the-right-key") as js:
        capsys.readouterr()
        assert judge(run, js, "--judge-overwrite") == 2
        assert js.calls == 0 and len(capsys.readouterr().err.strip().splitlines()) == 1
    (run / "judgments.jsonl").unlink()
    with (
        FakeOpenAIServer(model_policy) as model,
        FakeOpenAIServer("<judge>yes</judge>", models=["judge"]) as js,
    ):
        args = eval_args(model, run.parent, fixtures_dir, "--run-dir", str(run))
        assert (
            main(
                [
                    *args,
                    "--judge",
                    "openai:judge",
                    "--judge-base-url",
                    js.base_url,
                    "--judge-prompt",
                    "sensenova-mars",
                ]
            )
            == 0
        )
        assert model.calls == 0 and js.calls == 1
    assert json.loads((run / "summary.json").read_text())["judge"]["accuracy"] == 1.0


def test_reasoning_judge_is_sampled_and_never_replayed(run):
    """o3 as judge: no temperature sent (the API rejects it), so its verdicts are not cached: a rejudge calls again."""
    with FakeOpenAIServer("<judge>Yes</judge>", models=["o3"]) as js:
        args = ["judge", str(run), "--judge", "openai:o3", "--judge-base-url", js.base_url, "--judge-prompt"]
        assert main([*args, "sensenova-mars"]) == 0
        assert main([*args, "sensenova-mars", "--judge-overwrite"]) == 0
        assert js.calls == 2 and "temperature" not in js.requests[0]
    assert json.loads((run / "judge.json").read_text())["decoding"]["temperature"] is None


def test_merge_carries_the_shards_judgments(env, fixtures_dir, capsys):
    """Shards judged by one judge merge into one run with every judgment and a fresh judge block."""
    data = fixtures_dir / "multihop"
    common = [
        "--task",
        "bamboogle",
        "--data-dir",
        str(data),
        "--protocol",
        "direct",
        "--runs-root",
        str(env / "r"),
    ]
    with (
        FakeOpenAIServer("no") as model,
        FakeOpenAIServer("REASON: r\nVERDICT: INCORRECT", models=["judge"]) as js,
    ):
        base = ["eval", "--no-progress", "--model", "openai:fake", "--base-url", model.base_url, *common]
        judging = ["--judge", "openai:judge", "--judge-base-url", js.base_url]
        for k in range(2):
            assert main([*base, "--shard", f"{k}/2", *judging]) == 0
    shards = sorted((env / "r").iterdir())
    assert main(["merge", *map(str, shards), "--out", str(env / "merged"), "--data-dir", str(data)]) == 0
    judged = read_jsonl(env / "merged" / "judgments.jsonl")
    assert len(judged) == 125 and len({j["id"] for j in judged}) == 125
    block = json.loads((env / "merged" / "summary.json").read_text())["judge"]
    em1 = block["agreement_with_em"]["n"]
    assert block["n"] == 125 and block["correct"] == em1 and block["model"] == "openai:judge"


def test_eval_with_a_dead_judge_fails_before_the_model_is_called(env, fixtures_dir, capsys):
    with FakeOpenAIServer(model_policy) as model:
        args = eval_args(
            model, env, fixtures_dir, "--judge", "openai:judge", "--judge-base-url", "http://127.0.0.1:9"
        )
        assert main(args) == 2
        assert model.calls == 0 and model.models_calls == 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (env / "runs").exists()


def test_their_script_is_downloaded_once_at_the_pinned_commit(tmp_path, monkeypatch, fixtures_dir):
    """No copy: one download from the raw-file host at the pinned commit, cached only once it checks out; then
    offline from the cache."""
    from http.server import BaseHTTPRequestHandler

    from runtime_helpers import LoopbackServer

    from matbench.errors import ConfigError
    from matbench.protocols.authors_source import cache_path

    paths: list[str] = []
    body = {"data": (fixtures_dir / "sensenova-mars-repo" / SCRIPT).read_bytes()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            paths.append(self.path)
            data = body["data"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    monkeypatch.delenv("MATBENCH_SENSENOVA_REPO", raising=False)
    with LoopbackServer(Handler) as host:
        monkeypatch.setenv("MATBENCH_AUTHORS_BASE_URL", host.url)
        original = body["data"]
        system = their_strings(fixtures_dir)[0][0].encode()  # their vision system message, one byte changed
        body["data"] = original.replace(system, system[:-1] + b"?")
        with pytest.raises(ConfigError, match="not the one pinned"):
            sensenova.load_strings(judge_repo=None, cache_dir=tmp_path)
        assert not cache_path(tmp_path, SCRIPT, sensenova.SENSENOVA).exists()
        body["data"] = original
        got = sensenova.load_strings(judge_repo=None, cache_dir=tmp_path)
    assert paths[-1] == f"/OpenSenseNova/SenseNova-MARS/{sensenova.SENSENOVA.commit}/{SCRIPT}"
    assert got.source["via"] == "download" and got.source["file_sha256"] == sensenova.FILE_SHA256
    monkeypatch.setenv("MATBENCH_AUTHORS_BASE_URL", "http://127.0.0.1:9")
    again = sensenova.load_strings(judge_repo=None, cache_dir=tmp_path)
    assert again.source["via"] == "cache" and again.system == got.system and again.prompt == got.prompt


def test_a_judge_the_model_table_says_takes_no_images_gets_none(run, fixtures_dir, monkeypatch):
    """The model table decides (a text-only row: their text-only system message and template, no image)."""
    from dataclasses import replace

    from matbench.models import capabilities

    real = capabilities.info
    monkeypatch.setattr(
        capabilities, "info", lambda mid, backend="openai": replace(real(mid, backend), images=False)
    )
    systems, _ = their_strings(fixtures_dir)
    with FakeOpenAIServer("<judge>No</judge>", models=["judge"]) as js:
        assert judge(run, js, "--judge-prompt", "sensenova-mars") == 0
        req = js.requests[0]
    assert req["messages"][0]["content"] == systems[1] and isinstance(req["messages"][1]["content"], str)
    assert json.loads((run / "judge.json").read_text())["vision"] is False
