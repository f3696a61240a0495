"""Benchmark `matbench view` on a large run: time to write the report, then, in headless Chromium from the local
file (no server), the time until the page is usable, its JS heap, and the time of a filter and of opening one
sample. Targets (issue 13): open under 2 s, filter under 300 ms on a 12,576-sample run.

    .venv/bin/python bench/bench_view.py               # 12,576 samples (a 2WikiMultihopQA-sized run)
    .venv/bin/python bench/bench_view.py --n 2000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's matbench, not an installed one
sys.path.insert(0, str(ROOT / "tests"))  # the run generator the browser test uses

from report_helpers import make_search_run  # noqa: E402

from matbench.report.browser import open_page  # noqa: E402

FILTER_JS = """([id, value]) => {
  const t = performance.now(); const s = document.getElementById(id); s.value = value;
  s.dispatchEvent(new Event(id === 'f-text' ? 'input' : 'change'));
  void document.body.offsetHeight;  // include the layout the new rows cause
  return performance.now() - t; }"""


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12_576, help="samples (default 12,576)")
    ap.add_argument("--repeat", type=int, default=3, help="page loads to time (the median is printed)")
    ap.add_argument("--keep", action="store_true", help="keep the generated run")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    work = Path(tempfile.mkdtemp(prefix="matbench-bench-view-"))
    try:
        run = make_search_run(work / "run", args.n)
        print(
            f"run: {args.n:,} samples, predictions.jsonl {(run / 'predictions.jsonl').stat().st_size / 2**20:.1f} MiB"
        )
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "matbench.cli", "view", str(run)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        page_path = run / "report.html"
        print(
            f"matbench view: {time.perf_counter() - t0:.1f} s, peak RSS {peak:.0f} MiB; page "
            f"{page_path.stat().st_size / 2**20:.1f} MiB + {dir_size(run / 'report_data') / 2**20:.1f} MiB of "
            f"detail chunks in {len(list((run / 'report_data').glob('*.js')))} files"
        )
        loads, heaps, filters, texts, opens = [], [], [], [], []
        for _ in range(args.repeat):
            with open_page() as page:
                t = time.perf_counter()
                page.goto(page_path.as_uri())
                page.wait_for_selector("body[data-ready]")
                wall = (time.perf_counter() - t) * 1000
                loads.append((page.evaluate("window.MB_READY_MS"), wall))
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                heaps.append(metrics.get("JSHeapUsedSize", 0) / 2**20)
                filters.append(page.evaluate(FILTER_JS, ["f-outcome", "correct"]))
                page.evaluate(FILTER_JS, ["f-outcome", ""])
                texts.append(page.evaluate(FILTER_JS, ["f-text", "film director"]))
                page.evaluate(FILTER_JS, ["f-text", ""])
                t = time.perf_counter()
                page.locator("tr.row").nth(3).click()
                page.locator("tr.detail .sample .turn").first.wait_for()
                opens.append((time.perf_counter() - t) * 1000)
        mid = sorted(loads)[len(loads) // 2]

        def med(xs: list[float]) -> float:
            return sorted(xs)[len(xs) // 2]

        print(
            f"chromium, file:// page, median of {args.repeat}: usable after {mid[0]:.0f} ms "
            f"(navigation to ready, {mid[1]:.0f} ms as seen by the driver), JS heap {med(heaps):.0f} MiB"
        )
        print(
            f"filter by outcome: {med(filters):.0f} ms; text filter: {med(texts):.0f} ms; "
            f"open one sample (load its chunk, render its turns): {med(opens):.0f} ms"
        )
        print(
            f"targets: open < 2000 ms -> {'met' if mid[0] < 2000 else 'NOT met'}; "
            f"filter < 300 ms -> {'met' if max(med(filters), med(texts)) < 300 else 'NOT met'}"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
