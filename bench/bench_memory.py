"""Peak memory does not grow with the number of samples: eval, a finished-run rerun, score, compare (and submit).

A scripted zero-latency OpenAI-compatible server (in its own process) plays a search agent on 2WikiMultihopQA
(one search over a local BM25 index of a fixture corpus, then an answer), so each record carries a real
trajectory. Each command runs as its own process and its peak RSS comes from ``wait4``. The same commands on
1,000 samples and on all 12,576 of the 2Wiki dev set; target: eval, the rerun, score and compare within 1.2x.
``submit`` and ``score --data-file`` are printed beside them: they load the task's samples to check the run
against them (about 0.6 KB a sample), which grows with the task by design.

Run: python bench/bench_memory.py [--small 1000] [--large 12576]
"""

from __future__ import annotations

import argparse
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
DATA = FIXTURES / "multihop" / "2wikimultihopqa" / "dev.jsonl"
CORPUS = FIXTURES / "corpora" / "hotpotqa-dev-first100-paragraphs.jsonl"
TARGET = 1.2
TARGETED = ("eval", "rerun (finished)", "score", "compare")  # the list; the others are printed too

SERVER = """
import sys
sys.path.insert(0, {tests!r})
from fake_openai_server import FakeOpenAIServer, request_text

def policy(req):
    if "<information>" in request_text(req):
        return "<think> found it </think>\\n<answer> Paris </answer>"
    return "<think> I should look this up </think>\\n<search> capital of France </search>"

srv = FakeOpenAIServer(policy).start()
print(srv.base_url, flush=True)
sys.stdin.read()
"""


def matbench(*args: str, env: dict) -> tuple[float, float]:
    """Run ``python -m matbench.cli ARGS``; (peak RSS in MB, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "matbench.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"matbench {' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def measure(
    n: int, tmp: Path, url: str, index: Path, env: dict, reuse: bool
) -> dict[str, tuple[float, float]]:
    data = tmp / f"dev-{n}.jsonl"
    with DATA.open(encoding="utf-8") as src, data.open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    run = tmp / f"run-{n}"
    reuse = reuse and (run / "summary.json").is_file()
    common = [
        "--model",
        "openai:bench",
        "--base-url",
        url,
        "--task",
        "2wikimultihopqa",
        "--data-file",
        str(data),
    ]
    common += ["--search", f"local:{index}", "--run-dir", str(run), "--cache-dir", str(tmp / f"cache-{n}")]
    common += ["--max-concurrency", "32", "--no-progress"]
    out = {"eval": (float("nan"), float("nan")) if reuse else matbench("eval", *common, env=env)}
    out["rerun (finished)"] = matbench("eval", *common, env=env)
    out["score"] = matbench("score", str(run), "--task", "2wikimultihopqa", env=env)
    # checking the ids against the task's data loads the task's samples: that part grows with the task
    out["score --data-file"] = matbench(
        "score", str(run), "--task", "2wikimultihopqa", "--data-file", str(data), env=env
    )
    out["compare"] = matbench("compare", str(run), str(run), "--resamples", "1000", env=env)
    lb = tmp / f"lb-{n}"
    out["submit"] = matbench("submit", str(run), "--leaderboard-dir", str(lb), "--name", "bench", env=env)
    size = (run / "predictions.jsonl").stat().st_size / 1e6
    print(f"  {n} samples: predictions.jsonl {size:.1f} MB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=12576)
    ap.add_argument("--workdir", help="keep the runs here (default: a temporary folder)")
    ap.add_argument(
        "--reuse", action="store_true", help="with --workdir: measure all but eval on the kept runs"
    )
    args = ap.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OPENAI_API_KEY="sk-bench")
    env["PYTHONPATH"] = str(ROOT)  # this checkout's matbench
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(args.workdir or d)
        tmp.mkdir(parents=True, exist_ok=True)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER.format(tests=str(ROOT / "tests"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = server.stdout.readline().strip()
            index = tmp / "index"
            if not (args.reuse and index.is_dir()):
                matbench("index", "build", str(CORPUS), "--out", str(index), env=env)
            results = {n: measure(n, tmp, url, index, env, args.reuse) for n in (args.small, args.large)}
        finally:
            server.stdin.close()
            server.wait()
    small, large = results[args.small], results[args.large]
    print(
        f"peak RSS (MB) and time (s) per command; target: {args.large} samples within {TARGET}x of {args.small}"
    )
    print(
        f"{'command':<18} {args.small:>8} MB {args.large:>8} MB  ratio  {args.small:>6} s {args.large:>7} s"
    )
    worst = 0.0
    for cmd in small:
        (ms, ts), (ml, tl) = small[cmd], large[cmd]
        if cmd in TARGETED and ml == ml:  # not skipped (NaN)
            worst = max(worst, ml / ms)
        print(f"{cmd:<18} {ms:11.1f} {ml:11.1f}  {ml / ms:5.2f}  {ts:8.1f} {tl:9.1f}")
    print(
        f"worst ratio of {', '.join(TARGETED)}: {worst:.2f} "
        f"({'meets' if worst <= TARGET else 'MISSES'} the {TARGET}x target)"
    )


if __name__ == "__main__":
    main()
