"""The search interface every backend implements, its error type, and the shared HTTP retry loop.

Episodes only ever see ``SearchBackend.search(query, k) -> list[SearchHit]``; which engine answers is a
spec string (``serper``, ``local:DIR``, ``retriever:URL``) resolved by ``registry.get_search_backend``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchHit:
    """One result as the model sees it: the snippet is the text; title and url are for logs and reports."""

    title: str
    url: str
    snippet: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchHit:
        return cls(
            title=str(d.get("title", "")), url=str(d.get("url", "")), snippet=str(d.get("snippet", ""))
        )


class SearchError(Exception):
    """A search that could not be answered (after retries); the agent runtime shows it to the model."""

    def __init__(
        self, message: str, *, status: int | None = None, attempts: int = 1, retryable: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.retryable = retryable


class SearchCacheMiss(SearchError):
    """Replay mode (``--search-cache read``) met a query that the cache does not hold."""


def format_search_error(exc: BaseException) -> str:
    """The one-line text the model sees in place of results when a search fails."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return f"Search failed: {msg}"


class SearchBackend(ABC):
    """A search engine. Subclasses must be safe to call from many threads at once."""

    #: registry name, e.g. "serper"; also the first part of cache keys
    name: str = ""
    #: True for a backend that answers from local files, the same way every time (BM25 over a local index):
    #: the default search cache mode ("auto") leaves it uncached
    local_deterministic: bool = False

    @abstractmethod
    def search(self, query: str, k: int) -> list[SearchHit]:
        """Top-``k`` hits for ``query`` (fewer if the engine has fewer); raises SearchError."""

    def search_batch(self, queries: list[str], k: int) -> list[list[SearchHit]]:
        """Several queries at once; backends with a real batch endpoint override this."""
        return [self.search(q, k) for q in queries]

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """What identifies this backend's results (endpoint, index fingerprint...), never secrets."""

    def setting(self) -> dict[str, Any]:
        """The search setting a run records (config ``search.setting``) and the leaderboard ranks by: runs
        with different settings are never ranked in one list. Never secrets."""
        return {"backend": self.name, **self.params()}

    def describe(self) -> str:
        """A short human label for logs and run summaries."""
        p = ", ".join(f"{k}={v}" for k, v in sorted(self.params().items()))
        return f"{self.name}({p})"

    def close(self) -> None:  # noqa: B027 - an optional hook: most backends hold nothing to release
        """Release sockets/files; the default has nothing to release."""

    def __enter__(self) -> SearchBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_cache_dir() -> Path:
    """``$MATBENCH_CACHE_DIR`` or ``~/.cache/matbench``: the search cache and on-the-fly indexes live here."""
    env = os.environ.get("MATBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "matbench"


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return k


def split_contents(contents: str, title: str | None = None) -> tuple[str, str]:
    """FlashRAG/Search-R1 ``contents`` is ``"Title"\\ntext``: return (title without quotes, text)."""
    head, sep, rest = contents.partition("\n")
    if not sep:
        return (title or "", contents.strip())
    head = head.strip()
    if len(head) >= 2 and head[0] == head[-1] == '"':
        head = head[1:-1]
    return (title if title else head, rest.strip())


# --------------------------------------------------------------------------------------------------
# HTTP with retries (shared by the serper and retriever backends)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for timeouts, network errors, 429 and 5xx; other 4xx are never retried."""

    max_attempts: int = 4
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    #: a server's Retry-After is honoured up to this many seconds
    max_retry_after: float = 60.0
    jitter: float = 0.1

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        d = min(self.base_delay * self.multiplier ** (attempt - 1), self.max_delay)
        return d * (1.0 + self.jitter * random.random())


RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date; decimals are accepted too."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


@dataclass
class HttpJsonClient:
    """A thread-safe JSON-over-HTTP POST with retries; one pooled connection set per backend."""

    what: str
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: extra hint appended to 401/403 errors (e.g. which environment variable holds the key)
    auth_hint: str = ""
    sleep: Callable[[float], None] = time.sleep
    #: strings (API keys) scrubbed from every error message, in case a server echoes them back
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        import httpx2  # lazy: keeps `matbench --help` fast

        self._httpx = httpx2
        self._client = httpx2.Client(timeout=httpx2.Timeout(self.timeout), follow_redirects=True)
        self._lock = threading.Lock()
        self._closed = False

    def post(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Any:
        """POST ``body`` as JSON and return the decoded JSON reply; raises SearchError after retries."""
        httpx = self._httpx
        last = "no attempt made"
        last_status: int | None = None
        attempts = max(1, self.retry.max_attempts)
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                resp = self._client.post(url, json=dict(body), headers=dict(headers or {}))
            except httpx.TimeoutException:
                last, last_status = f"timed out after {self.timeout:g}s", None
            except httpx.TransportError as exc:
                last, last_status = f"network error ({type(exc).__name__}: {self._redact(str(exc))})", None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    try:
                        return resp.json()
                    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
                        raise SearchError(
                            f"{self.what}: reply is not JSON ({exc}): {self._redact(_excerpt(resp.text))}",
                            status=status,
                            attempts=attempt,
                        ) from None
                last_status = status
                last = f"HTTP {status} {resp.reason_phrase}".rstrip() + self._redact(_body_suffix(resp.text))
                if status not in RETRYABLE_STATUS:
                    hint = f" ({self.auth_hint})" if status in (401, 403) and self.auth_hint else ""
                    raise SearchError(f"{self.what}: {last}{hint}", status=status, attempts=attempt)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if attempt < attempts:
                wait = self.retry.delay(attempt, retry_after)
                logger.info("%s: %s; retry %d/%d in %.2fs", self.what, last, attempt, attempts - 1, wait)
                self.sleep(wait)
        raise SearchError(
            f"{self.what} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {last}",
            status=last_status,
            attempts=attempts,
            retryable=True,
        )

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()


def _excerpt(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _body_suffix(text: str) -> str:
    ex = _excerpt(text)
    return f": {ex}" if ex else ""


def setting_label(setting: dict[str, Any] | None) -> str:
    """A search setting in words: ``serper``, ``local index NAME (N passages, corpus sha256 PREFIX)``,
    ``retriever URL``; other backends by name and parameters."""
    if not setting:
        return "-"
    backend = str(setting.get("backend") or "?")
    if backend == "local" and "passages" in setting:
        sha = str(setting.get("corpus_sha256") or "?")[:12]
        return f"local index {setting.get('name', '?')} ({setting.get('passages', '?')} passages, corpus sha256 {sha})"
    if backend == "retriever":
        return f"retriever {setting.get('url', '?')}"
    if backend == "serper":
        return "serper" + (" (all results)" if setting.get("all_results") else "")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(setting.items()) if k != "backend")
    return f"{backend} ({rest})" if rest else backend
