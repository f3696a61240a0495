"""Adding a tool is one class plus its prompt strings: a zoom tool defined here, registered in TOOLS, used
by a task through the native tool protocol and by the tag protocols, driven by the scripted model."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from matbench.cli import main
from matbench.registry import TOOLS
from matbench.tools.base import Tool, ToolContext, ToolResult, ToolState

ROOT = Path(__file__).resolve().parents[1]


class ZoomTool(Tool):
    """Crops the current image to a 0-1000 box ``x0,y0,x1,y1``; the crop replaces the image."""

    name = "zoom"
    function = "zoom_image"
    argument = "box"
    tag = "zoom"

    def __init__(self, scale: int) -> None:
        self.scale = scale

    @classmethod
    def open(cls, context: ToolContext) -> ZoomTool:
        return cls(int(context.spec.options.get("zoom_scale", 1000)))

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale}

    async def run(self, arguments: dict[str, Any], state: ToolState) -> ToolResult:
        box = arguments[self.argument]
        record = self.blank(box)
        try:
            x0, y0, x1, y1 = (int(v) for v in box.split(","))
            with Image.open(state.image) as img:
                w, h = img.size
                crop = img.crop((x0 * w // self.scale, y0 * h // self.scale, x1 * w // self.scale,
                                 y1 * h // self.scale))
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "zoom.png"
                    crop.save(out)
                    kept = state.keep_image(out)
        except (ValueError, OSError) as exc:
            record["error"] = f"cannot zoom to {box!r}: {exc}"
            return ToolResult(record["error"], record, failed=True)
        record["output_image"] = state.relative(kept)
        record["size"] = list(crop.size)
        text = state.templates["results"]["zoomed"] if state.native else None
        return ToolResult(text, record, image=kept)


@pytest.fixture()
def zoom_task(tmp_path: Path, fixtures_dir: Path, monkeypatch):
    """A tasks folder holding one extra task, `zoom-demo`: MAT-Coding's demo items with the zoom tool."""
    TOOLS.register("zoom", ZoomTool)
    tasks = tmp_path / "tasks"
    (tasks / "prompts").mkdir(parents=True)
    spec = yaml.safe_load((ROOT / "tasks" / "mat-coding.yaml").read_text())
    spec.update(name="zoom-demo", tools=["zoom"], default_protocol="tools", options={"zoom_scale": 1000})
    spec["protocols"] = {"tools": "prompts/tools-zoom.yaml", "tags": "prompts/zoom.yaml"}
    (tasks / "zoom-demo.yaml").write_text(yaml.safe_dump(spec))
    prompt = yaml.safe_load((ROOT / "tasks" / "prompts" / "tools-coding.yaml").read_text())
    prompt["functions"] = {"zoom_image": "Zoom into a box x0,y0,x1,y1 (0-1000).", "answer": "Answer."}
    prompt["arguments"] = {"box": "The box", "text": "The answer"}
    prompt["results"]["zoomed"] = "Zoomed; the crop is in the next message."
    (tasks / "prompts" / "tools-zoom.yaml").write_text(yaml.safe_dump(prompt))
    tag = yaml.safe_load((ROOT / "tasks" / "prompts" / "coding.yaml").read_text())
    tag["after_zoom"] = "{text}{output}\n(zoomed)\n"
    (tasks / "prompts" / "zoom.yaml").write_text(yaml.safe_dump(tag))
    monkeypatch.setenv("MATBENCH_TASKS_DIR", str(tasks))
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path / "cache"))
    try:
        yield fixtures_dir / "mat" / "coding-demo"
    finally:
        for table in (TOOLS._targets, TOOLS._loaded, TOOLS._origin):
            table.pop("zoom", None)


def _eval(tmp_path: Path, data: Path, script: dict, *extra: str) -> dict:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    runs = tmp_path / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    assert main(["eval", "--no-progress", "--model", f"scripted:{path}", "--task", "zoom-demo",
                 "--data-dir", str(data), "--ids", "12", "--runs-root", str(runs), *extra]) == 0
    (run,) = runs.iterdir()
    (rec,) = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return {"run": run, "rec": rec, "config": json.loads((run / "config.json").read_text())}


def test_an_extra_tool_runs_through_the_native_protocol(tmp_path, zoom_task):
    script = {"samples": {"12": [
        {"text": "", "tool_calls": [{"name": "zoom_image", "arguments": {"box": "0,0,500,250"}}]},
        {"text": "", "tool_calls": [{"name": "answer", "arguments": {"text": "1 Can (473ml)"}}]},
    ]}}
    out = _eval(tmp_path, zoom_task, script)
    rec, run, config = out["rec"], out["run"], out["config"]
    assert rec["status"] == "ok" and rec["em"] == 1.0 and rec["tool_calls"] == {"zoom": 1}
    call = rec["trajectory"][0]["tool_calls"][0]
    assert call["name"] == "zoom" and call["function"] == "zoom_image" and call["input"] == "0,0,500,250"
    assert call["result"] == "Zoomed; the crop is in the next message." and call["error"] is None
    with Image.open(zoom_task / "rotation180_1_proc.png") as original:
        assert call["size"] == [original.width // 2, original.height // 4]
    assert (run / call["output_image"]).is_file() and rec["trajectory"][1]["image"] == call["output_image"]
    assert config["zoom"] == {"scale": 1000}
    assert config["protocol"]["tools"]["functions"] == ["zoom_image", "answer"]


def test_an_extra_tool_answers_its_tag_in_a_tag_protocol(tmp_path, zoom_task):
    script = {"samples": {"12": ["<zoom>0,0,500,500</zoom>", "<answer>1 Can (473ml)</answer>"]}}
    rec = _eval(tmp_path, zoom_task, script, "--protocol", "tags")["rec"]
    assert rec["em"] == 1.0 and rec["tool_calls"] == {"zoom": 1}
    first, second = rec["trajectory"]
    (call,) = first["tool_calls"]
    assert call["name"] == "zoom" and call["input"] == "0,0,500,500" and second["image"] == call["output_image"]
