"""`matbench eval --model vllm:TINY_DIR` end to end through ``vllm.LLM`` on the CPU, two tasks at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine_helpers import HERE, ROOT, training_texts
from tiny_qwen import MAX_PIXELS, MIN_PIXELS

TIMING_KEYS = {"latency", "wall_time"}
MAX_NEW = 40


def _strip_timing(value):
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def _eval(tiny: Path, data: Path, index: Path, run_dir: Path, cache: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "matbench.cli",
        "-v",
        "eval",
        "--no-progress",
        "--model",
        f"vllm:{tiny}",
        "--task",
        "mat-coding",
        "--task",
        "bamboogle",
        "--data-dir",
        str(data),
        "--limit",
        "6",
        "--search",
        f"local:{index}",
        "--seed",
        "7",
        "--max-new-tokens",
        str(MAX_NEW),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "8192",
        "--no-response-cache",
        "--run-dir",
        str(run_dir),
    ]
    env = dict(os.environ, MATBENCH_CACHE_DIR=str(cache))
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines() if line.strip()]


def test_tiny_model_builds_deterministically(tiny_model, tmp_path) -> None:
    sys.path.insert(0, str(HERE))
    from tiny_qwen import build

    path, digest = tiny_model
    assert build(tmp_path / "again", training_texts()) == digest
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert 5_000_000 < size < 10_000_000  # ~1.6 M float32 parameters


def test_eval_in_process_two_tasks_deterministic(tiny_model, data_dir, local_index, tmp_path) -> None:
    tiny, _ = tiny_model
    first = _eval(tiny, data_dir, local_index, tmp_path / "a", tmp_path / "cache")
    assert first.returncode == 0, first.stderr[-4000:]
    assert "round 1: 6 episodes" in first.stderr  # lock-step rounds are logged (matbench -v)
    for task in ("mat-coding", "bamboogle"):
        run = tmp_path / "a" / task
        config = json.loads((run / "config.json").read_text())
        assert config["model"]["backend"] == "vllm" and config["model"]["platform"] == "cpu"
        # what the engine really applied: the checkpoint's generation config with the run's options on top,
        # and the pixel bounds of the checkpoint's image processor (read back from vLLM, not assumed)
        effective = config["decoding"]["effective"]
        assert {k: effective[k] for k in ("temperature", "top_p", "top_k", "repetition_penalty")} == {
            "temperature": 0.1,
            "top_p": 0.001,
            "top_k": 1,
            "repetition_penalty": 1.0,
        }
        assert effective["max_tokens"] == MAX_NEW and config["decoding"]["sent"] is None
        assert config["model"]["image_processor"] == {
            "class": "Qwen2VLImageProcessor",
            "min_pixels": MIN_PIXELS,
            "max_pixels": MAX_PIXELS,
        }
        records = _records(run)
        assert len(records) == 6 and all(r["status"] == "ok" for r in records), [r["error"] for r in records]
        for r in records:
            assert 1 <= r["turns"] <= 5 and len(r["trajectory"]) == r["turns"]
            for turn in r["trajectory"]:
                # token counts from the engine: the prompt (image tokens included) and the completion
                assert turn["tokens"]["input"] > 20 and 1 <= turn["tokens"]["output"] <= MAX_NEW
        summary = json.loads((run / "summary.json").read_text())
        split = summary["run"]["time_split"]
        assert split["mode"] == "lockstep" and split["rounds"][0]["episodes"] == 6
        assert [r["episodes"] for r in split["rounds"]] == sorted(
            (r["episodes"] for r in split["rounds"]), reverse=True
        )
        assert split["calls"] == summary["run"]["calls"] == sum(r["turns"] for r in records)
        assert split["engine_s"] > 0
    coding = _records(tmp_path / "a" / "mat-coding")
    with_image = [t for r in coding for t in r["trajectory"][:1]]
    text_only = [t for r in _records(tmp_path / "a" / "bamboogle") for t in r["trajectory"][:1]]
    # the image reached the engine: a first coding turn is far longer than a first text-only turn
    assert min(t["tokens"]["input"] for t in with_image) > max(t["tokens"]["input"] for t in text_only) + 16

    second = _eval(tiny, data_dir, local_index, tmp_path / "b", tmp_path / "cache2")
    assert second.returncode == 0, second.stderr[-4000:]
    for task in ("mat-coding", "bamboogle"):
        a = _strip_timing(_records(tmp_path / "a" / task))
        b = _strip_timing(_records(tmp_path / "b" / task))
        assert a == b  # same seed, same predictions, same trajectories


def test_processor_pixels_reads_the_checkpoint_and_the_override(tiny_model) -> None:
    """The reader behind config.json's image_processor, on the real transformers processor vLLM loads."""
    from transformers import AutoImageProcessor

    from matbench.models.vllm_local import processor_pixels

    tiny, _ = tiny_model
    plain = processor_pixels(AutoImageProcessor.from_pretrained(tiny))
    assert (plain["min_pixels"], plain["max_pixels"]) == (MIN_PIXELS, MAX_PIXELS)
    bounded = processor_pixels(AutoImageProcessor.from_pretrained(tiny, max_pixels=64 * 28 * 28))
    assert (bounded["min_pixels"], bounded["max_pixels"]) == (MIN_PIXELS, 64 * 28 * 28)
