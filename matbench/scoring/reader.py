"""Record -> score, in one place: every command that scores a run (score, compare, submit, view, the running
totals of eval and merge) builds its scorer and reads prediction lines through this module, so a run scores
the same whichever command reads it.

* :class:`PredRow` is a prediction line, typed: matbench's ``predictions.jsonl`` of any schema version
  (round-2 lines carry no ``schema_version``) or a row of the authors' JSON list.
* :class:`RunScorer` is the scorer of a run: its name from the run's ``config.json`` (a ``--scoring``
  override, else the config's, else the task's default) and its parameters from the task spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matbench.errors import InputError
from matbench.records.run_dir import check_schema_version
from matbench.scoring.base import Score, Scorer, make_scorer
from matbench.scoring.table import Scored, aggregate

if TYPE_CHECKING:
    from matbench.data.sample import Sample
    from matbench.tasks import TaskSpec


@dataclass
class PredRow:
    """One prediction to score: id, gold answers, the prediction (None: missing) and the recorded split."""

    id: str
    gold: list[str]
    prediction: str | None
    split: str | None
    row: int
    positional: bool = False  # the id is the row's 1-based position (authors' files without ids)
    status: str = "ok"
    question: str | None = None  # shown by `matbench view`; never scored

    @classmethod
    def from_record(cls, raw: Mapping, row: int, *, file: str | None = None) -> PredRow:
        """A line of matbench's ``predictions.jsonl`` (holding id, gold and prediction); a line written by a
        newer matbench (a higher ``schema_version``) is refused rather than misread."""
        check_schema_version(raw, file=file, row=row)
        if "gold" not in raw:
            raise InputError("row has no gold field 'gold'", file=file, row=row)
        gold = raw["gold"]
        pred = raw.get("prediction")
        return cls(
            id=str(raw["id"]),
            gold=[str(g) for g in gold] if isinstance(gold, list) else [str(gold)],
            prediction=None if pred is None else str(pred),
            split=raw.get("split"),
            row=row,
            status=str(raw.get("status", "ok")),
            question=_text(raw.get("question")),
        )


def _text(x: object) -> str | None:
    return x if isinstance(x, str) else None


class RunScorer:
    """The scorer of one run (or one predictions file of a task) and the way its rows become :class:`Scored`."""

    def __init__(self, spec: TaskSpec, scoring: str | None = None) -> None:
        self.spec = spec
        self.name = scoring or spec.default_scoring
        self.scorer: Scorer = make_scorer(self.name, spec.scoring)

    @classmethod
    def of_run(cls, spec: TaskSpec, config: Mapping | None, override: str | None = None) -> RunScorer:
        """``override`` (``--scoring``), else the run's recorded scoring, else the task's default."""
        recorded = (config or {}).get("scoring")
        return cls(spec, override or (str(recorded) if recorded else None))

    @property
    def labels(self) -> tuple[str, str]:
        return self.scorer.labels

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        return self.scorer(prediction, golds)

    def split_of(self, row: PredRow, split_of_sample: Mapping[str, str | None] | None = None) -> str | None:
        """The recorded split, else the sample's, else the task's rule (ids 1-75 / 76-150)."""
        return row.split or (split_of_sample or {}).get(row.id) or self.spec.splits.split_of(row.id)

    def score(self, row: PredRow, split_of_sample: Mapping[str, str | None] | None = None) -> Scored:
        s = self.scorer(row.prediction, row.gold)
        return Scored(
            row.id,
            self.split_of(row, split_of_sample),
            s.f1,
            s.em,
            missing=row.prediction is None,
            error=row.status == "error",  # an API error is not a score: aggregate counts it apart
        )

    def score_record(self, raw: Mapping, row: int = 0, *, file: str | None = None) -> Scored:
        """A ``predictions.jsonl`` line straight to its score."""
        return self.score(PredRow.from_record(raw, row, file=file))

    def rows(self, rows: Iterable[PredRow], samples: list[Sample] | None = None) -> Iterator[Scored]:
        """Each row's score and split, one row at a time (rows may stream from a file of any size)."""
        split_of_sample = {s.id: s.split for s in samples} if samples is not None else None
        for r in rows:
            yield self.score(r, split_of_sample)

    def result(self, scored: Iterable[Scored]) -> dict:
        """The ``matbench score --json`` object: task, scoring, n, missing, f1, em, splits (fractions)."""
        return {"task": self.spec.name, "scoring": self.name, **aggregate(scored, self.spec.splits.names)}
