"""The model interface the agent runtime codes against: one user message in, one text out; or, for the native
tool-calling protocol, a conversation (``messages``) plus tool declarations in, text and tool calls out.

Backends differ in how they batch (``lockstep``) and how many calls may be in flight
(``max_concurrency``); everything else (retries, caching, image encoding) is hidden behind
``generate``, which never raises for a per-request API failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ToolSpec:
    """A function the model may call: ``parameters`` is its JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ToolCall:
    """One call the model asked for. ``arguments`` is the JSON text as the model wrote it (maybe malformed)."""

    id: str
    name: str
    arguments: str


@dataclass
class Message:
    """One message of a conversation (native tool protocol only).

    ``role`` is system, user, assistant or tool. An assistant message holds the model's text and tool calls
    and, in ``carry``, the provider's own output items (e.g. Responses API reasoning items) that must be sent
    back verbatim so that reasoning carries across tool calls; a tool message answers ``tool_call_id``.
    """

    role: str
    text: str | None = None
    images: list[Path] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    carry: list[dict[str, Any]] = field(default_factory=list)
    text_first: bool = False  # a user message's text before its images (a judge prompt written that way)


@dataclass
class ChatRequest:
    """ONE user message: optional image(s) first, then the text (the authors' protocol sends no assistant turns).

    The native tool protocol sets ``messages`` (then ``text``/``images`` are unused) and ``tools``.
    """

    text: str
    images: list[Path] = field(default_factory=list)
    max_new_tokens: int = 1024
    temperature: float | None = None  # None = the backend's / checkpoint's default
    top_p: float | None = None
    seed: int | None = None
    tag: str = ""  # e.g. "mat-coding/12#2" for log lines
    messages: list[Message] | None = None
    tools: list[ToolSpec] = field(default_factory=list)


@dataclass
class ModelOutput:
    """One generation. ``error`` is set (and ``text`` None) only after retries are exhausted."""

    text: str | None
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency: float = 0.0  # seconds for this call incl. retries
    cached: bool = False
    finish_reason: str | None = None
    retries: int = 0
    cached_input_tokens: int | None = None  # prompt tokens the provider served from its prompt cache
    reasoning_tokens: int | None = None  # part of output_tokens, where the API reports it
    tool_calls: list[ToolCall] = field(default_factory=list)
    carry: list[dict[str, Any]] = field(default_factory=list)  # provider items to send back (see Message)
    reasoning: str | None = None  # a reasoning summary, where the API returns one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelOutput:
        known = {f for f in cls.__dataclass_fields__}
        out = cls(**{k: v for k, v in data.items() if k in known})
        out.tool_calls = [c if isinstance(c, ToolCall) else ToolCall(**c) for c in out.tool_calls or []]
        out.carry = list(out.carry or [])
        return out


# The one list of config() fields that say how or where a model is reached, not what it answers: left out of
# a run's fingerprint (a resume may move to another port, change the concurrency) and out of the response
# cache's identity (``Model.identity``). Owned here (``Model.runtime_keys``, a backend may add to it) so that
# the run record and the cache cannot disagree.
RUNTIME_CONFIG_KEYS = frozenset(
    {
        "base_url",  # where the model is served (port, host, replicas) is not what it is
        "api_key_env",
        "max_concurrency",
        "timeout",
        "max_retries",
        "retry_base_delay",
        "retry_max_delay",
        "http_transport",
    }
)


def split_config(
    config: dict[str, Any], keys: frozenset[str] = RUNTIME_CONFIG_KEYS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what decides the answers, how the model is reached): config() cut along the runtime keys."""
    semantic = {k: v for k, v in config.items() if k not in keys}
    runtime = {k: v for k, v in config.items() if k in keys}
    return semantic, runtime


class Model(ABC):
    """A backend. Subclasses set ``name``, ``lockstep`` and ``max_concurrency``.

    Besides generating, a backend answers what the rest of matbench must not decide from its name: its
    decoding defaults (``decoding_defaults``), what its requests carry (``decoding_record``), whether it can
    make native tool calls, which config fields are runtime only (``runtime_keys``) and its ``identity``.
    """

    name: str  # e.g. "openai:gpt-4o"
    backend: str = ""  # the MODELS registry name, set when the registry loads the class
    lockstep: (
        bool  # True: one generate() per round over all live episodes; False: single requests concurrently
    )
    max_concurrency: int
    #: whether requests may carry tool declarations (``--protocol tools``); in-process engines have none
    native_tool_calls: bool = False
    #: config() fields that say where and how the model is reached, not what it answers: config.json keeps
    #: them under ``model_runtime``, outside the fingerprint, so a resume may move to another port or replica
    runtime_keys: frozenset[str] = RUNTIME_CONFIG_KEYS

    def decoding_defaults(self) -> dict[str, Any]:
        """Decoding values matbench sets when the command line leaves them unset (e.g. ``temperature``).
        Default: none, so the server's or checkpoint's own defaults apply."""
        return {}

    def decoding_record(self, request: ChatRequest) -> dict[str, Any]:
        """What config.json's ``decoding`` records of how ``request`` (a typical turn) reaches the model:
        ``sent`` (the request body's fields besides the messages, HTTP backends; else None) and, for
        in-process engines, ``effective`` (the sampling parameters the engine applies)."""
        return {"sent": None}

    def notice(self) -> str | None:
        """One line the run prints when it starts, e.g. that the model is not in the model table."""
        return None

    def identity(self) -> dict[str, Any] | None:
        """What makes two instances give the same answers to the same request: the response cache's key.

        None means the backend cannot tell (e.g. a server that reports no checkpoint): its answers are then
        never replayed from the cache. Default: config() without ``runtime_keys``.
        """
        return split_config(self.config(), self.runtime_keys)[0]

    @abstractmethod
    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        """One output per request, in order; per-request failures come back as ``ModelOutput(error=...)``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """What the run's config.json records: backend, model id, endpoint, decoding. Never secrets."""

    def preflight(self) -> None:  # noqa: B027 - in-process backends have nothing to ask
        """Check, before any sample runs, that the backend can serve this model (raise ``ConfigError``)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold something to release
        """Release clients, sessions and engines."""

    async def __aenter__(self) -> Model:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
