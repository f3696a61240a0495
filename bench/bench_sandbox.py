"""Latency of the code sandbox: warm fork server (bwrap and none) against a fresh ``python -c`` per job;
and what hostile jobs get away with (memory held across processes, bytes written, time to refuse a
huge output image, time to clean up 3,000 nested directories).

Prints median and p90 of the wall time per call and of the overhead (wall time minus the time the
snippet itself ran, measured inside the job). Run: ``.venv/bin/python bench/bench_sandbox.py``
(``--hostile-only`` for the second part).
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


MANY_PROCESSES = """
import os, time
kids = []
for i in range(5):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        block = bytearray(400 << 20)
        block[::4096] = b'x' * len(block[::4096])
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
held = 0
for pid in kids:
    _, status = os.waitpid(pid, 0)
    held += os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(held * 400)
"""
FILL_DISK = """
import os
written = 0
block = b'\\0' * (8 << 20)
for d in ('.', '/tmp', '/dev/shm'):
    for i in range(60):
        try:
            with open(os.path.join(d, f'fill{i}'), 'wb') as fh:
                fh.write(block)
            written += len(block)
        except OSError:
            break
print(written)
"""
HUGE_TIFF = """
from PIL import Image
Image.new('L', (13000, 13000)).save('path_to_output_image.jpg', format='TIFF', compression='tiff_deflate')
"""
DEEP = """
import os, shutil
start = os.getcwd()
for top in TOPS:
    os.chdir(os.path.join(start, top))
    for _ in range(3000):
        os.mkdir('d')
        os.chdir('d')
os.chdir(start)
shutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')
"""


def bench_hostile(image: Path) -> None:
    """One run of each attack per isolation mode; prints what it got and what it cost."""
    print("\n[hostile jobs]")
    for isolation in ("bwrap", "none"):
        if isolation == "bwrap" and not shutil.which("bwrap"):
            print("  bwrap: not installed, skipped")
            continue
        for cap in ("auto", "single-process"):
            with Sandbox(timeout=30, workers=1, isolation=isolation, memory_mb=1024, memory_cap=cap) as sb:
                sb.warmup()
                res = sb.run(MANY_PROCESSES, image)
                peak = f"{res.memory_peak / 2**20:.0f} MiB" if res.memory_peak is not None else "-"
                print(
                    f"  {isolation:<5} memory: 5 children x 400 MB under --memory-mb 1024 -> held "
                    f"{res.stdout.strip() or '?'} MB together, job peak {peak} [{sb.memory_cap.split(':')[0]}]"
                )
        with Sandbox(timeout=30, workers=1, isolation=isolation, disk_mb=256) as sb:
            sb.warmup()
            res = sb.run(FILL_DISK, image)
            counted = f"{res.disk_used / 2**20:.0f} MiB" if res.disk_used is not None else "-"
            print(
                f"  {isolation:<5} disk: 180 x 8 MB files -> wrote {int(res.stdout or 0) / 2**20:.0f} MiB "
                f"in {res.exec_time or 0:.2f} s, counted {counted} [{sb.disk_cap}]"
            )
            runs = [sb.run(HUGE_TIFF, image) for _ in range(3)]
            refuse = statistics.median(r.wall_time - (r.exec_time or 0) for r in runs)
            print(
                f"  {isolation:<5} 13000x13000 TIFF output: refused {refuse * 1000:.0f} ms (median of 3) "
                f"after the code ended ({runs[0].error[:60]}...)"
            )
            tops = [".", "/tmp", "/dev/shm"] if sb.isolation == "bwrap" else ["."]
            res = sb.run(f"TOPS = {tops!r}\n" + DEEP, image)
            print(
                f"  {isolation:<5} 3,000 nested dirs in {', '.join(tops)}: ok={res.ok}, cleaned up in "
                f"{res.wall_time - (res.exec_time or 0):.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--fresh-runs", type=int, default=15)
    parser.add_argument("--gap", type=float, default=0.05, help="pause between calls in the 'spaced' rows")
    parser.add_argument("--hostile-only", action="store_true", help="only the hostile-job numbers")
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
        if args.hostile_only:
            bench_hostile(image)
            return
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
        bench_hostile(image)


if __name__ == "__main__":
    main()
