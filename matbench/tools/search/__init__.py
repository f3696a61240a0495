"""Search for MAT-Search and the multi-hop tasks: ``<search>query</search>`` -> top-k snippets.

Typical use by the agent runtime::

    backend = get_search_backend(args.search)             # "serper", "local:DIR", "retriever:URL"
    search = CachedSearch(backend, mode=args.search_cache)  # replayable, thread-safe
    try:
        hits = await asyncio.to_thread(search.search, query, 4)
    except SearchError as exc:
        text = format_search_error(exc)
    summary["search_cache"] = search.stats()

Importing this package is cheap: numpy, bm25s and httpx2 are imported only by the backends that use them.
"""

from matbench.tools.search.base import (
    RetryPolicy,
    SearchBackend,
    SearchCacheMiss,
    SearchError,
    SearchHit,
    default_cache_dir,
    format_search_error,
)
from matbench.tools.search.cache import CACHE_MODES, CachedSearch, default_cache_path
from matbench.tools.search.registry import available_backends, get_search_backend, parse_spec, register_search

__all__ = [
    "CACHE_MODES",
    "CachedSearch",
    "RetryPolicy",
    "SearchBackend",
    "SearchCacheMiss",
    "SearchError",
    "SearchHit",
    "available_backends",
    "default_cache_dir",
    "default_cache_path",
    "format_search_error",
    "get_search_backend",
    "parse_spec",
    "register_search",
]
