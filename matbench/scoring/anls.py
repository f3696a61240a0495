"""``anls``: Average Normalized Levenshtein Similarity, as text-reading benchmarks (DocVQA, InfoVQA) report it.

Per gold answer: both strings lower-cased, trimmed and with runs of whitespace collapsed to one space; the
normalized edit distance is ``Levenshtein(gold, prediction) / max(len(gold), len(prediction))``. A sample
scores ``1 - min(distance)`` over its gold answers, or 0 when that similarity is below the threshold (0.5),
which is the rule lmms-eval and VLMEvalKit apply (a similarity of exactly 0.5 still counts). The second
number is exact match after the same normalization. The run's ANLS is the mean over samples, as for F1.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from matbench.scoring.base import Score, Scorer


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().split())


class Anls(Scorer):
    name = "anls"
    labels = ("ANLS", "EM")
    params = ("threshold",)

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], not {threshold}")

    def similarity(self, prediction: str, gold: str) -> float:
        """1 - normalized edit distance of the normalized strings (two empty strings are identical)."""
        p, g = _norm(prediction), _norm(gold)
        longest = max(len(p), len(g))
        return 1.0 if longest == 0 else 1.0 - Levenshtein.distance(p, g) / longest

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        if prediction is None or not golds:
            return Score(0.0, 0.0)
        best = max(self.similarity(prediction, g) for g in golds)
        exact = any(_norm(prediction) == _norm(g) for g in golds)
        return Score(best if best >= self.threshold else 0.0, float(exact))
