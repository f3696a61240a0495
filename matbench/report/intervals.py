"""A 95 % bootstrap interval for each leaderboard cell, so that a 6-sample run cannot look like a 200-sample one.

Computed once, when an entry is made (the per-sample scores exist only then), with the same resampler as
`matbench compare` and a fixed seed, so resubmitting gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matbench.scoring.bootstrap import bootstrap_means, confidence_interval
from matbench.scoring.table import Scored

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95


def score_intervals(scored: Sequence[Scored], splits: Sequence[str]) -> dict[str, dict]:
    """``{"all": {"f1_ci": [lo, hi], "em_ci": [lo, hi]}, "<split>": {...}}``, fractions in [0, 1]."""
    groups = {"all": list(scored)}
    for name in splits:
        groups[name] = [s for s in scored if s.split == name]
    out: dict[str, dict] = {}
    for name, items in groups.items():
        if not items:
            continue
        values = np.array([[s.f1, s.em] for s in items], dtype=np.float64)
        means = bootstrap_means(values, RESAMPLES, np.random.default_rng(SEED))
        lo, hi = confidence_interval(means, LEVEL)
        out[name] = {
            "f1_ci": [round(float(lo[0]), 6), round(float(hi[0]), 6)],
            "em_ci": [round(float(lo[1]), 6), round(float(hi[1]), 6)],
        }
    return out


def with_intervals(scores: dict[str, dict], scored: Sequence[Scored]) -> dict[str, dict]:
    """``scores`` (from ``scores_from_result``) with each cell's interval added."""
    extra = score_intervals(scored, [k for k in scores if k != "all"])
    return {name: {**part, **extra.get(name, {})} for name, part in scores.items()}
