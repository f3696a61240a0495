"""The OpenAI Responses API (``POST /responses``), the shape OpenAI built for reasoning models (o3, o4-mini).

Reasoning carries across tool calls statelessly: every request asks for ``reasoning.encrypted_content``
with ``store: false``, and the next request sends the previous outputs (reasoning items, function calls,
messages) back verbatim in ``input``, as OpenAI's own stateless examples do. Nothing is kept server-side, so a
run does not depend on stored responses, and the request alone determines the answer.
"""

from __future__ import annotations

from typing import Any

from matbench.models.base import ChatRequest, Message, ModelOutput, ToolCall, ToolSpec
from matbench.models.images import image_data_url


def _user_content(text: str | None, images: list, text_first: bool = False) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"type": "input_image", "image_url": image_data_url(p), "detail": "auto"} for p in images
    ]
    if text:
        item = {"type": "input_text", "text": text}
        parts = [item, *parts] if text_first else [*parts, item]
    return parts


def input_items(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(instructions, input items): system text becomes ``instructions``; an assistant message goes back as
    the output items it came from (``carry``), or rebuilt from its text and tool calls."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            instructions.append(m.text or "")
        elif m.role == "user":
            items.append({"role": "user", "content": _user_content(m.text, m.images, m.text_first)})
        elif m.role == "tool":
            items.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": m.text or ""})
        elif m.role == "assistant":
            if m.carry:
                items.extend(m.carry)
                continue
            if m.text:
                items.append({"role": "assistant", "content": m.text})
            items.extend(
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
                for c in m.tool_calls
            )
        else:
            raise ValueError(f"unknown message role {m.role!r}")
    return ("\n\n".join(instructions) if instructions else None), items


def responses_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Function tools; ``strict`` is a required field of this API (our schemas meet its rules: every property
    required, no additional properties)."""
    return [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.parameters,
            "strict": True,
        }
        for t in tools
    ]


def build_responses_body(
    model_id: str,
    request: ChatRequest,
    *,
    reasoning: bool,
    reasoning_effort: str | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /responses``. A tag-protocol request is one user message, as in Chat."""
    if request.messages is not None:
        instructions, items = input_items(request.messages)
    else:
        instructions, items = None, [{"role": "user", "content": _user_content(request.text, request.images)}]
    body: dict[str, Any] = {
        "model": model_id,
        "input": items,
        "max_output_tokens": request.max_new_tokens,
        "store": False,
    }
    if instructions is not None:
        body["instructions"] = instructions
    if request.tools:
        body["tools"] = responses_tools(request.tools)
    if reasoning:
        body["include"] = ["reasoning.encrypted_content"]
        if reasoning_effort:
            body["reasoning"] = {"effort": reasoning_effort}
    else:
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
    if extra_body:
        body.update(extra_body)
    return body


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_response(data: Any, latency: float, retries: int) -> ModelOutput:
    """A Responses API object (parsed JSON) -> ModelOutput; an error object or a malformed one is an error."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        return ModelOutput(
            text=None,
            error="malformed Responses API reply (no output list)",
            latency=latency,
            retries=retries,
        )
    if data.get("error"):
        err = data["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        return ModelOutput(text=None, error=f"response failed: {msg}", latency=latency, retries=retries)
    texts: list[str] = []
    summaries: list[str] = []
    calls: list[ToolCall] = []
    carry: list[dict[str, Any]] = []
    for item in data["output"]:
        if not isinstance(item, dict):
            continue
        carry.append(item)
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    texts.append(str(part.get("refusal") or ""))
        elif kind == "function_call":
            calls.append(
                ToolCall(
                    id=str(item.get("call_id") or item.get("id") or f"call_{len(calls)}"),
                    name=str(item.get("name") or ""),
                    arguments=str(item.get("arguments") or ""),
                )
            )
        elif kind == "reasoning":
            summaries += [str(s.get("text") or "") for s in item.get("summary") or [] if isinstance(s, dict)]
    usage = data.get("usage") or {}
    details_in = usage.get("input_tokens_details") or {}
    details_out = usage.get("output_tokens_details") or {}
    status = data.get("status")
    incomplete = (data.get("incomplete_details") or {}).get("reason")
    return ModelOutput(
        text="".join(texts),
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cached_input_tokens=_int(details_in.get("cached_tokens")),
        reasoning_tokens=_int(details_out.get("reasoning_tokens")),
        latency=latency,
        finish_reason=incomplete or ("tool_calls" if calls else status),
        retries=retries,
        tool_calls=calls,
        carry=carry,
        reasoning="\n".join(s for s in summaries if s) or None,
    )
