"""The ``tools`` protocol: the task's tools declared as functions for native function calling.

It knows the texts sent back (from the ``layout: tools`` prompt file), never HTTP or tool back-ends. Each
Tool declares its own function (``search(query)``, ``run_python(code)``: matbench/tools/); ``answer(text)``
is the protocol's and ends the episode when the prompt file says ``final: answer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import ToolCall, ToolSpec
from matbench.protocols.templates import Templates, fill

FINAL_MODES = ("answer", "message")


@dataclass(frozen=True)
class AnswerFunction:
    """``answer(text)``: the protocol's own function that ends the episode (``final: answer``)."""

    function: str = "answer"
    argument: str = "text"


ANSWER = AnswerFunction()


@dataclass(frozen=True)
class Declared:
    """The functions one episode offers: function name -> its Tool (or :data:`ANSWER`)."""

    specs: list[ToolSpec]
    by_name: dict[str, Any]
    final: str


def declare(templates: Templates, tools: Iterable[Any]) -> Declared:
    """The ToolSpecs of a task's tools (each Tool declares its own function; matbench/tools/base.py), plus
    ``answer`` when the episode ends by calling it."""
    final = templates["final"]
    if final not in FINAL_MODES:
        raise ConfigError(f"{templates.path}: `final` must be one of {', '.join(FINAL_MODES)}, not {final!r}")
    specs, by_name = [], {}
    for tool in tools:
        specs.append(tool.declare(templates))
        by_name[tool.function] = tool
    if final == "answer":
        specs.append(_answer_spec(templates))
        by_name[ANSWER.function] = ANSWER
    return Declared(specs, by_name, final)


def _answer_spec(templates: Templates) -> ToolSpec:
    try:
        description = templates["functions"][ANSWER.function]
        arg_description = templates["arguments"][ANSWER.argument]
    except (KeyError, TypeError):
        raise ConfigError(f"{templates.path}: needs functions.answer and arguments.text") from None
    schema = {
        "type": "object",
        "properties": {ANSWER.argument: {"type": "string", "description": arg_description}},
        "required": [ANSWER.argument],
        "additionalProperties": False,
    }
    return ToolSpec(ANSWER.function, description, schema)


def parse_argument(templates: Templates, call: ToolCall, arg: str) -> tuple[str | None, str | None]:
    """(value, None) when the arguments are a JSON object with a string ``arg``, else (None, error text)."""
    try:
        data = json.loads(call.arguments or "")
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON ({exc.msg} at position {exc.pos})"
    else:
        if isinstance(data, dict) and isinstance(data.get(arg), str):
            return data[arg], None
        problem = f"no string field {arg!r}"
    return None, fill(result(templates, "bad_arguments"), name=call.name, fields=arg, error=problem)


def result(templates: Templates, key: str) -> str:
    try:
        return templates["results"][key]
    except (KeyError, TypeError):
        raise ConfigError(f"{templates.path}: needs results.{key}") from None


def search_text(templates: Templates, snippets: list[str]) -> str:
    """The top-k snippets as numbered lines (the same snippets the tag protocol puts in <information>)."""
    if not snippets:
        return result(templates, "search_empty")
    item = result(templates, "search_item")
    return "\n".join(fill(item, i=i, snippet=s) for i, s in enumerate(snippets, 1))
