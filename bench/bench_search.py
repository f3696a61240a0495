"""Benchmark the local BM25 search backend on a synthetic wiki-sized corpus.

Generates N passages (default 1,000,000) of ~100 words drawn from a Zipf-distributed vocabulary (with real
English stopwords among the most frequent words, as in Wikipedia text), builds the index with the exact
command users run (``python -m matbench.cli index build``, in a child process so its peak memory is measured
alone), then measures single-query latency and batch throughput of ``LocalSearch`` (mmap-loaded) with
question-like queries.

    .venv/bin/python bench/bench_search.py                 # 1M passages (a few minutes)
    .venv/bin/python bench/bench_search.py --n 200000 --shard-size 50000 --check-single
    .venv/bin/python bench/bench_search.py --n 5000000     # 5 shards of 1M (the default shard size)

Targets (issue 13): peak RSS of the build under 6 GB at any size (it is bounded by the shard size, not the
corpus), single-query p50 under 20 ms at 5 M passages, top-5 identical to a single index (``--check-single``
builds the corpus again as one shard and compares every query's top 5, passages and scores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's matbench, not an installed one
STOPWORDS = (
    "the of and in to was is for on as by with he at from his an were are which that it this be or has had "
    "first after also its their who one two she her they not been but have into new other all would most "
    "when over during where while some later there more between under these such"
).split()
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "ch", "sh", "st", "tr", "ng"]


def make_vocab(size: int, rng: np.random.Generator) -> list[str]:
    """``size`` distinct pronounceable words; stopwords take the top ranks like in real text."""
    words: list[str] = list(STOPWORDS)
    seen = set(words)
    while len(words) < size:
        n_syl = rng.integers(2, 5, size=size)
        picks = rng.integers(0, len(SYLLABLES), size=(size, 4))
        for i in range(size):
            w = "".join(SYLLABLES[j] for j in picks[i, : n_syl[i]])
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == size:
                    break
    return words


def generate_corpus(path: Path, n: int, vocab_size: int, zipf_s: float, seed: int) -> list[list[str]]:
    """Write ``n`` passages in FlashRAG format; return word lists of a sample of passages (for queries)."""
    rng = np.random.default_rng(seed)
    vocab = np.array(make_vocab(vocab_size, rng), dtype=object)
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    cdf = np.cumsum(1.0 / ranks**zipf_s)
    cdf /= cdf[-1]
    sample: list[list[str]] = []
    chunk = 20_000
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            lengths = rng.integers(60, 140, size=m)  # wiki-18 passages are 100 words
            words = vocab[np.searchsorted(cdf, rng.random(int(lengths.sum())))].tolist()  # list slices join fast
            title_words = vocab[rng.integers(len(STOPWORDS) + 1000, vocab_size, size=(m, 2))]
            lines = []
            pos = 0
            for i in range(m):
                body = words[pos : pos + lengths[i]]
                pos += lengths[i]
                title = f"{title_words[i, 0].capitalize()} {title_words[i, 1].capitalize()}"
                lines.append(
                    json.dumps({"id": str(start + i), "contents": f'"{title}"\n{title} ' + " ".join(body)})
                )
                if (start + i) % max(n // 2000, 1) == 0:
                    sample.append([title_words[i, 0], title_words[i, 1], *body])
            f.write("\n".join(lines) + "\n")
    return sample


def make_queries(sample: list[list[str]], count: int, seed: int) -> list[str]:
    """Question-like queries: a few content words of one passage (title words often) plus stopwords."""
    rng = np.random.default_rng(seed + 1)
    queries = []
    for i in range(count):
        words = sample[i % len(sample)]
        content = [w for w in words if w not in STOPWORDS]
        k = int(rng.integers(3, 8))
        picked = [content[j] for j in rng.choice(len(content), size=min(k, len(content)), replace=False)]
        if rng.random() < 0.5:
            picked.insert(0, words[0])
        queries.append("what is the " + " ".join(picked) + " of the")
    return queries


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="passages (default 1,000,000)")
    ap.add_argument("--vocab", type=int, default=300_000, help="vocabulary size (default 300,000)")
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of word frequencies (default 1.0)")
    ap.add_argument("--queries", type=int, default=1000, help="queries for latency/throughput")
    ap.add_argument("--k", type=int, default=4, help="hits per query (MAT-Search shows 4)")
    ap.add_argument("--batch-size", type=int, default=10_000, help="index build batch size")
    ap.add_argument("--shard-size", type=int, default=1_000_000, help="passages per shard (the CLI's default)")
    ap.add_argument("--check-single", action="store_true", help="compare top-5 with a one-shard index")
    ap.add_argument("--reuse-index", action="store_true", help="with --workdir: query the index built before")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="where to put corpus and index (default: temp)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the corpus and the index")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear in order when piped to a file

    work = args.workdir or Path(tempfile.mkdtemp(prefix="matbench-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus, index, sample_file = work / "corpus.jsonl", work / "index", work / "sample.json"
    try:
        if args.reuse_index and (index / "meta.json").is_file() and sample_file.is_file():
            print(f"reusing the corpus and index in {work} (built earlier by this script)")
            measure(args, work, corpus, index, json.loads(sample_file.read_text()))
            return 0
        t0 = time.perf_counter()
        sample = generate_corpus(corpus, args.n, args.vocab, args.zipf, args.seed)
        sample_file.write_text(json.dumps(sample))
        gen_s = time.perf_counter() - t0
        print(
            f"corpus: {args.n:,} passages, {corpus.stat().st_size / 2**20:,.0f} MiB, generated in {gen_s:.1f} s"
        )
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "matbench.cli", "index", "build", str(corpus), "--out", str(index)]
        cmd += ["--batch-size", str(args.batch_size), "--shard-size", str(args.shard_size), "--no-progress"]
        build = subprocess.Popen(cmd, cwd=ROOT)
        _, status, usage = os.wait4(build.pid, 0)  # this child's own peak RSS
        build.returncode = os.waitstatus_to_exitcode(status)
        assert build.returncode == 0, f"index build failed ({build.returncode})"
        build_s = time.perf_counter() - t0
        peak_kib = usage.ru_maxrss  # KiB on Linux
        meta = json.loads((index / "meta.json").read_text())
        size = dir_size(index)
        docs = (index / "docs.jsonl").stat().st_size
        print(
            f"build: {build_s:.1f} s wall (indexer {meta['build_seconds']:.1f} s), peak RSS "
            f"{peak_kib / 1024:,.0f} MiB (target < 6 GiB), {len(meta['shards'])} shard(s) of <= "
            f"{args.shard_size:,}, {meta['n_tokens']:,} tokens, {meta['vocab_size']:,} terms"
        )
        print(
            f"index on disk: {size / 2**20:,.0f} MiB ({(size - docs) / 2**20:,.0f} MiB BM25 + "
            f"{docs / 2**20:,.0f} MiB passage store)"
        )
        measure(args, work, corpus, index, sample)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


def measure(args: argparse.Namespace, work: Path, corpus: Path, index: Path, sample: list[list[str]]) -> None:
    """Load the index and time queries; with --check-single, compare with a one-shard index."""
    from matbench.tools.search.local import LocalSearch

    t0 = time.perf_counter()
    search = LocalSearch(index, mmap=True)
    print(f"load (mmap): {time.perf_counter() - t0:.2f} s, {len(search.shards)} shard(s)")
    queries = make_queries(sample, args.queries, args.seed)
    for q in queries[:20]:  # warm the page cache and numpy
        search.search(q, args.k)

    lat: list[float] = []
    cpu: list[float] = []
    empty = 0
    for q in queries:
        t, c = time.perf_counter(), time.process_time()
        hits = search.search(q, args.k)
        cpu.append((time.process_time() - c) * 1000)
        lat.append((time.perf_counter() - t) * 1000)
        empty += not hits
    print(
        f"single query (k={args.k}): p50 {pct(lat, 50):.2f} ms, p90 {pct(lat, 90):.2f} ms, "
        f"p99 {pct(lat, 99):.2f} ms, mean {statistics.fmean(lat):.2f} ms "
        f"-> {1000 / statistics.fmean(lat):,.0f} queries/s; {empty} of {len(queries)} with no hits; "
        f"CPU time p50 {pct(cpu, 50):.2f} ms, p90 {pct(cpu, 90):.2f} ms (load average {os.getloadavg()[0]:.1f})"
    )
    t = time.perf_counter()
    search.search_batch(queries, args.k)
    batch_s = time.perf_counter() - t
    print(f"batch of {len(queries)}: {len(queries) / batch_s:,.0f} queries/s")

    n_threads = os.cpu_count() or 2
    chunks = [queries[i::n_threads] for i in range(n_threads)]
    t = time.perf_counter()
    threads = [threading.Thread(target=search.search_batch, args=(c, args.k)) for c in chunks]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"{n_threads} threads (shared backend): {len(queries) / (time.perf_counter() - t):,.0f} queries/s")

    if args.check_single:
        single_dir = work / "single"
        cmd = [sys.executable, "-m", "matbench.cli", "index", "build", str(corpus), "--out", str(single_dir),
               "--batch-size", str(args.batch_size), "--shard-size", str(args.n), "--no-progress"]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        single = LocalSearch(single_dir, mmap=True)
        same = sum(single.top_k(single.query_ids(q), 5) == search.top_k(search.query_ids(q), 5) for q in queries)
        print(
            f"top-5 (passages and scores) of {len(search.shards)} shards vs one index: identical for "
            f"{same} of {len(queries)} queries"
        )
        single.close()
    search.close()


if __name__ == "__main__":
    sys.exit(main())
