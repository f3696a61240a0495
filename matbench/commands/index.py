"""`matbench index build CORPUS.jsonl --out DIR [--shard-size N]`: a persistent BM25 index (in shards, built in
bounded memory) for ``--search local:DIR``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="build a local BM25 search index",
        description="Build and inspect local BM25 indexes over FlashRAG/Search-R1 passage corpora.",
    )
    isub = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = isub.add_parser(
        "build",
        help="index a jsonl corpus",
        description=(
            'Index a jsonl corpus of {"id", "contents": "\\"Title\\"\\ntext"} rows (FlashRAG/Search-R1 '
            "format) with BM25; then search it with --search local:DIR."
        ),
    )
    b.add_argument("corpus", help="the corpus .jsonl file")
    b.add_argument("--out", required=True, metavar="DIR", help="index directory (replaced if it is an index)")
    b.add_argument("--batch-size", type=int, default=10_000, metavar="N", help="passages tokenized per batch")
    b.add_argument(
        "--shard-size",
        type=int,
        default=1_000_000,
        metavar="N",
        help="passages per shard (default 1,000,000): the build's memory is one shard's, ~2 GB per million",
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)
    i = isub.add_parser("info", help="show an index's metadata", description="Print an index's meta.json.")
    i.add_argument("dir", help="index directory")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_build(args: argparse.Namespace) -> int:
    from matbench.tools.search.local import build_index

    info = build_index(
        args.corpus,
        args.out,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        show_progress=not args.no_progress,
    )
    print(
        f"indexed {info.n_passages:,} passages ({info.n_tokens:,} tokens, {info.vocab_size:,} terms, "
        f"{info.shards} shard{'s' if info.shards > 1 else ''}) in {info.seconds:.1f} s -> {info.path} "
        f"({_size(info.size_bytes)})"
    )
    print(f"search it with: --search local:{info.path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from matbench.tools.search.local import dir_size, read_meta

    meta = read_meta(args.dir)
    meta["size_bytes"] = dir_size(args.dir)
    print(json.dumps(meta, indent=2))
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
