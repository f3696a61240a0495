"""A local OpenAI-compatible HTTP server for tests and benches: a fake at the process boundary that
speaks the real protocol (``POST /v1/chat/completions``, ``GET /v1/models``), so the real openai
client, transport, retries and concurrency limits are exercised end to end.

``policy(request_json) -> str | Reply`` decides each answer: a text, an HTTP error (status,
Retry-After, body) or a delayed answer. Every received request is recorded.

Run standalone for benches (prints the base URL on the first stdout line):
    python tests/fake_openai_server.py --port 0 --latency 0.5 --reply "<answer> x </answer>"
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """What the server answers. ``status`` != 200 sends an OpenAI-style error body."""

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # error body override (dict -> JSON, str -> raw)
    delay: float = 0.0  # seconds to wait before answering (added to the server's latency)
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None

    @classmethod
    def error(cls, status: int, message: str = "", retry_after: float | str | None = None) -> Reply:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(status=status, headers=headers, text=message or f"fake error {status}")


Policy = Callable[[dict[str, Any]], "str | Reply"]


def constant(text: str) -> Policy:
    return lambda _req: text


def request_text(request_json: dict[str, Any]) -> str:
    """The text of the (single) user message, whether content is a string or a parts list."""
    content = request_json["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def request_image_urls(request_json: dict[str, Any]) -> list[str]:
    content = request_json["messages"][-1]["content"]
    if isinstance(content, str):
        return []
    return [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:<mime>;base64,<payload>`` -> (mime, bytes)."""
    if not url.startswith("data:"):
        raise ValueError(f"not a data URL: {url[:40]!r}")
    header, _, payload = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if encoding != "base64":
        raise ValueError(f"unsupported data URL encoding {encoding!r}")
    return mime, base64.b64decode(payload)


def decode_request_images(request_json: dict[str, Any]) -> list[Any]:
    """Every image of a received request as an RGB numpy array (H, W, 3)."""
    import numpy as np
    from PIL import Image

    out = []
    for url in request_image_urls(request_json):
        _, data = decode_data_url(url)
        with Image.open(io.BytesIO(data)) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def _count_tokens(request_json: dict[str, Any]) -> int:
    """A deterministic stand-in for a tokenizer: words + a fixed cost per image."""
    return len(request_text(request_json).split()) + 100 * len(request_image_urls(request_json))


# What ``GET /v1/models`` lists unless a test names its own: the model names the suite sends.
DEFAULT_MODELS = ("fake", "fake-model", "m", "bench", "weak", "strong", "a", "b", "gpt-4o", "o3")


class FakeOpenAIServer:
    """aiohttp server on 127.0.0.1 in a background thread; use as a context manager.

    ``models``: the ids ``GET /v1/models`` lists (matbench's preflight checks the run's model is one).
    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get ``auth_status``."""

    def __init__(
        self,
        policy: Policy | str = "ok",
        latency: float = 0.0,
        port: int = 0,
        *,
        models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
        api_key: str | None = None,
        auth_status: int = 401,
    ) -> None:
        self.policy: Policy = constant(policy) if isinstance(policy, str) else policy
        self.latency = latency
        self.port = port
        self.models = list(models)
        self.api_key = api_key
        self.auth_status = auth_status
        self.models_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- handlers -------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.Response:
        received = time.time()
        response = await self._chat_inner(request)
        # server-side timing, for benches: when the request arrived and how long the server spent on it
        # (including the configured latency)
        response.headers["x-fake-received-at"] = f"{received:.6f}"
        response.headers["x-fake-server-ms"] = f"{(time.time() - received) * 1000:.3f}"
        return response

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response(
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            status=self.auth_status,
        )

    async def _chat_inner(self, request: web.Request) -> web.Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.arrivals.append(time.monotonic())
        try:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return web.json_response(
                    {"error": {"message": "invalid JSON", "type": "invalid_request_error"}}, status=400
                )
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
            reply = self.policy(body)
            if isinstance(reply, str):
                reply = Reply(text=reply)
            wait = self.latency + reply.delay
            if wait > 0:
                await asyncio.sleep(wait)
            if reply.status != 200:
                payload = reply.body
                if payload is None:
                    payload = {"error": {"message": reply.text, "type": "fake_error", "code": reply.status}}
                if isinstance(payload, str):
                    return web.Response(text=payload, status=reply.status, headers=reply.headers)
                return web.json_response(payload, status=reply.status, headers=reply.headers)
            prompt_tokens = _count_tokens(body)
            completion_tokens = len(reply.text.split())
            usage = reply.usage or {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            return web.json_response(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": reply.finish_reason,
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                },
                headers=reply.headers,
            )
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _models(self, request: web.Request) -> web.Response:
        with self._lock:
            self.models_calls += 1
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": int(time.time()), "owned_by": "matbench"}
                    for name in self.models
                ],
            }
        )

    # -- lifecycle ------------------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_get("/v1/models", self._models)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None and server.sockets
            self.port = server.sockets[0].getsockname()[1]
        except BaseException as exc:  # surface bind errors in start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._run, name="fake-openai-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"fake server failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.calls = 0
            self.max_in_flight = self.in_flight
            self.arrivals.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--reply", default="<answer> ok </answer>")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.reply, latency=args.latency, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
