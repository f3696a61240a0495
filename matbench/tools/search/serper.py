"""Serper's Google search API: what the MAT paper's authors used for MAT-Search and the multi-hop sets.

``POST {base}/search`` with header ``X-API-KEY`` and body ``{"q": query, "num": k}``; the reply's
``organic`` list (``{title, link, snippet, position}``) gives the hits, the snippet is what the model sees.
The key lives only in the request header: it is not part of ``params()`` (hence of cache keys), not logged,
and scrubbed from error messages.
"""

from __future__ import annotations

import os
from typing import Any

from matbench.errors import ConfigError
from matbench.tools.search.base import (
    RetryPolicy,
    SearchBackend,
    SearchError,
    SearchHit,
    SearchService,
    check_k,
)

DEFAULT_BASE_URL = "https://google.serper.dev"


class SerperSearch(SearchBackend):
    """Google results through serper.dev; needs ``SERPER_API_KEY`` (unless ``offline``: cache replay only)."""

    name = "serper"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        gl: str | None = None,
        hl: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        offline: bool = False,
        all_results: bool = False,
    ):
        key = api_key if api_key is not None else os.environ.get("SERPER_API_KEY", "")
        key = key.strip()
        if not key and not offline:
            raise ConfigError(
                "SERPER_API_KEY is not set: export your serper.dev API key, "
                "or use --search local:INDEX_DIR (BM25 over a corpus indexed with `matbench index build`, "
                "no key needed) or --search retriever:URL"
            )
        self._key = key
        base = base_url or os.environ.get("SERPER_BASE_URL") or DEFAULT_BASE_URL
        self.endpoint = base.rstrip("/") + "/search"
        self.gl = gl
        self.hl = hl
        # The authors' script used every organic result Serper returned for num=k (`--compat strict`).
        self.all_results = all_results
        self._http = SearchService(
            self.endpoint,
            what="serper search",
            timeout=timeout,
            retry=retry,
            secret_headers={"X-API-KEY": key} if key else {},  # sent to this endpoint's origin only
            auth_hint="check SERPER_API_KEY",
        )

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> SerperSearch:
        if arg:
            raise ConfigError(
                f"--search serper takes no argument (got 'serper:{arg}'); set SERPER_BASE_URL instead"
            )
        return cls(**options)

    def __repr__(self) -> str:  # never show the key
        return f"SerperSearch(endpoint={self.endpoint!r}, gl={self.gl!r}, hl={self.hl!r})"

    def params(self) -> dict[str, Any]:
        params = {"endpoint": self.endpoint, "gl": self.gl, "hl": self.hl}
        if self.all_results:  # a different answer for the same query: a different cache key
            params["all_results"] = True
        return params

    def search(self, query: str, k: int) -> list[SearchHit]:
        check_k(k)
        if not self._key:  # offline=True: a replay from the cache needs no key, a live search does
            raise SearchError("serper search: SERPER_API_KEY is not set (offline, cache replay only)")
        body: dict[str, Any] = {"q": query, "num": k}
        if self.gl:
            body["gl"] = self.gl
        if self.hl:
            body["hl"] = self.hl
        reply = self._http.post(body)
        if not isinstance(reply, dict):
            raise SearchError(
                f"serper search: unexpected reply (a JSON {type(reply).__name__}, not an object)"
            )
        organic = reply.get("organic") or []
        if not isinstance(organic, list):
            raise SearchError("serper search: unexpected reply ('organic' is not a list)")
        items = [it for it in organic if isinstance(it, dict)]
        return [
            SearchHit(
                title=str(it.get("title") or ""),
                url=str(it.get("link") or ""),
                snippet=str(it.get("snippet") or ""),
            )
            for it in (items if self.all_results else items[:k])
        ]

    def close(self) -> None:
        self._http.close()
