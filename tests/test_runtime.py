"""Agent runtime end to end: `matbench eval` against a local OpenAI-compatible server playing scripted policies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, Reply, decode_request_images, request_text
from PIL import Image
from runtime_helpers import (
    ROOT,
    RetrievalServer,
    eval_cmd,
    fake_eval,
    read_jsonl,
    run_cli,
    run_dir_of,
    run_eval,
)

from matbench.records.run_dir import RunDir

SNIPPETS = [
    ("LEGO", "The name LEGO is an abbreviation of the two Danish words leg godt, meaning play well."),
    ("LEGO history", "LEGO was founded in Billund, Denmark, in 1932."),
    ("Leg godt", "Leg godt means play well."),
    ("The LEGO Group", "The LEGO Group is a Danish toy production company."),
    ("Extra", "A fifth passage that top-4 must leave out."),
]

ROTATE = (
    "<think> The image is upside down. </think>\n<code>\n```python\nimport cv2\n"
    "img = cv2.imread('path_to_input_image.jpg')\nimg = cv2.rotate(img, cv2.ROTATE_180)\n"
    "cv2.imwrite('path_to_output_image.jpg', img)\n```\n</code>"
)


def coding_policy(req: dict) -> str:
    text = request_text(req)
    if "<tips>" not in text:
        return "<think> The image is upside down. </think>\n<problem> {'rotation180'} </problem>"
    if "cv2.rotate" not in text:
        return ROTATE
    return "<think> The label reads 1 Can (473ml). </think>\n<answer> 1 Can\n(473ml) </answer>"


@pytest.fixture()
def coding_dir(fixtures_dir):
    return fixtures_dir / "mat" / "coding-demo"


def test_coding_episode_image_comes_back_upright(tmp_path, coding_dir):
    with FakeOpenAIServer(coding_policy) as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(coding_dir), "--ids", "12")
        assert out.returncode == 0, out.stderr
        assert len(srv.requests) == 3
        first, _, third = (decode_request_images(r)[0].astype(np.int16) for r in srv.requests)
    original = np.asarray(Image.open(coding_dir / "rotation180_1_proc.png").convert("RGB")).astype(np.int16)
    assert np.abs(first - original).mean() < 1  # the degraded image goes out as it is
    upright = original[::-1, ::-1]
    assert third.shape == original.shape
    assert np.abs(third - upright).mean() < 3  # JPEG round trip only
    assert np.abs(third - original).mean() > 10 * np.abs(third - upright).mean()
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    assert rec["prediction"] == "1 Can\n(473ml)" and rec["em"] == 1.0  # multi-line answers are matched
    assert [t["action"] for t in rec["trajectory"]] == ["problem", "code", "answer"]
    code_turn = rec["trajectory"][1]["tool_calls"][-1]
    assert code_turn["ok"] and (run / code_turn["output_image"]).is_file()
    assert rec["trajectory"][2]["image"] == code_turn["output_image"]
    assert "sk-test-secret" not in (run / "predictions.jsonl").read_text() + (run / "config.json").read_text()


@pytest.mark.parametrize("sid,box", [("119", (366, 723, 506, 851)), ("124", (489, 155, 595, 259))])
def test_crop_rewrite(tmp_path, coding_dir, fixtures_dir, sid, box):
    wrong_crop = (
        "<think> crop </think>\n<code>\n```python\nimport cv2\nimg = cv2.imread('path_to_input_image.jpg')\n"
        "crop = img[10:20, 30:img.shape[1]]\ncv2.imwrite('path_to_output_image.jpg', crop)\n```\n</code>"
    )

    def policy(req):
        text = request_text(req)
        if "<tips>" not in text:
            return "<think> small text </think>\n<problem> {'crop'} </problem>"
        if "crop = img" not in text:
            return wrong_crop
        return "<answer> x </answer>"

    with FakeOpenAIServer(policy) as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(coding_dir), "--ids", sid)
        assert out.returncode == 0, out.stderr
        cropped = decode_request_images(srv.requests[2])[0]
        proto = json.loads((fixtures_dir / "protocol" / "visual-arft-protocol.json").read_text())
        assert request_text(srv.requests[1]).endswith(proto["coding"]["tips"]["crop"])  # the authors' tip
        assert "[x_min, y_min, x_max, y_max]" in request_text(srv.requests[1])
    name = {"119": "crop_8_ori.png", "124": "crop_13_ori.png"}[sid]
    w, h = Image.open(coding_dir / name).size
    x0, y0, x1, y1 = (
        int(box[0] / 1000 * w),
        int(box[1] / 1000 * h),
        int(box[2] / 1000 * w),
        int(box[3] / 1000 * h),
    )
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    tool = rec["trajectory"][1]["tool_calls"][-1]
    assert tool["crop_box"] == [x0, y0, x1, y1]
    assert f"img[{y0}:{y1}, {x0}:{x1}]" in tool["input"]
    assert cropped.shape[:2] == (y1 - y0, x1 - x0)


def test_no_crop_assist_keeps_the_models_slice(tmp_path, coding_dir):
    def policy(req):
        text = request_text(req)
        if "<tips>" not in text:
            return "<problem> {'crop'} </problem>"
        if "img[10:20" not in text:
            return (
                "<code>\n```python\nimport cv2\nimg = cv2.imread('path_to_input_image.jpg')\n"
                "cv2.imwrite('path_to_output_image.jpg', img[10:20, 30:50])\n```\n</code>"
            )
        return "<answer> x </answer>"

    with FakeOpenAIServer(policy) as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(coding_dir), "--ids", "119", "--no-crop-assist")
        assert out.returncode == 0, out.stderr
        assert decode_request_images(srv.requests[2])[0].shape[:2] == (10, 20)
    cfg = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    assert cfg["options"]["crop_assist"] is False


def test_search_episode_and_five_call_limit(tmp_path, fixtures_dir):
    """A model that never answers: 5 calls, each search gets the top-4 snippets, the prediction is empty."""
    with (
        RetrievalServer(SNIPPETS) as rs,
        FakeOpenAIServer(
            lambda req: (
                f"<think> more </think>\n<search> query {request_text(req).count('<search>')} </search>"
            )
        ) as srv,
    ):
        out = fake_eval(
            srv,
            tmp_path,
            "mat-search",
            str(fixtures_dir / "mat" / "search-demo"),
            "--ids",
            "1",
            "--search",
            f"retriever:{rs.url}",
            "--search-cache",
            "off",
        )
        assert out.returncode == 0, out.stderr
        assert len(srv.requests) == 5
        second = request_text(srv.requests[1])
        block = "<information> " + "".join(f"{i}. Content:{s}" for i, (_, s) in enumerate(SNIPPETS[:4], 1))
        assert second.endswith(block + " </information> ")
        assert "A fifth passage" not in second
        assert len(decode_request_images(srv.requests[0])) == 1
        assert rs.queries[:2] == ["query 3", "query 4"]  # the instructions hold three <search> tags
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert rec["turns"] == 5 and rec["prediction"] is None and rec["f1"] == 0.0 and rec["status"] == "ok"
    assert rec["tool_calls"] == {"search": 5}
    assert rec["trajectory"][0]["tool_calls"][-1]["results"][0]["snippet"] == SNIPPETS[0][1]


def test_malformed_output_and_search_failure(tmp_path, fixtures_dir, fast_search_retries):
    """Output without a tag leaves the text unchanged (the authors' loop has no else branch) and the loop goes
    on; a dead search backend becomes text for the model."""
    outputs = iter(
        ["no tags at all", "<think> x </think>\n<search> q </search>", "<answer> Play well </answer>"]
    )
    with FakeOpenAIServer(lambda req: next(outputs)) as srv:
        out = fake_eval(
            srv,
            tmp_path,
            "mat-search",
            str(fixtures_dir / "mat" / "search-demo"),
            "--ids",
            "1",
            "--search",
            "retriever:http://127.0.0.1:9",
            "--search-cache",
            "off",
            "--no-response-cache",
        )  # scripted outputs: the repeated request must reach the server
        assert out.returncode == 0, out.stderr
        assert request_text(srv.requests[1]) == request_text(srv.requests[0])
        third = request_text(srv.requests[2])
        assert "<information> " in third and "</information> " in third
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert [t["action"] for t in rec["trajectory"]] == ["invalid", "search", "answer"]
    assert rec["tool_errors"] == 1 and rec["trajectory"][1]["tool_calls"][-1]["error"]
    assert rec["em"] == 1.0


def test_retries_errors_and_retry_errors(tmp_path, fixtures_dir):
    """429 and 500 are retried; an error that outlasts the retries marks the sample `error`, not wrong."""
    state = {"n": 0, "broken": True}

    def policy(req):
        state["n"] += 1
        q = request_text(req)
        if "Citibank" in q and state["broken"]:
            return Reply.error(500, "still broken")
        if state["n"] == 1:
            return Reply.error(429, "slow down", retry_after=0.01)
        if state["n"] == 2:
            return Reply.error(500, "hiccup")
        return "<answer> james madison </answer>"

    args = [
        "--model",
        "openai:fake",
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--limit",
        "3",
        "--search",
        "retriever:http://127.0.0.1:9",
        "--max-concurrency",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    with FakeOpenAIServer(policy) as srv:
        args += ["--retry-delay", "0.01", "--max-retries", "3"]
        out = run_eval(["--base-url", srv.base_url, *args], cache_dir=tmp_path / "cache")
        assert out.returncode == 1 and "--retry-errors" in out.stderr, out.stderr
        recs = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "predictions.jsonl")}
        assert recs["test_0"]["status"] == "error" and recs["test_0"]["prediction"] is None
        assert "500" in recs["test_0"]["error"]
        assert {recs["test_1"]["status"], recs["test_2"]["status"]} == {"ok"}
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        # the API error is counted apart, not scored: n is the two scored samples
        assert summary["run"]["errors"] == 1 and summary["errors"] == 1 and summary["n"] == 2
        # rerun only the failed sample
        state["broken"] = False
        before = srv.calls
        out = run_eval(["--base-url", srv.base_url, *args, "--retry-errors"], cache_dir=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
        assert srv.calls - before == 1
    recs = {r["id"]: r for r in RunDir(tmp_path / "run").read_records()}
    assert recs["test_0"]["status"] == "ok" and recs["test_0"]["em"] == 1.0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["run"]["errors"] == 0


def test_kill_and_resume_and_changed_config(tmp_path, fixtures_dir):
    args = [
        "--model",
        "openai:fake",
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--limit",
        "12",
        "--protocol",
        "direct",
        "--max-concurrency",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-response-cache",
    ]
    preds = tmp_path / "run" / "predictions.jsonl"
    with FakeOpenAIServer("<answer> x </answer>", latency=0.15) as srv:
        env = dict(os.environ, OPENAI_API_KEY="sk-x", MATBENCH_CACHE_DIR=str(tmp_path / "cache"))
        proc = subprocess.Popen(
            eval_cmd("--base-url", srv.base_url, *args),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not preds.exists() or len(read_jsonl(preds)) < 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = {r["id"] for r in read_jsonl(preds)}
        assert 3 <= len(done_before) < 12
        calls_before = srv.calls
        out = run_eval(["--base-url", srv.base_url, *args], cache_dir=tmp_path / "cache")
        assert out.returncode == 0, out.stderr
        rows = read_jsonl(preds)
        assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows}) and len(rows) == 12
        # the rerun called the model only for the samples not yet recorded (plus at most the one in flight)
        assert srv.calls - calls_before <= 12 - len(done_before)
        changed = run_eval(
            ["--base-url", srv.base_url, *args[:-1], "--scoring", "squad"], cache_dir=tmp_path / "cache"
        )
    assert changed.returncode == 2 and "different configuration (changed: scoring)" in changed.stderr


def test_response_cache_makes_reruns_free(tmp_path, fixtures_dir):
    args = [
        "--model",
        "openai:fake",
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--limit",
        "4",
        "--protocol",
        "direct",
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        first = run_eval(["--base-url", srv.base_url, *args], cache_dir=tmp_path / "cache")
        assert first.returncode == 0 and srv.calls == 4
        # a new run (--overwrite starts one) replays earlier runs' answers only when asked to
        fresh = run_eval(["--base-url", srv.base_url, *args, "--overwrite"], cache_dir=tmp_path / "cache")
        assert fresh.returncode == 0 and srv.calls == 8, fresh.stderr
        again = run_eval(["--base-url", srv.base_url, *args, "--overwrite", "--response-cache"],
                         cache_dir=tmp_path / "cache")
        assert again.returncode == 0, again.stderr
        assert srv.calls == 8  # every response came from the cache
        assert "answers from the response cache: 4 of 4" in again.stdout
    summary = json.loads((run_dir_of(again.stdout) / "summary.json").read_text())
    assert summary["run"]["response_cache"]["hits"] == 4 and summary["n"] == 4


def test_a_new_run_in_the_same_second_does_not_replay_the_old_one(tmp_path, fixtures_dir, monkeypatch):
    """A run's own cache scope is its identity, not its creation second: `--overwrite` right after a run (as
    fast as an in-process call or a script makes it) asks the model again."""
    import matbench.run.plan as plan_mod

    monkeypatch.setattr(plan_mod, "utc_stamp", lambda: "20261207T120000Z")  # both runs in one second
    args = ["--model", "openai:fake", "--task", "bamboogle", "--data-dir", str(fixtures_dir / "multihop"),
            "--limit", "2", "--protocol", "direct", "--run-dir", str(tmp_path / "run")]
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        assert run_eval(["--base-url", srv.base_url, *args], cache_dir=tmp_path / "cache").returncode == 0
        fresh = run_eval(["--base-url", srv.base_url, *args, "--overwrite"], cache_dir=tmp_path / "cache")
        assert fresh.returncode == 0, fresh.stderr
        assert srv.calls == 4  # nothing replayed from the run it replaced


def test_no_endpoint_says_what_it_needs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    out = run_cli(["eval", "--no-progress", "--model", "qwen2.5-vl-7b", "--task", "mat-coding"], env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--base-url" in lines[0] and "vllm" in lines[0]
    out = run_cli(["eval", "--no-progress", "--model", "gpt-4o", "--task", "mat-coding"], env=env)
    assert (
        out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "OPENAI_API_KEY" in out.stderr
    )


def test_bad_rows_become_input_errors_in_the_run(tmp_path, coding_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(coding_dir, data)
    rows = json.loads((data / "MAT-Coding.json").read_text())
    rows[0]["processed_image_path"] = "missing.png"  # id 12
    (data / "MAT-Coding.json").write_text(json.dumps(rows))
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        out = fake_eval(srv, tmp_path, "mat-coding", str(data))
        assert out.returncode == 0, out.stderr
        assert srv.calls == 5  # no call for the broken sample
    run = run_dir_of(out.stdout)
    recs = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    assert len(recs) == 6 and recs["12"]["status"] == "input_error"
    assert "MAT-Coding.json, row 1: image not found" in recs["12"]["error"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["input_errors"] == 1 and summary["n"] == 6 and summary["missing"] == 1


def test_several_tasks_share_one_model(tmp_path, fixtures_dir):
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        out = run_eval(
            [
                "--model",
                "openai:fake",
                "--base-url",
                srv.base_url,
                "--task",
                "bamboogle",
                "--task",
                "musique",
                "--data-dir",
                str(fixtures_dir / "multihop"),
                "--limit",
                "3",
                "--search",
                "retriever:http://127.0.0.1:9",
                "--run-dir",
                str(tmp_path / "both"),
                "--json",
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
        assert srv.calls == 6
    summaries = json.loads(out.stdout)
    assert [s["task"] for s in summaries] == ["bamboogle", "musique"]
    for task in ("bamboogle", "musique"):
        assert len(read_jsonl(tmp_path / "both" / task / "predictions.jsonl")) == 3


def test_api_defaults_greedy_but_reasoning_models_sample(tmp_path, fixtures_dir):
    common = [
        "--task",
        "bamboogle",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--limit",
        "1",
        "--protocol",
        "direct",
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    for model, temperature in (("openai:gpt-4o", 0.0), ("openai:o3", None)):
        with FakeOpenAIServer("<answer> x </answer>") as srv:
            out = run_eval(
                ["--model", model, "--base-url", srv.base_url, *common], cache_dir=tmp_path / "cache"
            )
            assert out.returncode == 0, out.stderr
            sent = srv.requests[0]
        cfg = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
        assert cfg["decoding"]["temperature"] == temperature
        assert sent.get("temperature") == temperature
        # reasoning models speak the Responses API by default (test_tools_protocol.py), others Chat
        assert ("max_output_tokens" if temperature is None else "max_tokens") in sent
