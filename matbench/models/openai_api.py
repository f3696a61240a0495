"""OpenAI adapter: OpenAI itself or ANY OpenAI-compatible server (``vllm serve``, SGLang, Ollama,
LM Studio) via ``base_url``. Two API shapes: Chat Completions (the default) and the Responses API (reasoning
models, as the model table says, so that reasoning carries across tool calls; ``api=`` forces either).

Retries, Retry-After, the adaptive rate limit, the endpoint pool and the deadline per request are the shared
transport's (``matbench/net/``); the SDK only sends (``max_retries=0``, no redirects followed: the key never
leaves its origin). A 200 that is not a completion (not JSON, HTML, fields missing) is a failure of the
replica, not an answer. The API key is read from the environment, never logged, never in config().

Speed: the aiohttp transport (``openai[aiohttp]``) when installed, and ``client.post`` to
``/chat/completions`` with a ready JSON body (the SDK's raw-request path) rather than
``chat.completions.create``, whose per-call parameter transform is pure overhead for this body; the body
goes as bytes with each image's data URL serialised once per image (``models/body.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import ChatRequest, Model, ModelOutput, split_config
from matbench.models.body import encode_json_body
from matbench.models.capabilities import API_SHAPES, info, table, unknown_model_note
from matbench.models.endpoints import ServedModel, check_served_model, served_models
from matbench.models.images import image_data_url
from matbench.models.openai_chat_tools import chat_messages, chat_tool_calls, chat_tools, usage_details
from matbench.models.openai_responses import build_responses_body, parse_response
from matbench.net.failure import Failure, GaveUp
from matbench.net.http import excerpt
from matbench.net.http import refused as _refused
from matbench.net.limiter import AdaptiveLimiter
from matbench.net.origin import origin_text, scrub
from matbench.net.pool import Endpoint, EndpointPool
from matbench.net.retry import RetryPolicy, parse_retry_after
from matbench.net.transport import Transport

__all__ = ["AdaptiveLimiter", "OpenAIModel", "parse_retry_after", "sent_fields"]

log = logging.getLogger("matbench.models.openai")

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DUMMY_API_KEY = "EMPTY"  # what vLLM/SGLang servers started without --api-key accept


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
    native_tool_calls = True
    backend = "openai"

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
        retry = RetryPolicy(
            max_attempts=self.max_retries + 1,
            base_delay=self.retry_base_delay,
            max_delay=self.retry_max_delay,
            max_retry_after=max(self.retry_max_delay, 60.0),
        )
        self.transport = Transport(
            self.base_urls or [self._effective_base_url()],
            what=self.name,
            retry=retry,
            timeout=self.timeout,
            max_concurrency=self.max_concurrency,
            client_factory=self._new_client,
            probe=self._serves_model,
            secrets=(key,) if key != DUMMY_API_KEY else (),
        )
        self.transport_in_use: str | None = None
        self.served: ServedModel | None = None  # what GET /models reported, after preflight()

    def __repr__(self) -> str:  # never the key
        return f"OpenAIModel({self.model_id!r}, base_url={self.base_urls or self._effective_base_url()!r})"

    @property
    def pool(self) -> EndpointPool:
        return self.transport.pool

    # -- plumbing -------------------------------------------------------------------------------------

    def _effective_base_url(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def _new_client(self, base_url: str) -> Any:
        """The SDK client of one endpoint, made on the loop that uses it (aiohttp sessions are loop-bound)."""
        import openai

        http_client = None
        # the SDK follows redirects, and its redirect carries custom headers along: ours follow none
        if self.http_transport in ("auto", "aiohttp"):
            try:
                http_client = openai.DefaultAioHttpClient(timeout=self.timeout, follow_redirects=False)
                self.transport_in_use = "aiohttp"
            except (RuntimeError, ImportError, AttributeError) as exc:
                if self.http_transport == "aiohttp":
                    raise ConfigError("http_transport=aiohttp needs `pip install 'openai[aiohttp]'`") from exc
                log.debug("aiohttp transport unavailable (%s); using the default one", exc)
        if http_client is None:
            http_client = openai.DefaultAsyncHttpxClient(timeout=self.timeout, follow_redirects=False)
            self.transport_in_use = "httpx"
        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=base_url,
            max_retries=0,
            timeout=self.timeout,
            http_client=http_client,
        )

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._api_key,) if self._api_key != DUMMY_API_KEY else ())

    # -- API ------------------------------------------------------------------------------------------

    def preflight(self) -> None:
        """``GET /models`` once per endpoint: it answers, accepts the key and serves this model name (with
        several endpoints, the same model on each; net/pool.py)."""
        self.served = self.pool.preflight(
            lambda url: check_served_model(
                url, self.model_id, self._api_key, key_hint=self.api_key_env, timeout=min(self.timeout, 30.0)
            )
        )

    def _serves_model(self, url: str) -> bool:
        """The pool's health check: the endpoint still serves the model the run started with."""
        for m in served_models(url, self._api_key, key_hint=self.api_key_env, timeout=5.0, attempts=1):
            if m.id == self.model_id:
                return self.served is None or m.identity() == self.served.identity()
        return False

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        if len(requests) == 1:
            return [await self._generate_one(requests[0])]
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: ChatRequest) -> ModelOutput:
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

        async def send(ep: Endpoint) -> Any:
            data = _answer(await self._post(ep, "/responses" if responses else "/chat/completions", content))
            if responses:
                if not isinstance(data.get("output"), list):
                    raise Failure.bad_answer("the API replied 200 without an 'output' list: not a response")
            else:
                _completion(data)
            return data

        try:
            data, retries = await self.transport.call(send, tag=request.tag)
        except GaveUp as exc:
            error = self._scrub(str(exc))
            log.warning("%s %s: %s", self.name, request.tag or "-", error)
            return ModelOutput(
                text=None, error=error, latency=time.perf_counter() - start, retries=exc.attempts - 1
            )
        if responses:
            return parse_response(data, time.perf_counter() - start, retries)
        return _to_output(data, time.perf_counter() - start, retries)

    async def _post(self, ep: Endpoint, path: str, content: bytes) -> Any:
        """One POST through the SDK's raw-request path (its auth and error mapping, minus the per-call
        TypedDict transform of the params, ~20% of the client CPU per call), the reply as plain JSON."""
        import openai

        try:
            return await ep.client.post(path, content=content, cast_to=object)
        except openai.APIStatusError as exc:
            status = exc.status_code
            if 300 <= status < 400:
                where = exc.response.headers.get("location") or "?"
                raise Failure(
                    f"HTTP {status} redirect to {origin_text(where)} not followed: the API key is sent only to "
                    f"{origin_text(ep.url)} (point --base-url at the server that answers)",
                    status=status,
                ) from None
            raise Failure.of_status(
                status, f"HTTP {status}: {_describe(exc)}", parse_retry_after(exc.response.headers)
            ) from None
        except openai.APITimeoutError as exc:
            raise Failure(
                _timeout_or_connection(exc, self.timeout), retryable=True, fault=True, refused=_refused(exc)
            ) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc.__context__
            error = f"connection error: {exc}" + (f" ({cause!r})" if cause else "")
            raise Failure(error, retryable=True, fault=True, refused=_refused(exc)) from None
        except openai.OpenAIError as exc:
            raise Failure(f"{type(exc).__name__}: {exc}") from None

    def decoding_defaults(self) -> dict[str, Any]:
        """Greedy for API models, so that reruns are reproducible and hit the response cache; reasoning
        models take no temperature and stay sampled (and uncached)."""
        return {} if self.reasoning else {"temperature": 0.0}

    def decoding_record(self, request: ChatRequest) -> dict[str, Any]:
        return {"sent": sent_fields(self.config(), request)}

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

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: calls answered, failures, calls moved elsewhere, drained or not, calls/s."""
        return self.transport.stats()

    async def aclose(self) -> None:
        await self.transport.aclose()


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


def _answer(data: Any) -> Any:
    """``data`` when it is an API answer; a ``Failure`` of the replica when a 200 carries something else."""
    if isinstance(data, dict):
        return data
    if isinstance(data, str | bytes):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        what = (
            "HTML"
            if text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
            else "text that is not JSON"
        )
        raise Failure.bad_answer(f"the API replied 200 with {what}, not a completion: {excerpt(text, 80)!r}")
    raise Failure.bad_answer(f"the API replied 200 with a JSON {type(data).__name__}, not a completion")


def _completion(data: dict) -> tuple[dict, dict]:
    """The first choice and its message of a Chat Completions object; a ``Failure`` when it has none."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise Failure.bad_answer("the API replied 200 without a 'choices' list: not a completion")
    if not choices:
        raise Failure("the API replied 200 with no choices", status=200, retryable=True)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise Failure.bad_answer("the API replied 200 with no message in its first choice")
    if message.get("content") is None and not message.get("refusal") and not message.get("tool_calls"):
        raise Failure(
            f"the API replied 200 with content null (finish_reason {choice.get('finish_reason')})",
            status=200,
            retryable=True,
        )
    return choice, message


def _to_output(data: dict, latency: float, retries: int) -> ModelOutput:
    choice, message = _completion(data)
    text = message.get("content")
    if text is None:
        text = message.get("refusal") or ""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    cached, reasoning = usage_details(usage)
    return ModelOutput(
        text=str(text),
        input_tokens=_int((usage or {}).get("prompt_tokens")),
        output_tokens=_int((usage or {}).get("completion_tokens")),
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
        latency=latency,
        finish_reason=choice.get("finish_reason"),
        retries=retries,
        tool_calls=chat_tool_calls(message),
    )


def _int(value: Any) -> int | None:
    """A token count as the server wrote it (an int), else None (not reported); cost.py judges its value."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
