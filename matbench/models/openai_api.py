"""OpenAI adapter: OpenAI itself or ANY OpenAI-compatible server (``vllm serve``, SGLang, Ollama,
LM Studio) via ``base_url``. Two API shapes: Chat Completions (the default) and the Responses API (reasoning
models, as the model table says, so that reasoning carries across tool calls; ``api=`` forces either).

The retry policy is ours, not the client's (``max_retries=0``): exponential backoff with jitter on
429/5xx/timeouts/connection errors, honouring Retry-After, and an adaptive concurrency limit that
halves on 429 and slowly recovers, so a rate-limited run slows down instead of hammering the API.
Other 4xx fail at once. The API key is read from the environment, never logged, never in config().

Speed: the aiohttp transport (``openai[aiohttp]``) when installed, and ``client.post`` to
``/chat/completions`` with a ready JSON body (the SDK's raw-request path) rather than
``chat.completions.create``, whose per-call parameter transform is pure overhead for this body; the body
goes as bytes with each image's data URL serialised once per image (``models/body.py``).
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import logging
import os
import random
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import ChatRequest, Model, ModelOutput, split_config
from matbench.models.body import encode_json_body
from matbench.models.capabilities import API_SHAPES, info, table, unknown_model_note
from matbench.models.endpoints import ServedModel, check_served_model, served_models
from matbench.models.images import image_data_url
from matbench.models.openai_chat_tools import chat_messages, chat_tool_calls, chat_tools, usage_details
from matbench.models.openai_responses import build_responses_body, parse_response
from matbench.models.pool import EndpointPool

log = logging.getLogger("matbench.models.openai")

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DUMMY_API_KEY = "EMPTY"  # what vLLM/SGLang servers started without --api-key accept


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def build_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """One user message: each image as a data-URL ``image_url`` part first, then the text.
    Text-only requests send a plain string, which every compatible server accepts.
    A native-tool-protocol request (``request.messages``) sends its whole conversation."""
    if request.messages is not None:
        return chat_messages(request.messages)
    if not request.images:
        return [{"role": "user", "content": request.text}]
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(p)}} for p in request.images
    ]
    content.append({"type": "text", "text": request.text})
    return [{"role": "user", "content": content}]


def build_body(
    model_id: str,
    request: ChatRequest,
    *,
    reasoning: bool,
    reasoning_effort: str | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions``: messages, model, token limit, decoding."""
    params: dict[str, Any] = {"messages": build_messages(request), "model": model_id}
    if request.tools:
        params["tools"] = chat_tools(request.tools)
    if reasoning:
        params["max_completion_tokens"] = request.max_new_tokens
        if reasoning_effort:
            params["reasoning_effort"] = reasoning_effort
    else:
        params["max_tokens"] = request.max_new_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.top_p is not None:
            params["top_p"] = request.top_p
    if request.seed is not None:
        params["seed"] = request.seed
    if extra_body:  # backend-specific fields (e.g. vLLM's top_k, repetition_penalty) go at the top level
        params.update(extra_body)
    return params


def sent_fields(config: dict[str, Any], request: ChatRequest) -> dict[str, Any]:
    """The body fields an OpenAI-compatible endpoint is sent for ``request``, besides the messages (what is
    not sent is the server's default, e.g. the checkpoint's generation config)."""
    body = build_body(
        str(config.get("model")),
        request,
        reasoning=bool(config.get("reasoning_model")),
        reasoning_effort=config.get("reasoning_effort"),
        extra_body=config.get("extra_body"),
    )
    return {k: v for k, v in body.items() if k not in ("messages", "model")}


