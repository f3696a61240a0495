"""A new HTTP model backend in about 100 lines (tests/ollama_backend.py: Ollama's native chat API) gets the
transport's deadline, retries and replicas without a line of its own, against loopback servers."""

from __future__ import annotations

import asyncio
import json
import time

from ollama_backend import OllamaModel
from test_net import Recorder, _send, trickle

from matbench.models.base import ChatRequest

ANSWER = {"model": "llava", "message": {"role": "assistant", "content": "<answer> x </answer>"}, "done": True,
          "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 3}  # fmt: skip


def _run(model: OllamaModel, requests: list[ChatRequest]):
    async def go():
        try:
            return await model.generate(requests)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_a_new_backend_gets_replicas_retries_and_a_deadline_for_free(tmp_path):
    bodies = []

    def good(handler, method):
        bodies.append(json.loads(handler.seen_body))
        _send(handler, 200, json.dumps(ANSWER).encode())

    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG fake")
    with Recorder(lambda h, m: _send(h, 503, b"overloaded")) as sick, Recorder(good) as fine:
        model = OllamaModel("llava", base_url=[sick.url, fine.url], max_concurrency=2, retry_base_delay=0.01)
        outs = _run(model, [ChatRequest(f"q{i}", images=[image], temperature=0.0) for i in range(12)])
    assert [o.text for o in outs] == ["<answer> x </answer>"] * 12
    assert all(o.input_tokens == 7 and o.output_tokens == 3 and o.finish_reason == "stop" for o in outs)
    stats = {s["url"]: s for s in model.endpoint_stats()}
    sick_stats = stats[sick.url]
    assert not sick_stats["healthy"] and sick_stats["moved"] == sick_stats["failed"] == len(sick.seen)
    assert stats[fine.url]["calls"] == 12
    assert bodies[0]["options"] == {"num_predict": 1024, "temperature": 0.0}
    assert bodies[0]["messages"][0]["images"] == ["iVBORyBmYWtl"]  # base64 of the file

    with Recorder(trickle) as slow:
        model = OllamaModel("llava", base_url=slow.url, timeout=1.0, max_retries=0)
        t0 = time.monotonic()
        (out,) = _run(model, [ChatRequest("q")])
    assert out.text is None and "timed out after 1s" in out.error and time.monotonic() - t0 < 2.5
