"""`matbench search "QUERY"`: run one search exactly as an episode would (backend + cache) and print it.

Useful to check a key, an index or a retrieval server before a long run, and to inspect what a cached
run replayed.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run one search the way an episode would",
        description=(
            "Run one search through a backend and the search cache, the way a MAT-Search episode does. "
            "Backends: serper (Google via serper.dev, needs SERPER_API_KEY), local[:DIR|:CORPUS.jsonl] "
            "(BM25, no key), retriever[:URL] (a Search-R1/FlashRAG retrieval server)."
        ),
    )
    p.add_argument("query", help="the query text, exactly as the model would write it")
    p.add_argument(
        "--search", default="serper", metavar="NAME[:ARG]", help="search backend (default: serper)"
    )
    p.add_argument("--k", type=int, default=5, help="number of results (default: 5)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {title, url, snippet} on stdout")
    p.add_argument(
        "--search-cache",
        choices=["auto", "readwrite", "read", "off"],
        default="auto",
        help="readwrite: use and fill the cache; read: replay only; off: bypass it; "
        "auto (default): readwrite, but off for a local BM25 index",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.errors import ConfigError
    from matbench.tools.search import CachedSearch, SearchError, format_search_error, get_search_backend

    if args.k < 1:
        raise ConfigError(f"--k must be positive, got {args.k}")
    # replay needs no API key; a corpus given as local:CORPUS.jsonl is indexed once, with a progress bar
    backend = get_search_backend(args.search, offline=args.search_cache == "read", show_progress=True)
    cached = CachedSearch(backend, mode=args.search_cache)
    try:
        hits = cached.search(args.query, args.k)
    except SearchError as exc:
        print(f"matbench: {format_search_error(exc)}", file=sys.stderr)
        return 1
    finally:
        stats = cached.stats()
        cached.close()
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
    else:
        if not hits:
            print("(no results)")
        for i, h in enumerate(hits, 1):
            print(f"{i}. {h.title}" + (f"  <{h.url}>" if h.url else ""))
            print(f"   {h.snippet}")
    source = "cache" if stats["hits"] else ("live" if cached.mode == "off" else "live, stored")
    print(f"[{backend.describe()}; {len(hits)} result(s) from {source}]", file=sys.stderr)
    return 0
