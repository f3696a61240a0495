"""One sample's multi-turn episode: the only place that knows protocol, model requests and tools together.

An Episode is a small state machine: ``request()`` gives the next model call, ``advance(output)`` parses it,
runs the tool it asks for and builds the next text. Schedulers (``run/scheduler.py``) decide how episodes share
the model: concurrently over HTTP, or in lock-step batches for an in-process engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from matbench.data.sample import Sample
from matbench.models.base import ChatRequest, ModelOutput
from matbench.models.cost import add_usage, usage_of
from matbench.protocols import visual_arft as va
from matbench.protocols.replay import text_sha256
from matbench.protocols.templates import Templates, fill
from matbench.records.images import ImageStore
from matbench.records.run_dir import SampleRecord, as_disk_full, cap_text
from matbench.scoring.base import ScoreFn
from matbench.tools.base import Tool, ToolResult, ToolState


@dataclass
class EpisodeOptions:
    max_calls: int = 5
    max_new_tokens: int = 1024
    top_k: int = 4
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    crop_assist: bool = False
    compat: str = "fixed"  # "strict": the authors' failure handling and regexes too (see README)
    exec_globals: list | None = None  # the authors' exec scoping: these imports as globals (None: fresh)

    def request(self, text: str = "", **fields) -> ChatRequest:
        """A model request carrying these decoding options: every turn's, and what config.json records."""
        return ChatRequest(
            text=text,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            **fields,
        )


#: What an episode may call: its task's tools by name (matbench/tools/base.py), opened by the plan.
Tools = dict[str, Tool]


