"""The Tool seam: what an episode may call, the same object for the tag protocols and native tool calls.

A Tool owns its name (what task specs list and ``tool_calls`` counts), the function it declares for native
tool calling (one string argument, described by the protocol file's ``functions.<function>`` and
``arguments.<argument>`` strings), the tag it answers in the tag protocols (``<tag>...</tag>``), how it is
opened once per invocation and closed, the record config.json keeps of it, and :meth:`Tool.run`. Episodes
(``episode.py``, ``episode_tools.py``) never know which tools exist: they parse a call, hand its argument to
the tool and show the model the text it returns. A new tool is one module with a Tool subclass, registered
in ``matbench.registry.TOOLS`` (or an entry point ``matbench.tools``), plus its prompt strings.

Every call is recorded in one shape, in the turn's ``tool_calls`` list: ``name``, ``input``, the tool's own
fields and ``error``; a native call adds ``call_id``, ``function``, ``arguments`` and ``result`` (the text
sent back). Stored texts are capped (:func:`matbench.records.run_dir.cap_text`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from matbench.models.base import ToolSpec
from matbench.protocols.templates import Templates


@dataclass
class ToolContext:
    """What opening a tool for one task may read: the eval settings, the task, its protocol strings, and
    ``shared``, where back-ends opened once per invocation are kept (closed by the runner at the end)."""

    settings: Any
    spec: Any  # TaskSpec
    templates: Templates
    shared: dict
    exec_scope: str | None = None


@dataclass
class ToolState:
    """What a tool sees of its episode while it runs."""

    templates: Templates
    native: bool  # True: --protocol tools (the text is a tool message); False: a tag protocol's next text
    options: Any  # EpisodeOptions: top_k, compat, crop_assist, exec_globals
    image: Path | None
    question: str
    problems: list[str] | None
    keep_image: Callable[[Path], Path]  # stores an image in the run directory (once per content)
    relative: Callable[[Path | None], str | None]  # an image's reference as records write it

    @property
    def strict(self) -> bool:
        return self.options.compat == "strict"


@dataclass
class ToolResult:
    """One call's outcome: ``text`` for the model, ``record`` for the trajectory, ``image`` replacing the
    episode's current image (None: unchanged), ``failed`` counted in ``tool_errors``."""

    text: str | None
    record: dict[str, Any] = field(default_factory=dict)
    image: Path | None = None
    failed: bool = False


class Tool(ABC):
    """One tool. Subclasses set the class attributes and implement :meth:`open` and :meth:`run`."""

    name: ClassVar[str]  # as task specs list it and tool_calls counts it
    function: ClassVar[str]  # the native function it declares
    argument: ClassVar[str]  # the function's one string argument
    tag: ClassVar[str]  # the tag it answers in the tag protocols
    config_key: ClassVar[str | None] = None  # where config.json records config() (default: the name)
    # True: a tag protocol's own parser finds this tool's calls (search and code keep the authors' rules);
    # False: the episode finds ``<tag>...</tag>`` with :meth:`find`
    parsed_by_layout: ClassVar[bool] = False

    @property
    def open_tag(self) -> str:
        return f"<{self.tag}>"

    @property
    def close_tag(self) -> str:
        return f"</{self.tag}>"

    def find(self, output: str) -> str | None:
        """The text inside this tool's tags in a tag-protocol reply (None: not called). Search and code
        keep the authors' own parsing rules (protocols/visual_arft.py)."""
        start = output.find(self.open_tag)
        if start < 0:
            return None
        end = output.find(self.close_tag, start + len(self.open_tag))
        return output[start + len(self.open_tag) : end].strip() if end >= 0 else None

    @classmethod
    @abstractmethod
    def open(cls, context: ToolContext) -> Tool:
        """The tool for one task; back-ends worth sharing between tasks go in ``context.shared``."""

    def config(self) -> dict[str, Any] | None:
        """What config.json records of this tool (under :attr:`config_key`): what changes results."""
        return None

    def declare(self, templates: Templates) -> ToolSpec:
        """The function offered for native tool calls, described by the protocol file's strings."""
        from matbench.errors import ConfigError

        try:
            description = templates["functions"][self.function]
            arg_description = templates["arguments"][self.argument]
        except (KeyError, TypeError):
            raise ConfigError(
                f"{templates.path}: needs functions.{self.function} and arguments.{self.argument}"
            ) from None
        schema = {
            "type": "object",
            "properties": {self.argument: {"type": "string", "description": arg_description}},
            "required": [self.argument],
            "additionalProperties": False,
        }
        return ToolSpec(self.function, description, schema)

    @abstractmethod
    async def run(self, arguments: dict[str, Any], state: ToolState) -> ToolResult:
        """Run one call (``arguments[self.argument]`` is its text); failures come back as a result, never
        raised: the model is told, and the episode goes on."""

    def refused(self, value: str | None, error: str, text: str | None = None) -> ToolResult:
        """A call that did not run (malformed arguments, budget used up): recorded and counted as failed."""
        return ToolResult(text if text is not None else error, self.blank(value, error), failed=True)

    def blank(self, value: str | None, error: str | None = None) -> dict[str, Any]:
        """The record of a call before it runs (subclasses add their own fields)."""
        from matbench.records.run_dir import cap_text

        return {"name": self.name, "input": cap_text(value), "error": error}

    def close(self) -> None:  # noqa: B027 - most tools share back-ends the runner closes
        """Release what :meth:`open` took that is not in ``context.shared``."""


def open_tools(names: list[str] | tuple[str, ...], context: ToolContext) -> dict[str, Tool]:
    """The task's tools by name, from the TOOLS registry (an unknown name fails in one line)."""
    from matbench.registry import TOOLS

    return {name: TOOLS.load(name).open(context) for name in names}


def turn_calls(turn: dict) -> list[dict]:
    """The tool-call records of one trajectory turn, in order, whatever its shape: ``tool_calls`` (this
    shape, and round 2's native protocol), or round 2's tag-protocol ``tool`` (one record or None)."""
    calls = turn.get("tool_calls")
    out = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    old = turn.get("tool")
    if isinstance(old, dict):
        out.insert(0, old)
    return out
