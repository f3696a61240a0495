"""Latency of the code sandbox: warm fork server (bwrap and none) against a fresh ``python -c`` per job.

Prints median and p90 of the wall time per call and of the overhead (wall time minus the time the
snippet itself ran, measured inside the job). Run: ``.venv/bin/python bench/bench_sandbox.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matbench.tools.sandbox import INPUT_PLACEHOLDER, OUTPUT_PLACEHOLDER, Sandbox  # noqa: E402

TRIVIAL = "x = 1 + 1\n"
OPENCV = """
import cv2
img = cv2.imread('path_to_input_image.jpg')
rotated = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
gray = cv2.cvtColor(rotated, cv2.COLOR_BGR2GRAY)
cv2.imwrite('path_to_output_image.jpg', cv2.equalizeHist(gray))
"""
# The fresh-process baseline times the snippet from inside, like the sandbox's worker does.
FRESH_WRAPPER = """
import sys, time, json
source = sys.argv[1]
started = time.perf_counter()
exec(compile(source, 'snippet.py', 'exec'), {'__name__': '__main__'})
print(json.dumps(time.perf_counter() - started), file=sys.stderr)
"""


def _stats(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.1f} ms  p90 {p90:7.1f} ms"


def _report(label: str, walls: list[float], overheads: list[float]) -> None:
    print(f"{label:<34} wall {_stats(walls)}   overhead {_stats(overheads)}")


def bench_sandbox(isolation: str, code: str, image: Path, runs: int, gap: float) -> tuple[list, list, str]:
    walls: list[float] = []
    overheads: list[float] = []
    with Sandbox(workers=2, isolation=isolation) as sb:
        sb.warmup()
        for _ in range(3):
            sb.run(code, image)
        for _ in range(runs):
            res = sb.run(code, image)
            if res.exec_time is None or (res.error and "no output image" not in res.error):
                raise SystemExit(f"bench job failed: {res.error}\n{res.stderr}")
            walls.append(res.wall_time)
            overheads.append(res.wall_time - res.exec_time)
            if gap:
                time.sleep(gap)
        used = sb.isolation
    return walls, overheads, used


def bench_fresh(code: str, image: Path, runs: int) -> tuple[list, list]:
    walls: list[float] = []
    overheads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        workdir = Path(tmp)
        shutil.copyfile(image, workdir / "input.png")
        mapped = code.replace(INPUT_PLACEHOLDER, str(workdir / "input.png"))
        mapped = mapped.replace(OUTPUT_PLACEHOLDER, str(workdir / "output.jpg"))
        for _ in range(runs):
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", FRESH_WRAPPER, mapped], cwd=workdir, capture_output=True, text=True
            )
            wall = time.perf_counter() - started
            if proc.returncode:
                raise SystemExit(f"fresh job failed: {proc.stderr}")
            walls.append(wall)
            overheads.append(wall - json.loads(proc.stderr.strip().splitlines()[-1]))
    return walls, overheads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--fresh-runs", type=int, default=15)
    parser.add_argument("--gap", type=float, default=0.05, help="pause between calls in the 'spaced' rows")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        image = Path(tmp) / "input.png"
        base = np.linspace(0, 200, 2000, dtype=np.float32)[None, :, None] * np.ones((1500, 1, 3), np.float32)
        noise = rng.integers(0, 55, size=(1500, 2000, 3))
        cv2.imwrite(str(image), (base + noise).astype(np.uint8))
        print(
            f"python {sys.version.split()[0]}, opencv {cv2.__version__}, bwrap {shutil.which('bwrap') or '-'}"
        )
        print(f"image 2000x1500 PNG; {args.runs} calls per sandbox row, workers=2; times per call")
        for name, code in (("trivial", TRIVIAL), ("opencv rotate+equalizeHist", OPENCV)):
            print(f"\n[{name}]")
            for isolation in ("bwrap", "none"):
                if isolation == "bwrap" and not shutil.which("bwrap"):
                    print("  bwrap: not installed, skipped")
                    continue
                walls, overheads, used = bench_sandbox(isolation, code, image, args.runs, 0.0)
                _report(f"  sandbox {used}, back-to-back", walls, overheads)
                walls, overheads, used = bench_sandbox(isolation, code, image, args.runs, args.gap)
                _report(f"  sandbox {used}, {args.gap * 1000:.0f} ms apart", walls, overheads)
            walls, overheads = bench_fresh(code, image, args.fresh_runs)
            _report("  fresh python -c per job", walls, overheads)


if __name__ == "__main__":
    main()
