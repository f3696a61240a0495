"""Time `matbench compare`'s paired bootstrap at 2WikiMultihopQA scale: 12,576 samples x 10,000 resamples.

Run: .venv/bin/python bench/bench_compare.py [PRED_DIR]. Three pairings of real per-sample scores from the
Visual-ARFT 7B 2Wiki predictions: (1) the same predictions under the squad vs visual-arft scorers (few
differences: the usual case for two close systems), (2) each sample against its neighbour's scores (as if two
unrelated systems: the most disagreement real QA scores give), (3) continuous uniform differences (the worst
case for the method: no repeated values).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from matbench.scoring.base import make_scorer
from matbench.scoring.bootstrap import bootstrap_means, confidence_interval
from matbench.scoring.predictions import read_predictions

N_RESAMPLES = 10_000
DEFAULT_DIR = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "predictions" / "visual-arft"
)


def scores(pred_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = read_predictions(pred_dir / "7b_step200_2wiki_web_n4.json")
    out = []
    for name in ("visual-arft", "squad"):
        scorer = make_scorer(name)
        out.append(np.array([[s.f1, s.em] for s in (scorer(r.prediction, r.gold) for r in rows)]))
    return out[0], out[1]


def timed(label: str, diffs: np.ndarray) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        means = bootstrap_means(diffs, N_RESAMPLES, np.random.default_rng(0))
        best = min(best, time.perf_counter() - start)
    lo, hi = confidence_interval(means)
    print(
        f"{label:<40} n={len(diffs)} x {N_RESAMPLES} resamples: {best:.3f} s (best of 3)  "
        f"dF1={100 * diffs[:, 0].mean():+.2f} CI [{100 * lo[0]:+.2f}, {100 * hi[0]:+.2f}]"
    )
    return best


def main() -> int:
    pred_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR.resolve()
    arft, squad = scores(pred_dir)
    timed("squad vs visual-arft (close systems)", arft - squad)
    timed("neighbour vs self (unrelated systems)", np.roll(arft, 1, axis=0) - arft)
    uniform = np.random.default_rng(1).random((len(arft), 2)) - 0.5
    timed("continuous uniform (worst case)", uniform)
    return 0


if __name__ == "__main__":
    sys.exit(main())
