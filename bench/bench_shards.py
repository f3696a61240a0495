"""The sharded BM25 matrix at corpus scale, without the tokenizer: peak memory of the builder and query latency.

`bench_search.py` measures the whole `matbench index build` on generated text; on this shared 2-core machine its
tokenizer (bm25s, pure Python, ~0.5 ms of CPU per passage) makes a 5 M-passage run take hours. This script
feeds the same ``ShardBuilder`` that `index build` uses with token ids drawn directly from a Zipf(1)
vocabulary (~70 content tokens per passage after stopwords, as in wiki-18 passages), so the parts whose cost
grows with the corpus (spilling, corpus-wide df, per-shard scoring, memory-mapped shards, max-score
pruning, the merge) are measured at 5 M passages. Queries are 3-7 token ids of one passage, like
`bench_search.py`'s question-like queries without their stopwords.

    .venv/bin/python bench/bench_shards.py --n 5000000          # 5 shards of 1 M
    .venv/bin/python bench/bench_shards.py --n 200000 --shard-size 50000 --check-single
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's matbench, not an installed one

VOCAB = 300_000
STOP_RANKS = 80  # the most frequent ranks play the stopwords: never in a document's tokens


def doc_tokens(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` passages: lengths 40-100 and Zipf(1) token ids above the stopword ranks (inverse CDF r = V^u)."""
    lengths = rng.integers(40, 101, size=n).astype(np.int32)
    u = rng.random(int(lengths.sum()))
    lo = np.log(STOP_RANKS + 1)
    tokens = (np.exp(lo + u * (np.log(VOCAB) - lo)) - 1).astype(np.int32)
    return tokens, lengths


def build(args: argparse.Namespace, out: Path, shard_size: int) -> dict:
    """In this process (run as a child by main, so its peak RSS is its own)."""
    from matbench.tools.search.bm25_shards import ShardBuilder

    out.mkdir(parents=True)
    work = out / "work"
    work.mkdir()
    builder = ShardBuilder(out, work, shard_size)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for start in range(0, args.n, 100_000):
        tokens, lengths = doc_tokens(rng, min(100_000, args.n - start))
        ends = np.cumsum(lengths)
        builder.add(tokens[e - n : e] for e, n in zip(ends, lengths, strict=True))
    stats = builder.finish(VOCAB, k1=1.5, b=0.75)
    stats.update(n_passages=args.n, n_tokens=builder.n_tokens, seconds=time.perf_counter() - t0)
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


def child_build(args: argparse.Namespace, out: Path, shard_size: int) -> tuple[dict, float]:
    cmd = [sys.executable, __file__, "--n", str(args.n), "--seed", str(args.seed), "--build-only", str(out),
           "--shard-size", str(shard_size)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "build failed"
    return json.loads((out / "stats.json").read_text()), usage.ru_maxrss / 1024


def load(out: Path, stats: dict) -> list:
    from matbench.tools.search.bm25_shards import Shard

    return [Shard(out / s["dir"], s["start"], s["n"]) for s in stats["shards"]]


def queries(args: argparse.Namespace, count: int) -> list[list[int]]:
    rng = np.random.default_rng(args.seed)  # the same passages as the build's first batch
    tokens, lengths = doc_tokens(rng, min(100_000, args.n))
    ends = np.cumsum(lengths)
    qrng = np.random.default_rng(args.seed + 1)
    out = []
    for i in qrng.integers(0, len(lengths), size=count):
        doc = tokens[ends[i] - lengths[i] : ends[i]]
        out.append([int(t) for t in qrng.choice(doc, size=int(qrng.integers(3, 8)), replace=False)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_000_000)
    ap.add_argument("--shard-size", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-single", action="store_true", help="compare top-5 with a one-shard build")
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_only:
        build(args, args.build_only, args.shard_size)
        return 0
    sys.stdout.reconfigure(line_buffering=True)
    from matbench.tools.search.bm25_shards import merged_top_k

    work = Path(tempfile.mkdtemp(prefix="matbench-bench-shards-"))
    try:
        t0 = time.perf_counter()
        stats, peak = child_build(args, work / "sharded", args.shard_size)
        size = sum(p.stat().st_size for p in (work / "sharded").rglob("*") if p.is_file())
        print(
            f"build of {args.n:,} passages ({stats['n_tokens']:,} tokens) in {len(stats['shards'])} shard(s) of "
            f"<= {args.shard_size:,}: {time.perf_counter() - t0:.1f} s wall, peak RSS {peak:,.0f} MiB "
            f"(target < 6 GiB), matrices {size / 2**20:,.0f} MiB on disk"
        )
        shards = load(work / "sharded", stats)
        qs = queries(args, args.queries)
        for q in qs[:20]:
            merged_top_k(shards, q, args.k)
        lat, cpu = [], []
        for q in qs:
            t, c = time.perf_counter(), time.process_time()
            merged_top_k(shards, q, args.k)
            cpu.append((time.process_time() - c) * 1000)
            lat.append((time.perf_counter() - t) * 1000)
        print(
            f"single query (k={args.k}, top-k over {len(shards)} shard(s), no tokenizer): "
            f"p50 {np.percentile(lat, 50):.2f} ms, p90 {np.percentile(lat, 90):.2f} ms, "
            f"p99 {np.percentile(lat, 99):.2f} ms, mean {np.mean(lat):.2f} ms (target p50 < 20 ms); "
            f"CPU time p50 {np.percentile(cpu, 50):.2f} ms, p90 {np.percentile(cpu, 90):.2f} ms "
            f"(what a core of its own would take; load average {os.getloadavg()[0]:.1f})"
        )
        dense = []
        for q in qs[:200]:
            t = time.perf_counter()
            best = []
            for s in shards:
                best = sorted(best + s.top_k_dense(q, args.k), key=lambda p: (-p[1], p[0]))[: args.k]
            dense.append((time.perf_counter() - t) * 1000)
        print(f"  (scoring every passage instead: p50 {np.percentile(dense, 50):.2f} ms over 200 queries)")
        if args.check_single:
            single_stats, single_peak = child_build(args, work / "single", args.n)
            single = load(work / "single", single_stats)
            same = sum(merged_top_k(single, q, 5) == merged_top_k(shards, q, 5) for q in qs)
            print(
                f"top-5 (passages and float32 scores) of {len(shards)} shards vs one index of {args.n:,}: "
                f"identical for {same} of {len(qs)} queries (one-index build peak RSS {single_peak:,.0f} MiB)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
