"""Paired bootstrap of a mean, exact and fast: resampling n values with replacement is a multinomial draw over
the distinct values, so the frequent values (ties, +-1 in F1/EM differences) are drawn as multinomial counts in
one call and only the rare values are drawn index by index. 12,576 pairs x 10,000 resamples stays well under a
second on typical data (bench/bench_compare.py) and never builds the full resamples x n index matrix.
"""

from __future__ import annotations

import numpy as np

HEAVY_MIN = 16  # a value this frequent is cheaper as a multinomial category than as individual draws
MAX_HEAVY = 64
CHUNK = 1 << 17  # individual draws held at once: small enough to stay in cache


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` resamples (with replacement, size n) of the rows of ``values`` (n, m) -> (R, m)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n, m = values.shape
    if n == 0:
        return np.full((resamples, m), np.nan)
    uniq, inverse, counts = np.unique(values, axis=0, return_inverse=True, return_counts=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(-counts, kind="stable")
    heavy = order[counts[order] >= HEAVY_MIN][:MAX_HEAVY]
    is_heavy = np.zeros(len(uniq), dtype=bool)
    is_heavy[heavy] = True
    tail = values[~is_heavy[inverse]]
    pvals = np.append(counts[heavy] / n, len(tail) / n)
    drawn = rng.multinomial(n, pvals, size=resamples)  # (R, heavy + 1)
    sums = drawn[:, :-1].astype(np.float64) @ uniq[heavy]
    if len(tail):
        _add_tail_sums(sums, tail, drawn[:, -1], rng)
    return sums / n


def _add_tail_sums(sums: np.ndarray, tail: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> None:
    """Add, per resample r, the sum of k[r] rows drawn uniformly from ``tail``: in chunks of resamples."""
    columns = [np.ascontiguousarray(c) for c in tail.T]
    cum = np.cumsum(k)
    start = 0
    while start < len(k):
        before = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, before + CHUNK, side="right")), start + 1)
        counts = k[start:stop]
        total = int(counts.sum())
        if total:
            idx = rng.integers(0, len(tail), size=total, dtype=np.intp)
            filled = counts > 0
            starts = (np.cumsum(counts) - counts)[filled]
            block = sums[start:stop]
            for j, col in enumerate(columns):
                block[filled, j] += np.add.reduceat(col[idx], starts)
        start = stop


def confidence_interval(means: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval per column: shape (2, m)."""
    alpha = (1 - level) / 2
    return np.percentile(means, [100 * alpha, 100 * (1 - alpha)], axis=0)
