"""Scoring speed: read and score the authors' 12,576-row 2WikiMultihopQA predictions (both scorings)."""

from __future__ import annotations

import time
from pathlib import Path

from matbench.scoring.predictions import check_ids, read_predictions, score_rows
from matbench.tasks import get_task

FILE = (
    Path(__file__).resolve().parents[2]
    / "shared/fixtures/predictions/visual-arft/7b_step200_2wiki_web_n4.json"
)


def main() -> None:
    spec = get_task("2wikimultihopqa")
    t0 = time.perf_counter()
    rows = read_predictions(FILE)
    check_ids(rows, spec, None, str(FILE))
    t1 = time.perf_counter()
    for scoring in ("visual-arft", "squad"):
        best = float("inf")
        for _ in range(5):
            s0 = time.perf_counter()
            result = score_rows(rows, spec, scoring)
            best = min(best, time.perf_counter() - s0)
        print(
            f"{scoring:12s} {len(rows)} predictions scored in {best * 1000:.1f} ms "
            f"(F1 {100 * result['f1']:.4f}, EM {100 * result['em']:.4f})"
        )
    print(f"reading the file: {(t1 - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