class AdaptiveLimiter:
    """A semaphore whose size halves on 429 and grows back by ~1 per window of successes, plus a
    shared cool-down: after a 429 with Retry-After nobody sends until that moment."""

    def __init__(self, max_limit: int) -> None:
        self.max_limit = max(1, int(max_limit))
        self.limit = float(self.max_limit)
        self.in_flight = 0
        self.cooldown_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self.release()  # the slot was handed over just as we were cancelled
                else:
                    self._waiters.remove(fut)
                raise
        while True:  # holding a slot, wait out a shared cool-down (set by another request's 429)
            wait = self.cooldown_until - time.monotonic()
            if wait <= 0:
                return
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                self.release()
                raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        if self.limit < self.max_limit:
            self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limit(self, cooldown: float) -> None:
        self.limit = max(1.0, self.limit / 2.0)
        self.cooldown_until = max(self.cooldown_until, time.monotonic() + cooldown)


class OpenAIModel(Model):
    """``openai.AsyncOpenAI`` chat completions with our own retries and adaptive concurrency."""

    OPTIONS = frozenset(
        {
            "base_url",
            "api_key_env",
            "max_concurrency",
            "timeout",
            "max_retries",
            "retry_base_delay",
            "retry_max_delay",
            "extra_body",
            "reasoning_effort",
            "http_transport",
            "api",
        }
    )
    lockstep = False
    backend = "openai"
    native_tool_calls = True

    def __init__(
        self,
        model_id: str,
        *,
        display_name: str | None = None,
        requested_backend: str = "openai",
        provider: str | None = None,
        base_url: str | list[str] | None = None,
        api_key_env: str | None = None,
        max_concurrency: int = 32,
        timeout: float = 600.0,
        max_retries: int = 6,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        extra_body: dict[str, Any] | None = None,
        reasoning_effort: str | None = None,
        http_transport: str = "auto",
        api: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.display_name = display_name or model_id
        self.requested_backend = requested_backend
        self.name = f"openai:{model_id}"
        self.info = info(model_id)  # the model table's row (reasoning, API shape), else chat defaults
        hosted = table().providers.get(provider) if provider else None
        if hosted is not None and not base_url and hosted.name != "openai":  # e.g. Gemini's compatible API
            base_url = hosted.base_url
        if hosted is not None and not api_key_env and hosted.api_key_env != DEFAULT_API_KEY_ENV:
            api_key_env = hosted.api_key_env
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        self.base_urls = list(dict.fromkeys(u.rstrip("/") for u in urls if u))  # replicas of one model
        self.base_url = self.base_urls[0] if self.base_urls else None
        self.api_key_env = api_key_env or DEFAULT_API_KEY_ENV
        key = os.environ.get(self.api_key_env) or None
        if key is None:
            if not self.base_url or table().provider_of(self.base_url):  # a hosted API needs its key
                needs = self.api_key_env if api_key_env else f"{DEFAULT_API_KEY_ENV} (or --api-key-env NAME)"
                raise ConfigError(
                    f"{self.display_name} needs {needs}, or --base-url to an OpenAI-compatible server"
                )
            key = DUMMY_API_KEY
        self._api_key = key
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.retry_base_delay = float(retry_base_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.extra_body = dict(extra_body) if extra_body else None
        self.reasoning_effort = reasoning_effort
        if http_transport not in ("auto", "aiohttp", "httpx"):
            raise ConfigError(f"http_transport must be auto, aiohttp or httpx, not {http_transport!r}")
        self.http_transport = http_transport
        self.reasoning = self.info.reasoning
        if api is not None and api not in API_SHAPES:
            raise ConfigError(f"api must be one of {', '.join(API_SHAPES)}, not {api!r}")
        self.api = api or self.info.api
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.pool = EndpointPool.of(self.base_urls or [self._effective_base_url()], probe=self._serves_model)
        for ep in self.pool.endpoints:
            ep.limiter = AdaptiveLimiter(self.max_concurrency)
        self._limiter = self.pool.endpoints[0].limiter
        self.transport_in_use: str | None = None
        self.served: ServedModel | None = None  # what GET /models reported, after preflight()

    # -- plumbing -------------------------------------------------------------------------------------

    def _effective_base_url(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def _ensure_client(self) -> Any:
        """One client per endpoint and event loop: aiohttp sessions and our limiters' futures are loop-bound."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is loop:
            return self._client
        for ep in self.pool.endpoints:
            ep.client = self._new_client(ep.url)
            ep.limiter = AdaptiveLimiter(self.max_concurrency)
        self._client, self._limiter = self.pool.endpoints[0].client, self.pool.endpoints[0].limiter
        self._client_loop = loop
        self.pool.start_health_checks()
        return self._client

    def _new_client(self, base_url: str) -> Any:
        import openai

        http_client = None
        if self.http_transport in ("auto", "aiohttp"):
            try:
                http_client = openai.DefaultAioHttpClient(timeout=self.timeout)
                self.transport_in_use = "aiohttp"
            except (RuntimeError, ImportError, AttributeError) as exc:
                if self.http_transport == "aiohttp":
                    raise ConfigError("http_transport=aiohttp needs `pip install 'openai[aiohttp]'`") from exc
                log.debug("aiohttp transport unavailable (%s); using the default one", exc)
        if http_client is None:
            http_client = openai.DefaultAsyncHttpxClient(timeout=self.timeout)
            self.transport_in_use = "httpx"
        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=base_url,
            max_retries=0,
            timeout=self.timeout,
            http_client=http_client,
        )

    def _scrub(self, text: str) -> str:
        if self._api_key and self._api_key != DUMMY_API_KEY and len(self._api_key) >= 4:
            text = text.replace(self._api_key, "***")
        return text

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = min(self.retry_max_delay, self.retry_base_delay * (2**attempt))
        delay = base * (0.5 + random.random() / 2)  # "equal jitter": spread retries, keep a floor
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    # -- API ------------------------------------------------------------------------------------------

    def preflight(self) -> None:
        """``GET /models`` once per endpoint: it answers, accepts the key and serves this model name (with
        several endpoints, the same model on each; models/pool.py)."""
        self.served = self.pool.preflight(
            lambda url: check_served_model(url, self.model_id, self._api_key, key_hint=self.api_key_env)
        )

    def _serves_model(self, url: str) -> bool:
        """The pool's health check: the endpoint still serves the model the run started with."""
        for m in served_models(url, self._api_key, key_hint=self.api_key_env, timeout=5.0, attempts=1):
            if m.id == self.model_id:
                return self.served is None or m.identity() == self.served.identity()
        return False

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        client = self._ensure_client()
        if len(requests) == 1:
            return [await self._generate_one(client, requests[0])]
        return list(await asyncio.gather(*(self._generate_one(client, r) for r in requests)))

    async def _generate_one(self, client: Any, request: ChatRequest) -> ModelOutput:
        import openai
        from openai.types.chat import ChatCompletion

        start = time.perf_counter()
        responses = self.api == "responses"
        try:
            body = await asyncio.to_thread(  # reads and may re-encode images: never on the event loop
                build_responses_body if responses else build_body,
                self.model_id,
                request,
                reasoning=self.reasoning,
                reasoning_effort=self.reasoning_effort,
                extra_body=self.extra_body,
            )
            content = encode_json_body(body)  # once per call, images spliced in pre-serialised
        except (OSError, ValueError) as exc:
            return ModelOutput(
                text=None, error=f"cannot read image: {exc}", latency=time.perf_counter() - start
            )
        pool = self.pool
        attempt = moves = 0
        avoid = None
        while True:
            retry_after: float | None = None
            ep = pool.pick(avoid)
            if ep is None:  # every endpoint drained: wait for a health check to bring one back
                if attempt >= self.max_retries:
                    error = "no endpoint left: " + "; ".join(f"{e.url}: {e.reason}" for e in pool.endpoints)
                    log.warning("%s %s: %s", self.name, request.tag or "-", error)
                    return ModelOutput(
                        text=None, error=error, latency=time.perf_counter() - start, retries=attempt
                    )
                await pool.wait_for_one(self._backoff(attempt, None))
                attempt += 1
                continue
            limiter = ep.limiter
            pool.begin(ep)
            try:
                await limiter.acquire()
            except BaseException:
                pool.released(ep)
                raise
            fault = refused = False  # a failure of the endpoint, not of this request
            try:
                # client.post is the SDK's documented raw-request path: the same POST, auth, timeout and
                # error mapping as chat.completions.create, minus its per-call TypedDict transform of
                # the params (~20% of the client CPU per call), which is an identity for this body.
                if responses:  # plain JSON: output items go back verbatim as the next request's input
                    resp = await ep.client.post("/responses", content=content, cast_to=object)
                else:
                    resp = await ep.client.post("/chat/completions", content=content, cast_to=ChatCompletion)
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status in (408, 409, 429) or status >= 500
                fault = status >= 500
                error = f"HTTP {status}: {_describe(exc)}"
                retry_after = parse_retry_after(exc.response.headers)
                if status == 429:
                    limiter.on_rate_limit(
                        retry_after if retry_after is not None else self._backoff(attempt, None)
                    )
            except openai.APITimeoutError as exc:
                retryable, fault, error = True, True, _timeout_or_connection(exc, self.timeout)
                refused = _refused(exc)
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc.__context__
                retryable, fault = True, True
                error = f"connection error: {exc}" + (f" ({cause!r})" if cause else "")
                refused = _refused(exc)
            except openai.OpenAIError as exc:  # e.g. a response that does not parse
                retryable, error = False, f"{type(exc).__name__}: {exc}"
            except BaseException:
                pool.released(ep)
                raise
            else:
                limiter.on_success()
                pool.succeeded(ep)
                if responses:
                    return parse_response(resp, time.perf_counter() - start, attempt)
                empty = _no_answer(resp)
                if empty is None:
                    return _to_output(resp, time.perf_counter() - start, attempt)
                retryable, error = True, empty  # a 200 without an answer is an API failure, not ""
            finally:
                limiter.release()
            error = self._scrub(error)
            if fault:
                pool.failed(ep, error, fatal=refused)
            else:
                pool.released(ep)
            if fault and moves < 2 * len(pool) and pool.pick(avoid=ep) not in (None, ep):
                # the endpoint failed, not the request: send it to another endpoint at once
                ep.moved += 1
                moves += 1
                avoid = ep
                log.info(
                    "%s %s: %s on %s; moved to another endpoint", self.name, request.tag or "-", error, ep.url
                )
                continue
            if not retryable or attempt >= self.max_retries:
                if retryable:
                    error = f"{error} (gave up after {attempt + 1} attempts)"
                log.warning("%s %s: %s", self.name, request.tag or "-", error)
                return ModelOutput(
                    text=None, error=error, latency=time.perf_counter() - start, retries=attempt
                )
            delay = self._backoff(attempt, retry_after)
            attempt += 1
            log.info(
                "%s %s: %s; retry %d/%d in %.2f s",
                self.name,
                request.tag or "-",
                error,
                attempt,
                self.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def decoding_defaults(self) -> dict[str, Any]:
        """Greedy for API models, so that reruns are reproducible and hit the response cache; reasoning
        models take no temperature and stay sampled (and uncached)."""
        return {} if self.reasoning else {"temperature": 0.0}

    def decoding_record(self, request: ChatRequest) -> dict[str, Any]:
        return {"sent": sent_fields(self.config(), request)}

    def config(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model_id,
            "alias": self.display_name,
            "served_by": "vllm serve (OpenAI-compatible)" if self.requested_backend == "vllm" else None,
            "base_url": self.base_urls if len(self.base_urls) > 1 else self._effective_base_url(),
            "served_model": self.served.identity() if self.served is not None else None,
            "api_key_env": self.api_key_env,  # the variable's NAME only
            "reasoning_model": self.reasoning,
            "api": self.api,
            "token_param": (
                "max_output_tokens"
                if self.api == "responses"
                else ("max_completion_tokens" if self.reasoning else "max_tokens")
            ),
            "decoding": "per request (temperature/top_p/seed/max_new_tokens); unset = server default",
            "reasoning_effort": self.reasoning_effort,
            "extra_body": self.extra_body,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "retry_base_delay": self.retry_base_delay,
            "retry_max_delay": self.retry_max_delay,
            "http_transport": self.http_transport,
        }

    # -- what the rest of matbench asks a backend (models/base.py) ----------------------------------------

    def notice(self) -> str | None:
        return None if self.info.known else unknown_model_note(self.model_id)

    def identity(self) -> dict[str, Any] | None:
        """A hosted provider's model id names the model (its dated snapshots are other ids). A server of your
        own is its URL plus what ``GET /models`` reports for the checkpoint (vLLM's ``root`` and
        ``max_model_len``): two servers may hold different weights under one name. A server that reports no
        checkpoint (no ``root``) has no identity: its answers are never replayed, since a restart on the same
        port could serve another model under the same name."""
        semantic = split_config(self.config(), self.runtime_keys)[0]
        semantic = {k: v for k, v in semantic.items() if k not in ("alias", "served_by")}  # names, not answers
        hosted = table().provider_of(self._effective_base_url()) if len(self.base_urls) <= 1 else None
        if hosted is not None:
            return {**semantic, "provider": hosted.name}
        if self.served is None or not self.served.root:
            return None
        return {**semantic, "endpoint": sorted(self.base_urls) or [self._effective_base_url()]}

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: calls answered, failures, calls moved elsewhere, drained or not, calls/s."""
        return self.pool.stats()

    async def aclose(self) -> None:
        await self.pool.stop()
        self._client = None
        if self._client_loop is asyncio.get_running_loop():
            for ep in self.pool.endpoints:
                if ep.client is not None:
                    await ep.client.close()
        for ep in self.pool.endpoints:
            ep.client = None
        self._client_loop = None


def _timeout_or_connection(exc: BaseException, timeout: float) -> str:
    """The aiohttp transport reports a refused connection as a connect *timeout*; tell them apart
    by the root cause so the error says what happened."""
    root: BaseException = exc
    seen = 0
    while (root.__cause__ or root.__context__) is not None and seen < 10:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
        seen += 1
    if isinstance(root, OSError) and not isinstance(root, TimeoutError):
        return f"connection error: {root}"
    if type(root).__name__ == "ClientConnectorError":
        return f"connection error: {root}"
    return f"timeout after {timeout:g} s"


def _refused(exc: BaseException) -> bool:
    """Nothing listens at the endpoint (connection refused), by the root cause of a client error."""
    root: BaseException | None = exc
    for _ in range(10):
        if isinstance(root, ConnectionRefusedError) or getattr(root, "errno", None) == errno.ECONNREFUSED:
            return True
        if root is None or (root.__cause__ or root.__context__) is None:
            break
        root = root.__cause__ or root.__context__
    return False


def _describe(exc: Any) -> str:
    body = getattr(exc, "body", None)
    msg: Any = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        msg = msg or body
    if not msg:
        msg = getattr(exc, "message", None) or str(exc)
    text = str(msg)
    return text if len(text) <= 500 else text[:500] + "..."


def _no_answer(resp: Any) -> str | None:
    """Why a 200 reply carries no answer (``choices: []``, ``content: null``), or None when it does."""
    if not resp.choices:
        return "the API replied 200 with no choices"
    choice = resp.choices[0]
    message = choice.message
    if message is None:
        return "the API replied 200 with no message"
    if (
        message.content is None
        and not getattr(message, "refusal", None)
        and not getattr(message, "tool_calls", None)
    ):
        return f"the API replied 200 with content null (finish_reason {choice.finish_reason})"
    return None


def _to_output(resp: Any, latency: float, retries: int) -> ModelOutput:
    choice = resp.choices[0] if resp.choices else None
    text = ""
    finish = None
    if choice is not None:
        message = choice.message
        text = message.content if message.content is not None else (getattr(message, "refusal", None) or "")
        finish = choice.finish_reason
    usage = resp.usage
    cached, reasoning = usage_details(usage)
    return ModelOutput(
        text=text,
        input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
        output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
        latency=latency,
        finish_reason=finish,
        retries=retries,
        tool_calls=chat_tool_calls(choice.message) if choice is not None else [],
    )