@dataclass
class Episode:
    sample: Sample
    templates: Templates
    tools: Tools
    options: EpisodeOptions
    run_dir: Path
    task: str = ""
    text: str = ""
    image: Path | None = None
    turns: list[dict] = field(default_factory=list)
    done: bool = False
    prediction: str | None = None
    status: str = "ok"
    error: str | None = None
    problems: list[str] | None = None
    last_query: str | None = None  # what an unclosed <search> searches again (the authors' loop did)
    tool_calls: dict[str, int] = field(default_factory=dict)
    tool_errors: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.sample.input_error:
            self.done, self.status, self.error = True, "input_error", self.sample.input_error
            return
        t = self.templates
        self.text = fill(t["first"], instructions=t["instructions"], question=self.sample.question)
        if self.sample.image is not None:
            try:
                self.image = self._keep_image(self.sample.image)
            except OSError as exc:  # vanished or unreadable since loading: an input error, not a crash
                self.done, self.status, self.error = True, "input_error", f"cannot read image: {exc}"

    # --- images ------------------------------------------------------------------------------------------
    def _keep_image(self, src: Path) -> Path:
        """Store an image in the run directory, once per content (records reference files, never bytes).

        A full disk stops the run (``DiskFull``); any other failure is the source image's.
        """
        try:
            return ImageStore(self.run_dir).put(src)
        except OSError as exc:
            raise as_disk_full(exc, self.run_dir / "images", _size_or_zero(src)) from exc

    def _rel(self, path: Path | None) -> str | None:
        return str(path.relative_to(self.run_dir)) if path is not None else None

    # --- turns -------------------------------------------------------------------------------------------
    def request_digest(self) -> str:
        """sha256 of this turn's request text, recorded per turn: ``matbench submit`` rebuilds every turn's text
        from the claimed protocol's strings and the recorded outputs and compares (no relabelled protocol)."""
        return text_sha256(self.text)

    def request(self) -> ChatRequest:
        return self.options.request(
            self.text,
            images=[self.image] if self.image is not None else [],
            tag=f"{self.task}/{self.sample.id}#{len(self.turns) + 1}",
        )

    async def advance(self, out: ModelOutput) -> None:
        """Consume one model output: record the turn, run its tool, build the next text."""
        turn: dict = {
            "turn": len(self.turns) + 1,
            "image": self._rel(self.image),
            # the reply is stored once (capped; its true length beside it): no separate copy of its <think>
            "output": cap_text(out.text),
            "output_chars": None if out.text is None else len(out.text),
            "request_sha256": self.request_digest(),
            "action": None,
            "answer": None,
            "tokens": usage_of(out),
            "latency": round(out.latency, 4),
            "cached": out.cached,
            "error": out.error,
            "tool_calls": [],  # one record per tool call (matbench/tools/base.py), the native protocol's shape
        }
        self.turns.append(turn)
        add_usage(self.tokens, turn["tokens"])
        if out.error is not None or out.text is None:
            self.done, self.status, self.error = True, "error", out.error or "model returned no text"
            return
        layout = self.templates.layout
        if layout == "direct":  # the authors' direct scripts: the whole reply is the prediction
            turn["action"], turn["answer"] = "answer", cap_text(out.text.strip())
            self._finish(turn["answer"])
            return
        dotall = self.options.compat != "strict"
        act = va.parse_search(out.text, dotall) if layout == "search" else va.parse_coding(out.text, dotall)
        turn["action"] = act.kind  # the reply is stored once (in "output"): no separate copy of its <think>
        if act.final:
            turn["answer"] = cap_text(act.answer)
            after = self.templates.data.get("after_answer", "{text}\n{output}")
            self.text = fill(after, text=self.text, output=out.text)
            self._finish(turn["answer"])
            return
        extra = None if act.steps else self._tagged_call(out.text)
        if extra is not None:  # a tool the layout's own parser does not know answers its tag
            await self._tag_step(*extra, out.text, turn)
        elif layout == "search":
            await self._search_step(act, turn)
        else:
            await self._coding_step(act, turn)
        if not self.done and len(self.turns) >= self.options.max_calls:
            self._finish(None)  # no answer after the last allowed call: an empty prediction that scores 0

    def _finish(self, prediction: str | None) -> None:
        self.done, self.prediction = True, prediction

    def fail(self, exc: BaseException) -> None:
        """A harness-side failure: the sample is recorded as ``error`` and the other episodes go on."""
        self.done, self.status, self.error = True, "error", f"harness error: {type(exc).__name__}: {exc}"

    def _count(self, tool: str, failed: bool) -> None:
        self.tool_calls[tool] = self.tool_calls.get(tool, 0) + 1
        self.tool_errors += int(failed)

    def tool_state(self) -> ToolState:
        """What a tool sees of this episode while it runs."""
        return ToolState(
            templates=self.templates,
            native=self.templates.layout == "tools",
            options=self.options,
            image=self.image,
            question=self.sample.question,
            problems=self.problems,
            keep_image=self._keep_image,
            relative=self._rel,
        )

    async def call_tool(self, tool: Tool, value: str | None) -> ToolResult:
        """Run one call through its Tool, count it, and take the image it made as the current one."""
        result = await tool.run({tool.argument: value}, self.tool_state())
        self._count(tool.name, result.failed)
        if result.image is not None:
            self.image = result.image  # a new image REPLACES the current one in the next turn
        return result

    def _tagged_call(self, output: str) -> tuple[Tool, str] | None:
        """The first of the task's tools not parsed by the layout's own rules whose ``<tag>...</tag>`` the
        reply holds, with the text inside its tags."""
        for tool in self.tools.values():
            if tool.parsed_by_layout:
                continue
            value = tool.find(output)
            if value is not None:
                return tool, value
        return None

    async def _tag_step(self, tool: Tool, value: str, output: str, turn: dict) -> None:
        """Run a tag-protocol call of ``tool``: the prompt file's ``after_<tag>`` builds the next text from
        the text so far, the reply and the tool's text (``{result}``)."""
        turn["action"] = tool.tag
        result = await self.call_tool(tool, value)
        turn["tool_calls"].append(result.record)
        after = self.templates.data.get(f"after_{tool.tag}", self.templates["after_other"])
        self.text = fill(after, text=self.text, output=output, result=result.text or "")

    async def _search_step(self, act: va.Action, turn: dict) -> None:
        out = act.output
        if "search" not in act.steps:
            self.text = fill(self.templates["after_other"], text=self.text, output=out)
            return
        tool = self.tools["search"]
        query = act.query if act.query is not None else self.last_query
        if query is None:  # an unclosed <search> before any query: theirs reused another sample's, or crashed
            turn["tool_calls"].append(
                tool.blank(None, "no query: <search> is not closed and no earlier query to repeat")
            )
            if self.options.compat == "strict":
                self._finish(None)
            else:
                self.text = fill(self.templates["after_other"], text=self.text, output=out)
            return
        self.last_query = query
        result = await self.call_tool(tool, query)
        turn["tool_calls"].append(result.record)
        if result.failed and self.options.compat == "strict":
            self._finish(None)  # the authors' loop ended the sample on any exception, with no prediction
            return
        self.text = fill(self.templates["after_search"], text=self.text, output=out, information=result.text)

    async def _coding_step(self, act: va.Action, turn: dict) -> None:
        out = act.output
        if not act.steps:
            self.text = fill(self.templates["after_other"], text=self.text, output=out)
            return
        if "problem" in act.steps:  # the protocol's own step (tips from the prompt file), not a tool
            if not act.problems and self.options.compat == "strict":  # their script crashed here
                turn["tool_calls"].append({"name": "problem", "problems": [], "tips": None})
                self._finish(None)
                return
            self.problems = act.problems or []
            tips = va.tips_for(self.templates, self.problems)
            turn["tool_calls"].append({"name": "problem", "problems": self.problems, "tips": tips})
            self.text = fill(self.templates["after_problem"], text=self.text, output=out, tips=tips)
        if "code" in act.steps:
            tool = self.tools["code"]
            if act.code is None:
                result = tool.refused(None, "code is not extracted: expected <code> ```python ... ``` </code>")
                self._count(tool.name, True)
            else:
                result = await self.call_tool(tool, act.code)
            turn["tool_calls"].append(result.record)
            self.text = fill(self.templates["after_code"], text=self.text, output=out)

    # --- result ------------------------------------------------------------------------------------------
    def record(self, scorer: ScoreFn) -> SampleRecord:
        s = scorer(self.prediction, self.sample.answers) if self.status == "ok" else None
        return SampleRecord(
            id=self.sample.id,
            split=self.sample.split,
            question=self.sample.question,
            gold=list(self.sample.answers),
            prediction=self.prediction if self.status == "ok" else None,
            f1=s.f1 if s else 0.0,
            em=s.em if s else 0.0,
            status=self.status,
            error=self.error,
            turns=len(self.turns),
            tool_calls=dict(self.tool_calls),
            tool_errors=self.tool_errors,
            tokens=dict(self.tokens),
            latency=round(time.monotonic() - self.started, 4),
            metadata=dict(self.sample.metadata),
            trajectory=self.turns,
        )


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
