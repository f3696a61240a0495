"""Agent-runtime speed: harness overhead per model call, and throughput against a slow server.

(a) 200 three-call search episodes (search, search, answer) run one at a time against a zero-latency local
    OpenAI-compatible server; every gap between the end of one model call and the start of the next, minus
    the search time inside it, is harness work (parsing, text building, recording). Prints median and p90.
(b) A server in another process that answers after 500 ms, ``--max-concurrency 64``: calls/s achieved
    against the 64 / 0.5 s = 128 calls/s limit.

Run: python bench/bench_eval.py [--episodes 200] [--throughput-samples 768]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
# The authors' prompt strings (visual-arft, direct) come from their scripts: the fixture copy, offline.
os.environ.setdefault("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench")


def _settings(tmp: Path, base_url: str, **kw):
    from matbench.run.scheduler import EvalSettings

    return EvalSettings(
        model="openai:bench",
        tasks=["2wikimultihopqa"],
        data_file=str(FIXTURES / "multihop" / "2wikimultihopqa" / "dev.jsonl"),
        base_url=base_url,
        runs_root=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        response_cache=False,
        progress=False,
        temperature=0.0,
        **kw,
    )


class Timeline:
    """Wraps the model and the search tool to record when each call starts and ends."""

    def __init__(self):
        self.model_calls: list[tuple[float, float]] = []
        self.tool_calls: list[tuple[float, float]] = []


def overhead(episodes: int, tmp: Path) -> list[float]:
    from fake_openai_server import FakeOpenAIServer, request_text

    from matbench import runner

    def policy(req):
        n = request_text(req).count("<information>")
        return "<think> x </think>\n<search> who </search>" if n < 2 else "<answer> y </answer>"

    index = tmp / "index"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "matbench.cli",
            "index",
            "build",
            str(FIXTURES / "corpora" / "hotpotqa-dev-first100-paragraphs.jsonl"),
            "--out",
            str(index),
        ],
        check=True,
        capture_output=True,
    )
    tl = Timeline()
    with FakeOpenAIServer(policy) as srv:
        settings = _settings(
            tmp, srv.base_url, limit=episodes, max_concurrency=1, search=f"local:{index}", search_cache="off"
        )
        model = runner.build_model(settings)
        inner_generate = model.generate

        async def generate(requests):
            t0 = time.perf_counter()
            try:
                return await inner_generate(requests)
            finally:
                tl.model_calls.append((t0, time.perf_counter()))

        model.generate = generate
        shared: dict = {}
        plan = runner.plan_task(settings, "2wikimultihopqa", model, shared)
        search = plan.tools.search
        inner_search = search.search_with_source

        def timed_search(q, k):
            t0 = time.perf_counter()
            try:
                return inner_search(q, k)
            finally:
                tl.tool_calls.append((t0, time.perf_counter()))

        search.search_with_source = timed_search
        asyncio.run(runner._evaluate([plan], model, settings))
    gaps = []
    calls = sorted(tl.model_calls)
    for (_, end), (nxt, _) in zip(calls, calls[1:], strict=False):
        tool = sum(b - a for a, b in tl.tool_calls if a >= end and b <= nxt)
        gaps.append((nxt - end - tool) * 1000)
    assert len(calls) == 3 * episodes, len(calls)
    return gaps


def throughput(samples: int, tmp: Path) -> tuple[float, float]:
    from matbench import runner

    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fake_openai_server.py"),
            "--latency",
            "0.5",
            "--reply",
            "<answer> x </answer>",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        settings = _settings(
            tmp, base_url, limit=samples, max_concurrency=64, protocol="direct", run_dir=str(tmp / "tp")
        )
        t0 = time.perf_counter()
        (summary,) = runner.evaluate(settings)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()
    return summary["run"]["calls"] / summary["run"]["duration_s"], summary["run"]["calls"] / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--throughput-samples", type=int, default=1280)
    args = ap.parse_args()
    import statistics

    with tempfile.TemporaryDirectory() as d:
        gaps = sorted(overhead(args.episodes, Path(d)))
        p90 = gaps[int(0.9 * (len(gaps) - 1))]
        print(
            f"harness overhead per model call ({args.episodes} three-call episodes, {len(gaps)} gaps): "
            f"median {statistics.median(gaps):.2f} ms, p90 {p90:.2f} ms, mean {statistics.mean(gaps):.2f} ms "
            "(target: median <= 5 ms)"
        )
    with tempfile.TemporaryDirectory() as d:
        rate, rate_wall = throughput(args.throughput_samples, Path(d))
        print(
            f"throughput at --max-concurrency 64, server latency 500 ms ({args.throughput_samples} calls): "
            f"{rate:.1f} calls/s = {100 * rate / 128:.1f}% of the 128 calls/s limit "
            f"(incl. start-up: {rate_wall:.1f} calls/s; target >= 90%)"
        )


if __name__ == "__main__":
    main()
