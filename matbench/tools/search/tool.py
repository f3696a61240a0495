"""The search tool: ``<search>query</search>`` in the tag protocols, ``search(query)`` as a native function.

Both show the model the same top-k snippets from the same back-end and cache: the tag protocols inside the
prompt file's ``<information>`` block, the native protocol as numbered lines (``results.search_item``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from matbench.protocols import native_tools as nt
from matbench.protocols import visual_arft as va
from matbench.records.run_dir import cap_text
from matbench.tools.base import Tool, ToolContext, ToolResult, ToolState


def open_search(settings: Any) -> Any:
    """The search back-end behind its cache, as ``--search`` and ``--search-cache`` ask."""
    from matbench.tools.search import CachedSearch, get_search_backend

    cache_dir = Path(settings.cache_dir) if settings.cache_dir else None
    # --compat strict: every organic result Serper returns is used, as in the authors' script.
    strict = (
        {"all_results": True} if settings.compat == "strict" and settings.search.strip() == "serper" else {}
    )
    # A replay (`--search-cache read`) needs no API key: every answer must come from the cache.
    # --request-timeout bounds each search request in all (else the backend's default: 30 s serper, 60 s retriever)
    timeout = {"timeout": settings.request_timeout} if getattr(settings, "request_timeout", None) else {}
    backend = get_search_backend(
        settings.search, offline=settings.search_cache == "read", cache_dir=cache_dir, **strict, **timeout
    )
    return CachedSearch(backend, (cache_dir / "search.sqlite") if cache_dir else None, mode=settings.search_cache)


class SearchTool(Tool):
    name = "search"
    function = "search"
    argument = "query"
    tag = "search"
    parsed_by_layout = True  # the authors' <search> rules (protocols/visual_arft.py)

    def __init__(self, cache: Any, spec: str) -> None:
        self.cache = cache  # CachedSearch: search_with_source(query, k) -> (hits, cached)
        self.spec = spec

    @classmethod
    def open(cls, context: ToolContext) -> SearchTool:
        if "search" not in context.shared:  # one back-end and cache for every task of the invocation
            context.shared["search"] = open_search(context.settings)
        return cls(context.shared["search"], context.settings.search)

    def config(self) -> dict[str, Any]:
        backend = self.cache.backend
        # "cache": the mode "auto" resolved to (off for local BM25)
        # "setting": what the leaderboard shows and ranks by (runs with different settings never share a list)
        return {
            "backend": backend.name,
            "spec": self.spec,
            "params": backend.params(),
            "cache": self.cache.mode,
            "setting": backend.setting(),
        }

    def blank(self, value: str | None, error: str | None = None) -> dict[str, Any]:
        return {"name": self.name, "input": cap_text(value), "results": [], "error": error, "cached": False}

    async def run(self, arguments: dict[str, Any], state: ToolState) -> ToolResult:
        from matbench.tools.search.base import format_search_error

        query = arguments[self.argument]
        record = self.blank(query)
        try:
            hits, record["cached"] = await asyncio.to_thread(
                self.cache.search_with_source, query, state.options.top_k
            )
            record["results"] = [
                {k: cap_text(v) if isinstance(v, str) else v for k, v in h.to_dict().items()} for h in hits
            ]
            if state.strict and any(not h.snippet for h in hits):
                raise ValueError("a search result has no snippet")
        except Exception as exc:  # noqa: BLE001 - any tool failure goes back to the model as text
            record["error"] = format_search_error(exc)
            text = (
                f"Error: {record['error']}"
                if state.native
                else va.information_block(state.templates, None, error=record["error"])
            )
            return ToolResult(text, record, failed=True)
        snippets = [h.snippet for h in hits]
        if state.native:
            text = nt.search_text(state.templates, snippets)
        else:
            text = va.information_block(state.templates, snippets)
        return ToolResult(text, record)
