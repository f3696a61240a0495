"""The search interface every backend implements, its error type, and its HTTP calls (over matbench.net).

Episodes only ever see ``SearchBackend.search(query, k) -> list[SearchHit]``; which engine answers is a
spec string (``serper``, ``local:DIR``, ``retriever:URL``) resolved by ``registry.get_search_backend``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matbench.net.failure import GaveUp
from matbench.net.retry import RetryPolicy
from matbench.net.service import JsonService

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
    from matbench.caches.location import default_cache_dir as location

    return location()


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
# HTTP (shared by the serper and retriever backends): the shared transport, its failures as SearchError

#: search's default retries: 4 attempts, backoff from 1 s up to 30 s, Retry-After honoured up to 60 s
SEARCH_RETRY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=30.0, max_retry_after=60.0)


class SearchService:
    """One search endpoint over ``matbench.net`` (thread-safe): JSON POSTs with a deadline per request and
    retries; a key in ``secret_headers`` goes to the endpoint's origin only and never into a message."""

    def __init__(
        self,
        url: str,
        *,
        what: str,
        timeout: float,
        retry: RetryPolicy | None = None,
        secret_headers: Mapping[str, str] | None = None,
        auth_hint: str = "",
    ) -> None:
        self.what = what
        self.auth_hint = auth_hint
        self._service = JsonService(
            url, what=what, timeout=timeout, retry=retry or SEARCH_RETRY, secret_headers=secret_headers
        )

    def __repr__(self) -> str:
        return f"SearchService({self.what!r}, {self._service.url!r})"

    def post(self, body: Mapping[str, Any]) -> Any:
        """The decoded JSON reply; raises SearchError once the transport gave up."""
        try:
            return self._service.request("POST", dict(body))
        except GaveUp as exc:
            last = exc.last.error
            if not exc.retryable:
                hint = f" ({self.auth_hint})" if exc.status in (401, 403) and self.auth_hint else ""
                raise SearchError(
                    f"{self.what}: {last}{hint}", status=exc.status, attempts=exc.attempts
                ) from None
            n = exc.attempts
            raise SearchError(
                f"{self.what} failed after {n} attempt{'s' if n > 1 else ''}: {last}",
                status=exc.status,
                attempts=n,
                retryable=True,
            ) from None

    def close(self) -> None:
        self._service.close()


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
    if backend == "serper":  # another endpoint, region or language is another setting
        extra = [f"{k}={setting[k]}" for k in ("gl", "hl") if setting.get(k)]
        endpoint = str(setting.get("endpoint") or "")
        if endpoint and not endpoint.startswith("https://google.serper.dev/"):
            extra.append(endpoint)
        if setting.get("all_results"):
            extra.append("all results")
        return "serper" + (f" ({', '.join(extra)})" if extra else "")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(setting.items()) if k != "backend")
    return f"{backend} ({rest})" if rest else backend
