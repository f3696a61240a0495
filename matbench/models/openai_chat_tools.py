"""Chat Completions with native tool calls: a conversation and function declarations in the request body,
tool calls and usage details out of the response.

The tag protocols never come here (they send one user message, see ``openai_api.build_messages``); the
native tool protocol sends a real multi-message chat: assistant messages with ``tool_calls``, ``tool``
messages answering them, and user messages (e.g. a tool's output image, which a tool message cannot carry).
"""

from __future__ import annotations

from typing import Any

from matbench.models.base import Message, ToolCall, ToolSpec
from matbench.models.images import image_data_url


def chat_message(m: Message) -> dict[str, Any]:
    """One neutral message -> one Chat Completions message (images first, as data URLs)."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text or ""}
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.text}
        if m.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ]
        return out
    if m.role not in ("system", "user"):
        raise ValueError(f"unknown message role {m.role!r}")
    if not m.images:
        return {"role": m.role, "content": m.text or ""}
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(p)}} for p in m.images
    ]
    if m.text:
        text = {"type": "text", "text": m.text}
        parts = [text, *parts] if m.text_first else [*parts, text]
    return {"role": m.role, "content": parts}


def chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    return [chat_message(m) for m in messages]


def chat_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a parsed JSON object (or the attribute of a typed SDK object); None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def chat_tool_calls(message: Any) -> list[ToolCall]:
    """The tool calls of a Chat Completions assistant message (parsed JSON); arguments kept raw."""
    calls = []
    for i, tc in enumerate(_field(message, "tool_calls") or []):
        if not isinstance(tc, dict) and not hasattr(tc, "function"):
            continue
        fn = _field(tc, "function")
        calls.append(
            ToolCall(
                id=str(_field(tc, "id") or f"call_{i}"),
                name=str(_field(fn, "name") or ""),
                arguments=str(_field(fn, "arguments") or ""),
            )
        )
    return calls


def usage_details(usage: Any) -> tuple[int | None, int | None]:
    """(cached input tokens, reasoning tokens) of a Chat Completions usage object, None when not reported."""
    if usage is None:
        return None, None
    cached = _field(_field(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning = _field(_field(usage, "completion_tokens_details"), "reasoning_tokens")
    return cached, reasoning
