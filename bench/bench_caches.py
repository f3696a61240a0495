"""Do the caches pay for themselves? Wall time of the same `matbench eval` (2WikiMultihopQA, local BM25 search,
a zero-latency scripted OpenAI-compatible server, three model calls and two searches per sample) with the caches
off, with the default settings, with both caches forced on, and rerun on a warm response cache.

Each configuration runs on a fresh cache folder and run directory, in a child process (`python -m matbench.cli
eval`), alternating configurations between repeats; the median is printed. Target (issue 13): the defaults are
not slower than the caches off. On a shared 2-core VM one run's CPU time varies by 10-20 % with the
neighbours, more than the cache costs, so the verdict is a paired sign test: the defaults count as slower
only when they cost more CPU than the caches off in every one of >= 5 interleaved pairs (p < 0.05). The
cache's own cost is printed beside it, measured in-process (µs of CPU per model call), where noise is small.

    .venv/bin/python bench/bench_caches.py                      # 2,000 samples, 3 repeats
    .venv/bin/python bench/bench_caches.py --n 12576 --repeat 1
    .venv/bin/python bench/bench_caches.py --root /work/main    # the same, with another checkout's matbench
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's matbench, not an installed one
FIXTURES = ROOT.parent / "shared" / "fixtures"
# The authors' prompt strings (visual-arft, direct) come from their scripts: the fixture copy, offline.
os.environ.setdefault("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo"))
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai_server import FakeOpenAIServer, request_text  # noqa: E402

CONFIGS = {
    "caches off": ["--search-cache", "off", "--no-response-cache"],
    "defaults": [],
    "both caches on": ["--search-cache", "readwrite"],
}


def policy(req: dict) -> str:
    text = request_text(req)
    n = text.count("<information>")
    if n >= 2:
        return "<think> done </think>\n<answer> yes </answer>"
    question = text.rsplit("Question:", 1)[-1].split()[: 4 + 2 * n]
    return f"<think> look it up </think>\n<search> {' '.join(question)} </search>"


#: CPU seconds (user + sys) of each eval process, by configuration
CPU: dict[str, list[float]] = {}


def eval_once(
    root: Path,
    work: Path,
    name: str,
    extra: list[str],
    base_url: str,
    index: Path,
    n: int,
    cache: Path | None = None,
) -> float:
    run = work / f"run-{name.replace(' ', '-')}-{time.monotonic_ns()}"
    cache = cache or work / f"cache-{time.monotonic_ns()}"
    CPU.setdefault(name, [])
    cmd = [
        sys.executable,
        "-m",
        "matbench.cli",
        "eval",
        "--model",
        "openai:bench",
        "--base-url",
        base_url,
        "--task",
        "2wikimultihopqa",
        "--data-file",
        str(FIXTURES / "multihop" / "2wikimultihopqa" / "dev.jsonl"),
        "--limit",
        str(n),
        "--search",
        f"local:{index}",
        "--cache-dir",
        str(cache),
        "--run-dir",
        str(run),
        "--no-progress",
        "--max-concurrency",
        "32",
        *extra,
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"eval failed: {cmd}"
    CPU[name].append(usage.ru_utime + usage.ru_stime)
    return time.perf_counter() - t0


def in_process_cost(n: int = 6000) -> tuple[float, float]:
    """CPU µs per call that CachedModel adds to an instant model, cold (miss + store) and warm (hit), with
    2Wiki-sized requests; the writer thread's commits are included (process CPU time)."""
    import asyncio
    import resource

    from matbench.models.base import ChatRequest, Model, ModelOutput
    from matbench.models.cache import CachedModel

    class Instant(Model):
        name, lockstep, max_concurrency = "instant", False, 32

        def config(self) -> dict:
            return {"backend": "openai", "model": "instant", "default_temperature": 0.0}

        async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
            return [
                ModelOutput(text="<think> x </think>\n<search> who directed the film </search>")
                for _ in requests
            ]

    intro = "Answer the given question, searching when you need to. " * 12
    requests = [
        ChatRequest(
            f"{intro} Question: q{i}? " + "<information> a passage of text </information> " * (i % 3) * 8,
            temperature=0.0,
        )
        for i in range(n)
    ]

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def drive(model: Model) -> None:
        for i in range(0, n, 32):
            await model.generate(requests[i : i + 32])
        await model.aclose()

    with tempfile.TemporaryDirectory(prefix="matbench-bench-cache-cost-") as d:
        per_call = []
        for _ in range(2):  # cold (every call a miss), then warm (every call a hit)
            t = cpu()
            asyncio.run(drive(CachedModel(Instant(), Path(d) / "responses.sqlite")))
            per_call.append((cpu() - t) / n * 1e6)
        t = cpu()
        asyncio.run(drive(Instant()))
        bare = (cpu() - t) / n * 1e6
    return per_call[0] - bare, per_call[1] - bare


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="samples (default 2,000; 2Wiki has 12,576)")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved repeats (>= 5 for the sign test)")
    ap.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout whose matbench runs (default: this one)"
    )
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    with tempfile.TemporaryDirectory(prefix="matbench-bench-caches-") as d:
        work = Path(d)
        index = work / "index"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "matbench.cli",
                "index",
                "build",
                str(FIXTURES / "corpora" / "wiki18-first1000-passages.jsonl"),
                "--out",
                str(index),
                "--no-progress",
            ],
            cwd=args.root,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times: dict[str, list[float]] = {name: [] for name in [*CONFIGS, "defaults, warm response cache"]}
        with FakeOpenAIServer(policy) as srv:
            for _ in range(args.repeat):
                for name, extra in CONFIGS.items():
                    times[name].append(eval_once(args.root, work, name, extra, srv.base_url, index, args.n))
                warm = work / f"warm-{time.monotonic_ns()}"
                eval_once(args.root, work, "fill", [], srv.base_url, index, args.n, cache=warm)
                times["defaults, warm response cache"].append(
                    eval_once(
                        args.root,
                        work,
                        "defaults, warm response cache",
                        [],
                        srv.base_url,
                        index,
                        args.n,
                        cache=warm,
                    )
                )
        print(
            f"matbench eval of {args.n:,} 2Wiki samples (3 model calls, 2 local BM25 searches each), "
            f"zero-latency server, {args.root}; median of {args.repeat}:"
        )
        off = statistics.median(times["caches off"])
        cpu_off = statistics.median(CPU["caches off"])
        for name, ts in times.items():
            med, cpu = statistics.median(ts), statistics.median(CPU[name])
            print(
                f"  {name:<32} wall {med:6.1f} s ({100 * (med / off - 1):+6.1f} %), CPU {cpu:6.1f} s "
                f"({100 * (cpu / cpu_off - 1):+6.1f} % vs caches off); wall of each run: "
                f"{', '.join(f'{t:.1f}' for t in ts)}"
            )
        pairs = [d - o for d, o in zip(CPU["defaults"], CPU["caches off"], strict=True)]
        slower = len(pairs) >= 5 and all(p > 0 for p in pairs)
        print(
            f"defaults minus caches off, CPU of each interleaved pair: {', '.join(f'{p:+.1f}' for p in pairs)} s "
            f"(median {statistics.median(pairs):+.1f} s)"
        )
        cold, warm = in_process_cost()
        calls = 3 * args.n
        print(
            f"the response cache's own cost, in-process: {cold:.0f} µs of CPU per model call cold (lookup, key, "
            f"store, commit), {warm:.0f} µs warm (a hit, instead of the call); on this run "
            f"{cold * calls / 1e6:.2f} s of CPU = {100 * cold * calls / 1e6 / cpu_off:.1f} % of the caches-off run"
        )
        verdict = (
            "NOT met (the defaults cost more in every pair)"
            if slower
            else ("met" if len(pairs) >= 5 else "not decided: fewer than 5 pairs")
        )
        print(
            f"target: defaults not slower than caches off (paired sign test over {len(pairs)} pairs, CPU time) -> "
            f"{verdict}; load average {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
