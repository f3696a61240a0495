"""The ``tools`` protocol: the task's tools declared as functions for native function calling.

It knows function names, argument schemas and the texts sent back (from the ``layout: tools`` prompt file),
never HTTP or tool back-ends. A task tool maps to one function: ``search`` -> ``search(query)``, ``code`` ->
``run_python(code)``; ``answer(text)`` ends the episode when the prompt file says ``final: answer``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from matbench.errors import ConfigError
from matbench.models.base import ToolCall, ToolSpec
from matbench.protocols.templates import Templates, fill

# task tool -> (function name, its one string argument)
FUNCTIONS: dict[str, tuple[str, str]] = {"search": ("search", "query"), "code": ("run_python", "code")}
ANSWER = ("answer", "text")
FINAL_MODES = ("answer", "message")


@dataclass(frozen=True)
class Declared:
    """The functions one episode offers: name -> (task tool or "answer", argument name)."""

    specs: list[ToolSpec]
    by_name: dict[str, tuple[str, str]]
    final: str


def declare(templates: Templates, task_tools: tuple[str, ...]) -> Declared:
    """The ToolSpecs for a task's tools (+ ``answer`` when the episode ends by calling it)."""
    final = templates["final"]
    if final not in FINAL_MODES:
        raise ConfigError(f"{templates.path}: `final` must be one of {', '.join(FINAL_MODES)}, not {final!r}")
    wanted = [(tool, *FUNCTIONS[tool]) for tool in task_tools if tool in FUNCTIONS]
    if final == "answer":
        wanted.append(("answer", *ANSWER))
    specs, by_name = [], {}
    for tool, name, arg in wanted:
        try:
            description = templates["functions"][name]
            arg_description = templates["arguments"][arg]
        except (KeyError, TypeError):
            raise ConfigError(f"{templates.path}: needs functions.{name} and arguments.{arg}") from None
        schema = {
            "type": "object",
            "properties": {arg: {"type": "string", "description": arg_description}},
            "required": [arg],
            "additionalProperties": False,
        }
        specs.append(ToolSpec(name, description, schema))
        by_name[name] = (tool, arg)
    return Declared(specs, by_name, final)


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
