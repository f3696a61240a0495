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


def chat_tool_calls(message: Any) -> list[ToolCall]:
    """The tool calls of a Chat Completions assistant message (typed SDK object); arguments kept raw."""
    calls = []
    for i, tc in enumerate(getattr(message, "tool_calls", None) or []):
        fn = getattr(tc, "function", None)
        calls.append(
            ToolCall(
                id=str(getattr(tc, "id", None) or f"call_{i}"),
                name=str(getattr(fn, "name", "") or ""),
                arguments=str(getattr(fn, "arguments", "") or ""),
            )
        )
    return calls


def usage_details(usage: Any) -> tuple[int | None, int | None]:
    """(cached input tokens, reasoning tokens) of a Chat Completions usage object, None when not reported."""
    if usage is None:
        return None, None
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt, "cached_tokens", None) if prompt is not None else None
    reasoning = getattr(completion, "reasoning_tokens", None) if completion is not None else None
    return cached, reasoning
