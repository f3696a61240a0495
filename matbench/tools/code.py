"""The code tool: ``<code>```python ...```</code>`` in the tag protocols, ``run_python(code)`` natively.

The model's code runs in the sandbox (never in the harness) on the episode's current image; an image it
writes replaces that image for the next turn. The tag protocols show the model only the new image (the
authors' loop); the native protocol sends back the run's feedback as the tool message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matbench.protocols import native_tools as nt
from matbench.protocols import visual_arft as va
from matbench.records.run_dir import cap_text
from matbench.tools.base import Tool, ToolContext, ToolResult, ToolState


class CodeTool(Tool):
    name = "code"
    function = "run_python"
    argument = "code"
    tag = "code"
    parsed_by_layout = True  # the authors' <code> rules (protocols/visual_arft.py)
    config_key = "sandbox"

    def __init__(self, sandbox: Any, timeout: float, exec_scope: str | None) -> None:
        self.sandbox = sandbox  # Sandbox: arun(code, image, scope=...)
        self.timeout = timeout
        self.exec_scope = exec_scope

    @classmethod
    def open(cls, context: ToolContext) -> CodeTool:
        from matbench.tools.sandbox import DEFAULT_CODE_TIMEOUT
        from matbench.tools.sandbox_policy import open_code_sandbox

        settings, spec = context.settings, context.spec
        timeout = settings.code_timeout or float(spec.limits.get("code_timeout", DEFAULT_CODE_TIMEOUT))
        key = ("sandbox", timeout)
        if key not in context.shared:  # warm workers shared by every task with this timeout
            workers, unsafe = settings.sandbox_workers, settings.unsafe_no_sandbox
            context.shared[key] = open_code_sandbox(spec.name, timeout, workers, unsafe)
        return cls(context.shared[key], timeout, context.exec_scope)

    def config(self) -> dict[str, Any]:
        from matbench.tools.sandbox_policy import sandbox_config

        return {**sandbox_config(self.sandbox, self.timeout), "exec_scope": self.exec_scope}

    def blank(self, value: str | None, error: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": cap_text(value),
            "ok": False,
            "stdout": "",
            "stderr": "",
            "error": error,
            "wall_time": 0.0,
            "output_image": None,
        }

    async def run(self, arguments: dict[str, Any], state: ToolState) -> ToolResult:
        code = arguments[self.argument]
        record = self.blank(code)
        if not state.native:
            record["crop_box"] = None
            if state.options.crop_assist and state.problems and state.problems[0] == "crop" and state.image:
                code, box = _crop_assist(code, state)
                record["crop_box"] = list(box) if box else None
                record["input"] = cap_text(code)
        try:
            scope = {"globals": state.options.exec_globals} if state.options.exec_globals is not None else None
            res = await self.sandbox.arun(code, state.image, **({"scope": scope} if not state.native else {}))
        except Exception as exc:  # noqa: BLE001 - a broken sandbox fails this call, not the run
            record["error"] = f"sandbox failure: {exc}"
            return ToolResult(f"Error: {record['error']}", record, failed=True)
        record.update(
            ok=res.ok,
            stdout=cap_text(res.stdout),
            stderr=cap_text(res.stderr),
            error=res.error,
            wall_time=res.wall_time,
        )
        text = res.feedback() if state.native else None
        image = None
        if res.ok and res.output_image is not None:
            image = state.keep_image(Path(res.output_image))
            record["output_image"] = state.relative(image)
            if state.native:
                text += "\n" + nt.result(state.templates, "image_follows")
        return ToolResult(text, record, image=image, failed=not res.ok)


def _crop_assist(code: str, state: ToolState) -> tuple[str, Any]:
    """The authors' crop assist: slices rewritten to the question's box (tag protocols, ``crop`` problem)."""
    from PIL import Image

    with Image.open(state.image) as img:
        width, height = img.size
    return va.crop_rewrite(code, state.question, width, height)
