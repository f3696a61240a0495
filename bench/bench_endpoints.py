"""Several endpoints serving one run: calls/s per endpoint and overall, and what happens when one is killed.

Four scripted OpenAI-compatible servers, each in its own process (tests/fake_openai_server.py), answer after 25,
50, 100 and 200 ms. A 2WikiMultihopQA run (direct protocol: one call per sample) is driven through all four with
``--max-concurrency 64``; least-in-flight routing should give each endpoint calls in proportion to its speed
(the ideal overall rate is the sum of 64-way concurrency spread over the four). Then the same run again, and the
fastest server is killed (SIGKILL) once a third of the samples are done: the bench prints each endpoint's calls
before and after the kill, how many calls failed on the dead one and were moved, and the run's errors (must be 0).

Run: python bench/bench_endpoints.py [--samples 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
# The authors' prompt strings (visual-arft, direct) come from their scripts: the fixture copy, offline.
os.environ.setdefault("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo"))
SERVER = ROOT / "tests" / "fake_openai_server.py"
LATENCIES = (0.025, 0.05, 0.1, 0.2)
sys.path.insert(0, str(ROOT))  # this checkout's matbench, not another one installed in the venv
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency), "--reply", "<answer> x </answer>"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"fake server did not start (got {url!r})")
    return proc, url


def run(urls: list[str], samples: int, tmp: Path, on_progress=None) -> tuple[dict, object]:
    """One eval through the runner's own pieces, so the bench can watch the endpoint pool while it runs."""
    from matbench import runner

    settings = runner.EvalSettings(
        model="openai:bench",
        tasks=["2wikimultihopqa"],
        data_file=str(FIXTURES / "multihop" / "2wikimultihopqa" / "dev.jsonl"),
        base_url=urls,
        limit=samples,
        protocol="direct",
        max_concurrency=64,
        run_dir=str(tmp),
        response_cache=False,
        progress=False,
        temperature=0.0,
        model_options={"max_retries": 3, "retry_base_delay": 0.05},
    )
    model = runner.build_model(settings)
    plan = runner.plan_task(settings, "2wikimultihopqa", model, {})
    if on_progress is not None:
        threading.Thread(target=on_progress, args=(plan, model), daemon=True).start()
    t0 = time.perf_counter()
    asyncio.run(runner._evaluate([plan], model, settings))
    summary = plan.run.read_summary()
    summary["run"]["wall_s"] = time.perf_counter() - t0
    return summary, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=3000)
    args = ap.parse_args()
    servers = [start_server(lat) for lat in LATENCIES]
    urls = [u for _, u in servers]
    names = {u: f"{int(lat * 1000)} ms" for u, lat in zip(urls, LATENCIES, strict=True)}
    try:
        with tempfile.TemporaryDirectory() as d:
            summary, _ = run(urls, args.samples, Path(d) / "a")
        r = summary["run"]
        print(f"(a) {args.samples} calls over 4 endpoints, --max-concurrency 64, errors={r['errors']}")
        for e in r["endpoints"]:
            print(
                f"    endpoint {names[e['url']]:>6}: {e['calls']:5d} calls  {e['calls_per_s'] or 0:7.1f} calls/s"
                f"  ({100 * e['calls'] / max(1, r['calls']):.0f}% of the calls)"
            )
        print(
            f"    overall: {r['calls'] / r['duration_s']:.1f} calls/s ({r['calls']} calls in {r['duration_s']:.1f} s)"
        )

        victim_proc, victim_url = servers[0]
        at_kill: dict[str, int] = {}

        def killer(plan, model) -> None:
            pool = model.model.pool if hasattr(model, "model") else model.pool
            path = plan.run.predictions_path  # made when the first sample is written
            while not path.exists() or sum(1 for _ in open(path, "rb")) < args.samples // 3:
                time.sleep(0.02)
            at_kill.update({e.url: e.calls for e in pool.endpoints})
            victim_proc.send_signal(signal.SIGKILL)

        with tempfile.TemporaryDirectory() as d:
            summary, model = run(urls, args.samples, Path(d) / "b", on_progress=killer)
        r = summary["run"]
        print(
            f"(b) the same run; endpoint {names[victim_url]} killed (SIGKILL) after {args.samples // 3} samples: "
            f"errors={r['errors']}, samples={summary['n']}"
        )
        for e in r["endpoints"]:
            before = at_kill.get(e["url"], 0)
            print(
                f"    endpoint {names[e['url']]:>6}: {before:5d} calls before the kill, {e['calls'] - before:5d} after"
                f"  failed={e['failed']} moved={e['moved']} healthy={e['healthy']}"
                + (f" ({e['reason'][:70]})" if e["reason"] else "")
            )
        moved = sum(e["moved"] for e in r["endpoints"])
        print(
            f"    {moved} call(s) failed on the killed endpoint and were retried at once on the others; "
            f"overall {r['calls'] / r['duration_s']:.1f} calls/s"
        )
    finally:
        for proc, _ in servers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
