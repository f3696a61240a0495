"""Client for the retrieval-server contract of Search-R1 / FlashRAG (``retrieval_server.py``).

``POST {url}/retrieve`` with ``{"queries": [...], "topk": k, "return_scores": bool}``; the reply is
``{"result": [per query: [{"document": {id, contents}, "score": s}, ...]]}`` when scores are asked for,
and ``{"result": [per query: [{id, contents}, ...]]}`` otherwise. ``contents`` is ``"Title"\\ntext``.
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
    split_contents,
)


class RetrieverSearch(SearchBackend):
    """A Search-R1/FlashRAG retrieval server that the user already runs (dense e5, BM25...)."""

    name = "retriever"

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        return_scores: bool = True,
    ):
        url = url or os.environ.get("MATBENCH_RETRIEVER_URL", "")
        if not url:
            raise ConfigError(
                "no retrieval server given: use --search retriever:http://HOST:PORT "
                "or set MATBENCH_RETRIEVER_URL (a Search-R1/FlashRAG retrieval_server.py)"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"retrieval server URL must start with http:// or https://, got {url!r}")
        base = url.rstrip("/")
        if base.endswith("/retrieve"):
            base = base[: -len("/retrieve")]
        self.url = base
        self.endpoint = base + "/retrieve"
        self.return_scores = return_scores
        self._http = SearchService(self.endpoint, what="retrieval server", timeout=timeout, retry=retry)

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> RetrieverSearch:
        url = arg or options.pop("url", None)
        return cls(url, **options)

    def params(self) -> dict[str, Any]:
        return {"url": self.url}

    def search(self, query: str, k: int) -> list[SearchHit]:
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: list[str], k: int) -> list[list[SearchHit]]:
        check_k(k)
        if not queries:
            return []
        body = {"queries": list(queries), "topk": k, "return_scores": self.return_scores}
        reply = self._http.post(body)
        result = reply.get("result") if isinstance(reply, dict) else None
        if not isinstance(result, list) or len(result) != len(queries):
            got = f"{len(result)} result lists" if isinstance(result, list) else "no 'result' list"
            raise SearchError(f"retrieval server: unexpected reply for {len(queries)} queries ({got})")
        return [[self._hit(item) for item in per_query[:k]] for per_query in _lists(result)]

    @staticmethod
    def _hit(item: Any) -> SearchHit:
        doc = item.get("document", item) if isinstance(item, dict) else None
        if not isinstance(doc, dict):
            raise SearchError(f"retrieval server: unexpected result item {str(item)[:120]!r}")
        contents = doc.get("contents")
        if contents is None:  # some corpora carry title/text instead of contents
            contents = doc.get("text", "")
            title, text = (str(doc.get("title") or ""), str(contents))
        else:
            title, text = split_contents(str(contents), str(doc.get("title") or "") or None)
        doc_id = doc.get("id", "")
        return SearchHit(title=title, url=f"retriever://{doc_id}" if doc_id != "" else "", snippet=text)

    def close(self) -> None:
        self._http.close()


def _lists(result: list[Any]) -> list[list[Any]]:
    for per_query in result:
        if not isinstance(per_query, list):
            raise SearchError("retrieval server: unexpected reply (a result entry is not a list)")
    return result
