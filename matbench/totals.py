"""Running totals of a run: what ``summary.json`` needs, kept per sample id in a few small fields.

The runner adds each record as it finishes and a resumed run loads the file once, so the summary never re-reads
trajectories and memory stays small at any number of samples. A later line for the same id (``--retry-errors``)
replaces the earlier one, as in ``RunDir.iter_records``. Scores are recomputed from prediction and gold with the
run's scorer, exactly as ``score_rows`` does, so the totals equal a rescore of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from matbench.cost import Price, add_usage, billed_usage, cost_block, record_usage
from matbench.predictions import PredRow
from matbench.records import RunDir
from matbench.scoring import Scored, aggregate, get_scorer
from matbench.tasks import TaskSpec


@dataclass(slots=True)
class _Row:
    scored: Scored
    status: str
    turns: int
    tool_calls: tuple[tuple[str, int], ...]
    tool_errors: int
    tokens_in: int
    tokens_out: int
    usage: tuple[tuple[str, int], ...] = ()  # every token count (cached input, reasoning...): matbench.cost
    billed: tuple[tuple[str, int], ...] = ()  # the same, over the calls not answered by the response cache


class RunTotals:
    """Per-id compact rows plus the sums ``summary.json`` reports."""

    def __init__(self, spec: TaskSpec, scoring: str) -> None:
        self.spec = spec
        self.scoring = scoring
        self._scorer = get_scorer(scoring, cjk=spec.cjk)
        self._rows: dict[str, _Row] = {}

    @classmethod
    def from_run(cls, run: RunDir, spec: TaskSpec, scoring: str) -> RunTotals:
        """One streaming pass over ``predictions.jsonl``."""
        totals = cls(spec, scoring)
        for _, _, raw in run.lines():
            totals.add(raw)
        return totals

    def add(self, raw: dict) -> None:
        """A record as written to ``predictions.jsonl`` (a dict with id, gold, prediction, ...)."""
        r = PredRow.from_record(raw, len(self._rows) + 1)
        split = r.split or self.spec.splits.split_of(r.id)
        s = self._scorer(r.prediction, r.gold)
        tokens = raw.get("tokens") or {}
        self._rows[r.id] = _Row(  # a rerun of an id keeps its first-seen place, as iter_records does
            scored=Scored(r.id, split, s.f1, s.em, missing=r.prediction is None),
            status=str(raw.get("status", "ok")),
            turns=int(raw.get("turns", 0) or 0),
            tool_calls=tuple((str(k), int(v)) for k, v in (raw.get("tool_calls") or {}).items()),
            tool_errors=int(raw.get("tool_errors", 0) or 0),
            tokens_in=int(tokens.get("input", 0) or 0),
            tokens_out=int(tokens.get("output", 0) or 0),
            usage=tuple(record_usage(raw).items()),
            billed=tuple(billed_usage(raw).items()),
        )

    def ids(self) -> set[str]:
        return set(self._rows)

    def finished_ids(self, *, retry_errors: bool = False) -> set[str]:
        """Ids a resumed run skips: every recorded sample, except ``error`` ones under ``--retry-errors``."""
        return {i for i, r in self._rows.items() if not (retry_errors and r.status == "error")}

    def scores(self) -> dict:
        """The ``matbench score --json`` object of the run."""
        agg = aggregate((r.scored for r in self._rows.values()), self.spec.splits.names)
        return {"task": self.spec.name, "scoring": self.scoring, **agg}

    def counts(self) -> dict:
        tool_calls: dict[str, int] = {}
        for r in self._rows.values():
            for k, v in r.tool_calls:
                tool_calls[k] = tool_calls.get(k, 0) + v
        rows = self._rows.values()
        return {
            "errors": sum(r.status == "error" for r in rows),
            "input_errors": sum(r.status == "input_error" for r in rows),
            "calls": sum(r.turns for r in rows),
            "tool_calls": tool_calls,
            "tool_errors": sum(r.tool_errors for r in rows),
            "tokens": self._usage("usage"),
        }

    def _usage(self, which: str) -> dict[str, int]:
        total = {"input": 0, "output": 0}
        for r in self._rows.values():
            add_usage(total, dict(getattr(r, which)))
        return total

    def cost(self, price: Price | None) -> dict:
        """summary.json's ``cost`` block (matbench.cost) over the latest record of every id."""
        return cost_block(self._usage("usage"), self._usage("billed"), len(self._rows), price)

    def spent(self, price: Price) -> float:
        """$ of the recorded calls that went to the API (what ``--max-cost`` counts)."""
        return price.cost(self._usage("billed"))

    def summary(
        self, *, model: str, run_dir: str, fingerprint: str, sample_ids: list[str], duration: float
    ) -> dict:
        """``summary.json``: the scores and the run's counts (``finished`` when every sample id is recorded)."""
        counts = self.counts()
        run = {
            "model": model,
            "run_dir": run_dir,
            "fingerprint": fingerprint,
            "samples": len(sample_ids),
            "finished": all(i in self._rows for i in sample_ids),
            "errors": counts["errors"],
            "input_errors": counts["input_errors"],
            "calls": counts["calls"],
            "tool_calls": counts["tool_calls"],
            "tool_errors": counts["tool_errors"],
            "tokens": counts["tokens"],
            "duration_s": round(duration, 3),
        }
        return {**self.scores(), "run": run}
