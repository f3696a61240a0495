"""Model-adapter bench: (a) harness overhead per call, (b) throughput under a concurrency cap.

The OpenAI-compatible server runs in a SEPARATE process (tests/fake_openai_server.py) so its CPU is
not charged to the harness.

(a) 600 sequential calls against a zero-latency server, timed one by one. The same 600 calls made
    with a bare aiohttp POST give the floor (server + loopback + minimal HTTP client); the harness
    overhead is the difference of the medians (and of the p90s).
(b) 1280 concurrent single-request generate() calls, max_concurrency 64, server answering after
    500 ms: the ceiling is 64 / 0.5 s = 128 calls/s. Printed overall (including the start-up burst:
    64 requests leave together, and their answers come back together, so the first waves queue
    behind each other's client CPU until they spread out) and sustained (after 3 s).

Usage: .venv/bin/python bench/bench_models.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "fake_openai_server.py"
REPLY = "<answer> x </answer>"


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--latency", str(latency), "--reply", REPLY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise SystemExit(f"fake server did not start (got {base_url!r})")
    return proc, base_url


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overhead(base_url: str, n: int = 600) -> None:
    import aiohttp

    from matbench.models import ChatRequest, get_model

    prompt = "Question: who directed the film? " * 8
    # floor: a bare aiohttp POST of the same body
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64,
        "temperature": 0.0,
    }
    raw: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + 20):
            t0 = time.perf_counter()
            async with session.post(base_url + "/chat/completions", json=body) as resp:
                await resp.json()
            if i >= 20:
                raw.append(time.perf_counter() - t0)

    model = get_model("openai:m", base_url=base_url)
    req = ChatRequest(prompt, max_new_tokens=64, temperature=0.0)
    for _ in range(20):  # warm-up: imports, connection pool
        await model.generate([req])
    per_call: list[float] = []
    t_all = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        [out] = await model.generate([req])
        per_call.append(time.perf_counter() - t0)
        assert out.text == REPLY, out
    total = time.perf_counter() - t_all
    transport = model.transport_in_use
    await model.aclose()

    ms = 1000.0
    print(
        f"(a) harness overhead, {n} sequential calls, zero-latency server in another process (transport: {transport})"
    )
    print(
        f"    matbench generate() per call: median {statistics.median(per_call) * ms:.3f} ms, p90 {pct(per_call, 0.9) * ms:.3f} ms, total/{n} {total / n * ms:.3f} ms"
    )
    print(
        f"    bare aiohttp POST per call:   median {statistics.median(raw) * ms:.3f} ms, p90 {pct(raw, 0.9) * ms:.3f} ms"
    )
    print(
        f"    harness overhead (difference): median {(statistics.median(per_call) - statistics.median(raw)) * ms:.3f} ms, "
        f"p90 {(pct(per_call, 0.9) - pct(raw, 0.9)) * ms:.3f} ms"
    )


async def throughput(base_url: str, latency: float, concurrency: int = 64, n: int = 1280) -> None:
    from matbench.models import ChatRequest, get_model

    model = get_model("openai:m", base_url=base_url, max_concurrency=concurrency)
    await model.generate([ChatRequest("warm-up", max_new_tokens=8)])
    requests = [ChatRequest(f"question {i}", max_new_tokens=64, temperature=0.0) for i in range(n)]
    done: list[float] = []

    async def one(request: ChatRequest):
        [out] = await model.generate([request])
        done.append(time.perf_counter())
        return out

    t0 = time.perf_counter()
    # the runner's pattern for HTTP backends: one generate() per request, all concurrently
    outs = await asyncio.gather(*(one(r) for r in requests))
    elapsed = time.perf_counter() - t0
    await model.aclose()
    errors = sum(1 for o in outs if o.error)
    limit = concurrency / latency
    rate = n / elapsed
    # sustained: completions per second once the start-up burst has spread out (after 3 s), before the drain
    lo, hi = t0 + 3.0, t0 + elapsed - latency
    sustained = sum(1 for t in done if lo <= t < hi) / (hi - lo)
    print(
        f"(b) throughput, {n} calls, max_concurrency {concurrency}, server latency {latency * 1000:.0f} ms, limit {limit:.0f} calls/s"
    )
    print(
        f"    overall:   {rate:.1f} calls/s = {100 * rate / limit:.1f} % of the limit  (elapsed {elapsed:.2f} s, errors {errors})"
    )
    print(
        f"    sustained: {sustained:.1f} calls/s = {100 * sustained / limit:.1f} % of the limit  (completions from 3 s to the last wave)"
    )


def main() -> int:
    os.environ.pop("OPENAI_API_KEY", None)
    proc, url = start_server(0.0)
    try:
        asyncio.run(overhead(url))
    finally:
        stop_server(proc)
    latency = 0.5
    proc, url = start_server(latency)
    try:
        asyncio.run(throughput(url, latency))
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
