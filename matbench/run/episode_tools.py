"""The native tool-calling episode (``--protocol tools``): the same tasks through function calling.

Like ``episode.py`` (the tag protocols) this is where protocol, model requests and tools meet; the tag
episode sends one re-built user message per turn, this one keeps a real conversation: a system message, the
question with its image, then each assistant message with its tool calls, one tool message per call, and,
after a successful ``run_python``, a user message carrying the output image (a tool message carries text
only). The model-call limit and the tool-call budget are the tag protocol's call limit.

Trajectory turns (one per model call) are self-describing: ``"protocol": "tools"``, ``action`` is
``tool_calls``, ``answer`` or ``message``, and ``tool_calls`` lists every call in order, each with the
function name, the raw arguments, the text sent back (``result``) and the fields of the tag protocol's tool
record (search: ``input``/``results``/``cached``/``error``; code: ``input``/``ok``/``stdout``/``stderr``/
``error``/``wall_time``/``output_image``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matbench.models.base import ChatRequest, Message, ModelOutput, ToolCall
from matbench.models.cost import add_usage, usage_of
from matbench.protocols import native_tools as nt
from matbench.protocols.replay import messages_sha256
from matbench.protocols.templates import fill
from matbench.records.run_dir import cap_text, put_text
from matbench.run.episode import Episode
from matbench.tools.base import Tool


@dataclass
class ToolsEpisode(Episode):
    messages: list[Message] = field(default_factory=list)
    budget_used: int = 0
    declared: nt.Declared | None = None

    def __post_init__(self) -> None:
        super().__post_init__()  # input errors, the first text, the input image kept in the run directory
        self.declared = nt.declare(self.templates, list(self.tools.values()))
        if self.done:
            return
        self.messages = [
            Message("system", self.templates["instructions"]),
            Message("user", self.text, images=[self.image] if self.image is not None else []),
        ]

    def request_digest(self) -> str:
        return messages_sha256(self.messages)

    def request(self) -> ChatRequest:
        assert self.declared is not None
        return self.options.request(
            messages=list(self.messages),
            tools=self.declared.specs,
            tag=f"{self.task}/{self.sample.id}#{len(self.turns) + 1}",
        )

    async def advance(self, out: ModelOutput) -> None:
        """Record the call, run its tool calls in order, answer each with a tool message."""
        assert self.declared is not None
        usage = usage_of(out)
        turn: dict = {
            "turn": len(self.turns) + 1,
            "protocol": "tools",
            "image": self._rel(self.image),
            "action": None,
            "answer": None,
            "tokens": usage,
            "request_sha256": self.request_digest(),
            "latency": round(out.latency, 4),
            "cached": out.cached,
            "error": out.error,
            "finish_reason": out.finish_reason,
            "tool_calls": [],
        }
        # every stored text capped, its true length beside it, as the tag protocols store replies
        put_text(turn, "output", out.text)
        put_text(turn, "think", out.reasoning)
        self.turns.append(turn)
        add_usage(self.tokens, usage)
        if out.error is not None or out.text is None:
            self.done, self.status, self.error = True, "error", out.error or "model returned no text"
            return
        self.messages.append(
            Message("assistant", out.text or None, tool_calls=out.tool_calls, carry=out.carry)
        )
        if not out.tool_calls:
            if self.declared.final == "message":
                turn["action"] = "answer"
                put_text(turn, "answer", out.text.strip())
                self._finish(turn["answer"])
                return
            turn["action"] = "message"
            self.messages.append(Message("user", nt.result(self.templates, "need_answer")))
        else:
            turn["action"] = "tool_calls"
            await self._run_calls(out.tool_calls, turn)
        if not self.done and len(self.turns) >= self.options.max_calls:
            self._finish(None)  # no answer within the call limit: an empty prediction that scores 0

    async def _run_calls(self, calls: list[ToolCall], turn: dict) -> None:
        assert self.declared is not None
        replies: list[Message] = []
        images: list[Message] = []
        answered: str | None = None
        for call in calls:
            entry: dict = {"call_id": cap_text(call.id), "function": cap_text(call.name)}
            put_text(entry, "arguments", call.arguments)
            turn["tool_calls"].append(entry)
            result: str | None = None  # the text sent back (whole); the entry keeps it capped
            tool = self.declared.by_name.get(call.name)
            if answered is not None:
                result = nt.result(self.templates, "not_run")
            elif tool is None:
                names = ", ".join(self.declared.by_name)
                result = fill(nt.result(self.templates, "unknown_tool"), name=call.name, names=names)
                self.tool_errors += 1
            elif tool is nt.ANSWER:
                value, problem = nt.parse_argument(self.templates, call, nt.ANSWER.argument)
                if problem is None:
                    answered = value
                else:
                    result = problem
                    self.tool_errors += 1
            else:
                result, image = await self._call(tool, call, entry)
                if image is not None:
                    text = fill(nt.result(self.templates, "image_message"), call_id=call.id)
                    images.append(Message("user", text, images=[image]))
            put_text(entry, "result", result)
            if result is not None:
                replies.append(Message("tool", result, tool_call_id=call.id))
        if answered is not None:
            turn["action"] = "answer"
            put_text(turn, "answer", answered.strip())
            self._finish(turn["answer"])
            return
        self.messages += replies + images

    async def _call(self, tool: Tool, call: ToolCall, entry: dict) -> tuple[str | None, Path | None]:
        """One call through its Tool: the text sent back, and the image it made (None: none), which the
        next call reads."""
        if self.budget_used >= self.options.max_calls:
            budget = fill(nt.result(self.templates, "budget"), budget=self.options.max_calls)
            result = tool.refused(None, "tool-call budget used up: not run", text=budget)
            self._count(tool.name, True)
        else:
            self.budget_used += 1  # a malformed call spends the budget too
            value, problem = nt.parse_argument(self.templates, call, tool.argument)
            if problem is not None:
                result = tool.refused(value, problem)
                self._count(tool.name, True)
            else:
                result = await self.call_tool(tool, value)
        entry.update(result.record)
        return result.text, result.image
