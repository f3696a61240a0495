"""Where an in-process vLLM run spends its wall time: engine, tools, waiting for the slowest episode.

The tiny random Qwen2.5-VL (tests/engine/tiny_qwen.py) on the CPU build of vLLM, the six MAT-Coding demo
rows repeated to N samples (default 200), lock-step rounds; prints the run's ``time_split`` from
summary.json (definitions in matbench/run/timesplit.py). Run it with the engine venv's python:

    ~/.cache/matbench/engine-venv/bin/python bench/bench_engine.py [--samples 200] [--max-new-tokens 64]

The tiny model writes nonsense, so it rarely asks for a tool: the split shows the harness and engine
costs, not a real model's tool mix.
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

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
sys.path.insert(0, str(ROOT / "tests" / "engine"))


def repeated_coding_rows(out: Path, n: int) -> Path:
    """A MAT-Coding folder with the demo rows repeated to ``n`` samples (new ids, the same images)."""
    demo = FIXTURES / "mat" / "coding-demo"
    rows = json.loads((demo / "MAT-Coding.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for f in demo.iterdir():
        if f.suffix == ".png":
            shutil.copy(f, out / f.name)
    repeated = [{**rows[i % len(rows)], "id": 1000 + i} for i in range(n)]
    (out / "MAT-Coding.json").write_text(json.dumps(repeated, ensure_ascii=False))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    from tiny_qwen import build_cached

    cache = Path(os.environ.get("MATBENCH_CACHE_DIR") or Path.home() / ".cache" / "matbench")
    texts = [
        FIXTURES / "corpora" / "wiki18-first1000-passages.jsonl",
        FIXTURES / "mat" / "coding-demo" / "MAT-Coding.json",
    ]
    tiny, digest = build_cached(cache / "tiny-qwen2.5-vl", texts)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        # the authors' prompt strings from the fixtures' copy of their repository (never a download)
        MATBENCH_AUTHORS_REPO=os.environ.get("MATBENCH_AUTHORS_REPO", str(FIXTURES / "visual-arft-repo")),
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = repeated_coding_rows(Path(tmp) / "data", args.samples)
        cmd = [
            sys.executable, "-m", "matbench.cli", "eval", "--no-progress", "--model", f"vllm:{tiny}",
            "--task", "mat-coding", "--data-dir", str(data), "--max-new-tokens", str(args.max_new_tokens),
            "--seed", "0", "--dtype", "float32", "--enforce-eager", "--max-model-len", "8192",
            "--no-response-cache", "--run-dir", str(Path(tmp) / "run"),
        ]  # fmt: skip
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        total = time.perf_counter() - start
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
    run, split = summary["run"], summary["run"]["time_split"]
    print(
        f"tiny Qwen2.5-VL {digest[:12]}, {args.samples} MAT-Coding samples, max_new_tokens {args.max_new_tokens}"
    )
    print(
        f"process wall {total:.1f} s (incl. vLLM import and engine start); run wall {split['wall_s']:.1f} s"
    )
    print(
        f"calls {run['calls']}, tool calls {run['tool_calls']}, tokens {run['tokens']}, rounds {len(split['rounds'])}"
    )
    for key in ("engine", "tool", "idle", "other"):
        print(f"  {key:<6} {split[key + '_s']:8.2f} s  {100 * split['fractions'][key]:5.1f} %")
    print("rounds (episodes, engine s, tool s, idle s):")
    for r in split["rounds"]:
        print(f"  {r['episodes']:4d} {r['engine_s']:8.3f} {r['tool_s']:8.3f} {r['idle_s']:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
