"""The model interface the agent runtime codes against: one user message in, one text out.

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
class ChatRequest:
    """ONE user message: optional image(s) first, then the text (the authors' protocol sends no assistant turns)."""

    text: str
    images: list[Path] = field(default_factory=list)
    max_new_tokens: int = 1024
    temperature: float | None = None  # None = the backend's / checkpoint's default
    top_p: float | None = None
    seed: int | None = None
    tag: str = ""  # e.g. "mat-coding/12#2" for log lines


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelOutput:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class Model(ABC):
    """A backend. Subclasses set ``name``, ``lockstep`` and ``max_concurrency``."""

    name: str  # e.g. "openai:gpt-4o"
    lockstep: (
        bool  # True: one generate() per round over all live episodes; False: single requests concurrently
    )
    max_concurrency: int

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
