"""A whole HTTP model backend on the shared transport: Ollama's native chat API (``POST /api/chat``).

It exists to show what a new HTTP backend costs now (issue 22: "about 150 lines"): the request body, the reply's
fields and the config record. Deadlines, retries with Retry-After, the rate limit, several replicas and keys
pinned to their origin come from ``matbench.net``; nothing here retries, times out or routes.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from matbench.models.base import ChatRequest, Model, ModelOutput
from matbench.net.failure import Failure, GaveUp
from matbench.net.http import HttpClient, json_of
from matbench.net.pool import Endpoint
from matbench.net.retry import RetryPolicy
from matbench.net.transport import Transport


class OllamaModel(Model):
    """``ollama:NAME`` against one or more ``ollama serve`` replicas (``base_url``)."""

    lockstep = False

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | list[str] = "http://127.0.0.1:11434",
        max_concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 6,
        retry_base_delay: float = 1.0,
    ) -> None:
        self.model_id = model_id
        self.name = f"ollama:{model_id}"
        self.max_concurrency = max_concurrency
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.timeout = timeout
        self.transport = Transport(
            [u.rstrip("/") for u in self.base_urls],
            what=self.name,
            retry=RetryPolicy(max_attempts=max_retries + 1, base_delay=retry_base_delay),
            timeout=timeout,
            max_concurrency=max_concurrency,
            client_factory=lambda url: HttpClient(url, timeout),
        )

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """One user message, images as base64; decoding in ``options`` (unset = the model file's default)."""
        message: dict[str, Any] = {"role": "user", "content": request.text}
        if request.images:
            message["images"] = [base64.b64encode(p.read_bytes()).decode() for p in request.images]
        options: dict[str, Any] = {"num_predict": request.max_new_tokens}
        for key, value in (
            ("temperature", request.temperature),
            ("top_p", request.top_p),
            ("seed", request.seed),
        ):
            if value is not None:
                options[key] = value
        return {"model": self.model_id, "messages": [message], "stream": False, "options": options}

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, request: ChatRequest) -> ModelOutput:
        start = time.perf_counter()
        try:
            body = await asyncio.to_thread(self.body, request)
        except OSError as exc:
            return ModelOutput(text=None, error=f"cannot read image: {exc}")

        async def send(ep: Endpoint) -> dict[str, Any]:
            data = json_of(await ep.client.request("POST", "/api/chat", json_body=body))
            message = data.get("message") if isinstance(data, dict) else None
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise Failure.bad_answer("the server replied 200 without a message: not a chat answer")
            return data

        try:
            data, retries = await self.transport.call(send, tag=request.tag)
        except GaveUp as exc:
            return ModelOutput(
                text=None, error=str(exc), retries=exc.attempts - 1, latency=time.perf_counter() - start
            )
        counts = {k: v if isinstance(v, int) and not isinstance(v, bool) else None for k, v in data.items()}
        return ModelOutput(
            text=data["message"]["content"],
            input_tokens=counts.get("prompt_eval_count"),
            output_tokens=counts.get("eval_count"),
            finish_reason=data.get("done_reason"),
            retries=retries,
            latency=time.perf_counter() - start,
        )

    def config(self) -> dict[str, Any]:
        return {
            "backend": "ollama",
            "model": self.model_id,
            "base_url": self.base_urls,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
        }

    def endpoint_stats(self) -> list[dict[str, Any]]:
        return self.transport.stats()

    async def aclose(self) -> None:
        await self.transport.aclose()
