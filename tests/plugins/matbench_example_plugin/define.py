"""``define``: a tool that looks a term up in the task's glossary (``<define> term </define>`` in the tag
protocols, the function ``define_term`` for native tool calls)."""

import json
from typing import Any

from matbench.tools.base import Tool, ToolContext, ToolResult, ToolState


class Define(Tool):
    name = "define"  # as task specs list it
    function = "define_term"  # native tool calls: described by the protocol file's functions.define_term
    argument = "term"
    tag = "define"  # tag protocols: the reply's <define>...</define>, the next text from after_define

    def __init__(self, glossary: dict[str, str], source: str) -> None:
        self.glossary, self.source = glossary, source

    @classmethod
    def open(cls, context: ToolContext) -> "Define":
        path = context.spec.path.parent / context.spec.options["glossary"]  # beside the task spec
        return cls(json.loads(path.read_text(encoding="utf-8")), path.name)

    def config(self) -> dict[str, Any]:
        return {"glossary": self.source, "terms": len(self.glossary)}  # recorded in config.json

    async def run(self, arguments: dict[str, Any], state: ToolState) -> ToolResult:
        term = str(arguments.get(self.argument) or "").strip()
        record = self.blank(term)
        text = self.glossary.get(term.lower())
        if text is None:
            record["error"] = f"no entry for {term!r}"
            return ToolResult(record["error"], record, failed=True)
        record["definition"] = text
        return ToolResult(text, record)
