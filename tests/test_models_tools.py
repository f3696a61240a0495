"""Native tool calls in the model layer, both API shapes, against the local OpenAI-compatible server:
Chat Completions (messages, tools, tool_calls, tool messages) and the Responses API (function_call items,
reasoning items carried back, usage details)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, Reply, conversation
from PIL import Image

from matbench.errors import ConfigError
from matbench.models import ChatRequest, get_model
from matbench.models.base import Message, ModelOutput, ToolCall, ToolSpec
from matbench.models.openai_api import OpenAIModel

SEARCH = ToolSpec(
    "search",
    "Search the web.",
    {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": False,
    },
)


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run(model: OpenAIModel, requests: list[ChatRequest]) -> list[ModelOutput]:
    async def go():
        try:
            return await model.generate(requests)
        finally:
            await model.aclose()

    return asyncio.run(go())


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(np.full((8, 12, 3), 200, dtype=np.uint8)).save(path)
    return path


def test_shape_follows_the_alias_and_can_be_forced() -> None:
    with FakeOpenAIServer("ok") as srv:
        assert get_model("gpt-4o", base_url=srv.base_url).api == "chat"
        assert get_model("o3", base_url=srv.base_url).api == "responses"
        assert get_model("o4-mini", base_url=srv.base_url).api == "responses"
        assert get_model("o3", base_url=srv.base_url, api="chat").api == "chat"
        assert get_model("gpt-4o", base_url=srv.base_url, api="responses").config()["api"] == "responses"
        with pytest.raises(ConfigError, match="api must be one of chat, responses"):
            get_model("gpt-4o", base_url=srv.base_url, api="soap")


def test_chat_conversation_with_tool_calls(tmp_path: Path) -> None:
    """A real multi-message chat goes out; tool calls come back with their raw (even malformed) arguments."""
    img = _image(tmp_path)
    reply = Reply(
        tool_calls=[
            {"id": "call_a", "name": "search", "arguments": {"query": "lego"}},
            {"id": "call_b", "name": "search", "arguments": '{"query": "unterminated'},
        ],
        cached_tokens=7,
    )
    with FakeOpenAIServer(lambda req: reply) as srv:
        model = get_model("gpt-4o", base_url=srv.base_url)
        messages = [
            Message("system", "Use the tools."),
            Message("user", "What brand?", images=[img]),
            Message("assistant", None, tool_calls=[ToolCall("call_0", "search", '{"query": "toy"}')]),
            Message("tool", "1. toys", tool_call_id="call_0"),
        ]
        [out] = run(model, [ChatRequest("", messages=messages, tools=[SEARCH], temperature=0.0)])
    assert out.error is None and out.text == "" and out.finish_reason == "tool_calls"
    assert out.tool_calls == [
        ToolCall("call_a", "search", '{"query": "lego"}'),
        ToolCall("call_b", "search", '{"query": "unterminated'),
    ]
    assert out.cached_input_tokens == 7 and out.reasoning_tokens is None
    [req] = srv.requests
    assert srv.paths == ["/v1/chat/completions"]
    assert req["tools"] == [
        {
            "type": "function",
            "function": {"name": "search", "description": "Search the web.", "parameters": SEARCH.parameters},
        }
    ]
    sent = req["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[1]["content"][0]["type"] == "image_url" and sent[1]["content"][1] == {
        "type": "text",
        "text": "What brand?",
    }
    assert sent[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "search", "arguments": '{"query": "toy"}'},
            }
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "call_0", "content": "1. toys"}
    assert req["max_tokens"] == 1024 and req["temperature"] == 0.0


def test_responses_shape_carries_reasoning_items_back(tmp_path: Path) -> None:
    """o3: function_call items and the reasoning item come back; the next request sends them verbatim."""
    img = _image(tmp_path)
    replies = iter(
        [
            Reply(
                reasoning="I should search.",
                tool_calls=[{"id": "call_1", "name": "search", "arguments": {"query": "q"}}],
            ),
            Reply(text="Paris", reasoning="Found it.", cached_tokens=50),
        ]
    )
    with FakeOpenAIServer(lambda req: next(replies)) as srv:
        model = get_model("o3", base_url=srv.base_url, reasoning_effort="high")
        messages = [Message("system", "Be brief."), Message("user", "Capital?", images=[img])]
        [first] = run(
            model, [ChatRequest("", messages=messages, tools=[SEARCH], max_new_tokens=900, temperature=0.0)]
        )
        assert first.tool_calls == [ToolCall("call_1", "search", '{"query": "q"}')]
        assert first.reasoning == "I should search." and first.reasoning_tokens == 30
        assert [i["type"] for i in first.carry] == ["reasoning", "function_call"]
        messages += [
            Message("assistant", first.text, tool_calls=first.tool_calls, carry=first.carry),
            Message("tool", "1. Paris is the capital of France.", tool_call_id="call_1"),
        ]
        model = get_model("o3", base_url=srv.base_url, reasoning_effort="high")
        [second] = run(model, [ChatRequest("", messages=messages, tools=[SEARCH], max_new_tokens=900)])
    assert second.text == "Paris" and second.tool_calls == [] and second.cached_input_tokens == 50
    assert srv.paths == ["/v1/responses", "/v1/responses"]
    req1, req2 = srv.requests
    assert req1["instructions"] == "Be brief." and req1["store"] is False
    assert req1["include"] == ["reasoning.encrypted_content"] and req1["reasoning"] == {"effort": "high"}
    assert req1["max_output_tokens"] == 900 and "temperature" not in req1  # reasoning models take none
    assert req1["tools"] == [
        {
            "type": "function",
            "name": "search",
            "description": "Search the web.",
            "parameters": SEARCH.parameters,
            "strict": True,
        }
    ]
    assert [p["type"] for p in req1["input"][0]["content"]] == ["input_image", "input_text"]
    assert req1["input"][0]["content"][0]["detail"] == "auto"
    # the reasoning item and the function call go back exactly as they came, then the tool's output
    assert req2["input"][1:3] == first.carry
    assert req2["input"][3] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "1. Paris is the capital of France.",
    }
    assert [m["role"] for m in conversation(req2)] == ["system", "user", "reasoning", "assistant", "tool"]


def test_tag_protocol_request_through_responses_is_one_user_message(tmp_path: Path) -> None:
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        [out] = run(get_model("o3", base_url=srv.base_url), [ChatRequest("Q?", images=[_image(tmp_path)])])
    assert out.text == "<answer> x </answer>" and out.input_tokens == 101
    [req] = srv.requests
    assert len(req["input"]) == 1 and req["input"][0]["role"] == "user" and "tools" not in req
    assert "instructions" not in req


def test_tool_calls_survive_the_output_round_trip() -> None:
    out = ModelOutput(text="", tool_calls=[ToolCall("c", "search", "{}")], carry=[{"type": "reasoning"}])
    back = ModelOutput.from_dict(json.loads(json.dumps(out.to_dict())))
    assert back.tool_calls == [ToolCall("c", "search", "{}")] and back.carry == [{"type": "reasoning"}]
