"""`matbench cache info|prune`: show the search and response caches, and trim them by age or size."""

from __future__ import annotations

import argparse
import time

from matbench.display import plural


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="show or trim the search and response caches",
        description="Show or trim the search cache (search.sqlite) and the response cache (responses.sqlite) "
        "in --cache-dir (default $MATBENCH_CACHE_DIR or ~/.cache/matbench).",
    )
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    i = csub.add_parser("info", help="files, sizes, rows, ages", description="Show each cache file.")
    i.add_argument("--cache-dir", help="the cache folder")
    i.set_defaults(func=run_info)
    r = csub.add_parser(
        "prune",
        help="delete old rows, or the oldest until a size fits",
        description="Delete rows older than D, then the oldest rows until each cache file is at most S.",
    )
    r.add_argument("--cache-dir", help="the cache folder")
    r.add_argument("--older-than", metavar="D", help="an age: 90s, 30m, 12h, 7d, 2w")
    r.add_argument("--max-size", metavar="S", help="a size per file: 500M, 2G (powers of 1024)")
    r.set_defaults(func=run_prune)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_info(args: argparse.Namespace) -> int:
    from matbench.caches.admin import default_dir, human_age, human_size, info

    directory = default_dir(args.cache_dir)
    caches = info(directory)
    if not caches:
        print(f"no caches in {directory}")
        return 0
    now = time.time()
    for c in caches:
        age = (
            f", oldest {human_age(now - c.oldest)} ago, newest {human_age(now - c.newest)} ago"
            if c.oldest is not None and c.newest is not None
            else ""
        )
        print(f"{c.path}: {human_size(c.size)}, {plural(c.rows, 'row')}{age}")
        for owner, n in list(c.by_owner.items())[:10]:
            print(f"  {n:>10,}  {owner}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from matbench.caches.admin import default_dir, parse_age, parse_size, prune
    from matbench.errors import ConfigError

    if args.older_than is None and args.max_size is None:
        raise ConfigError("cache prune needs --older-than D and/or --max-size S")
    older = parse_age(args.older_than) if args.older_than is not None else None
    size = parse_size(args.max_size) if args.max_size is not None else None
    directory = default_dir(args.cache_dir)
    lines = prune(directory, older_than=older, max_size=size)
    print("\n".join(lines) if lines else f"no caches in {directory}")
    return 0
