"""A real vLLM OpenAI-compatible server (CPU) on the tiny model, and `matbench eval --base-url` against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from engine_helpers import ROOT, first_request, free_port

SERVED = "tiny-qwen"


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    tiny, _ = tiny_model
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "vllm.log"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny),
        "--served-model-name",
        SERVED,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "8192",
        "--seed",
        "0",
        "--no-enable-chunked-prefill",  # the CPU worker cannot rewind a seeded request after a partial prefill
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 420
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm server not up after 420 s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield base, tiny
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _eval(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["MATBENCH_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "matbench.cli", "eval", "--no-progress", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_preflight_finds_the_served_name(server) -> None:
    from matbench.models.endpoints import check_served_model, served_model_ids

    base, tiny = server
    assert served_model_ids(base) == [SERVED]
    entry = check_served_model(base, SERVED)
    assert entry.root == str(tiny) and entry.max_model_len == 8192


def test_unserved_name_fails_before_any_sample(server, data_dir, tmp_path) -> None:
    base, _ = server
    out = _eval(
        [
            "--model",
            "qwen2.5-vl-7b",
            "--base-url",
            base,
            "--task",
            "mat-coding",
            "--data-dir",
            str(data_dir),
            "--runs-root",
            str(tmp_path / "runs"),
        ],
        tmp_path / "cache",
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "'Qwen/Qwen2.5-VL-7B-Instruct'" in line and SERVED in line and f"--model openai:{SERVED}" in line
    assert not (tmp_path / "runs").exists()


def test_eval_against_the_server(server, data_dir, tmp_path) -> None:
    from PIL import Image
    from transformers import AutoProcessor

    base, tiny = server
    args = [
        "--model",
        f"openai:{SERVED}",
        "--base-url",
        base,
        "--task",
        "mat-coding",
        "--data-dir",
        str(data_dir),
        "--max-new-tokens",
        "32",
        "--seed",
        "0",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    out = _eval(args, tmp_path / "cache")
    assert out.returncode == 0, out.stderr[-4000:]
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["served_model"]["id"] == SERVED and config["model"]["served_model"]["root"] == str(
        tiny
    )
    records = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    # the image travelled as a data URL and the server made image tokens of it: the first turn's prompt
    # is exactly as long as the authors' HF path makes it for that image and text
    processor = AutoProcessor.from_pretrained(str(tiny))
    for r in records[:2]:
        turn = r["trajectory"][0]
        image = Image.open(run / turn["image"]).convert("RGB")
        text_sent = _first_text(run, r)
        messages = [
            {
                "role": "user",
                "content": [{"type": "image", "image": "x"}, {"type": "text", "text": text_sent}],
            }
        ]
        prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        expected = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
        assert turn["tokens"]["input"] == expected
    summary = json.loads((run / "summary.json").read_text())
    assert (
        summary["run"]["time_split"]["mode"] == "concurrent"
        and summary["run"]["time_split"]["model_wait_s"] > 0
    )
    # a new run replays the first one's answers when asked to (--response-cache)
    again = _eval(args[:-2] + ["--run-dir", str(tmp_path / "run2"), "--response-cache"], tmp_path / "cache")
    assert again.returncode == 0 and "cache_hits=" in again.stdout
    hits = json.loads((tmp_path / "run2" / "summary.json").read_text())["run"]["response_cache"]["hits"]
    assert hits == summary["run"]["calls"]  # the same server, greedy: every answer replayed


def _first_text(run: Path, record: dict) -> str:
    """The first turn's text as the episode built it (the run records outputs, not prompts)."""
    from matbench.data.sample import Sample

    sample = Sample(
        id=record["id"], question=record["question"], answers=record["gold"], split=record["split"]
    )
    return first_request("mat-coding", sample, run).text
