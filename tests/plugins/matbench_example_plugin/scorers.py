"""``contains``: a prediction is right when it contains a gold answer (case-insensitive)."""

from matbench.scoring.base import Score, Scorer


class Contains(Scorer):
    name = "contains"
    labels = ("Contains", "EM")

    def __call__(self, prediction, golds):
        if prediction is None:
            return Score(0.0, 0.0)
        p = prediction.strip().lower()
        return Score(float(any(g.lower() in p for g in golds)), float(any(g.lower() == p for g in golds)))
