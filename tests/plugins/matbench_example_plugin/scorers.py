"""``contains``: a prediction is right when it contains a gold answer (case-insensitive)."""

from collections.abc import Sequence

from matbench.scoring.base import Score, Scorer


class Contains(Scorer):
    name = "contains"
    labels = ("Contains", "EM")

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        if prediction is None:
            return Score(0.0, 0.0)
        p = prediction.strip().lower()
        hit = any(g.strip().lower() in p for g in golds)
        exact = any(g.strip().lower() == p for g in golds)
        return Score(float(hit), float(exact))
