"""Running totals of a run: what ``summary.json`` needs, kept per sample in a few packed numbers.

The runner adds each record as it finishes and a resumed run loads the file once, so the summary never re-reads
trajectories and memory stays small at any number of samples (about 100 bytes per sample: an id, two floats
and a few small integers in typed arrays). A later line for the same id (``--retry-errors``) replaces the earlier
one in place, as in ``RunDir.iter_records``. Scores are recomputed from prediction and gold with the run's
scorer (:class:`matbench.scoring.reader.RunScorer`, as every command builds it), so the totals equal a rescore
of the file.
"""

from __future__ import annotations

from array import array

from matbench.cost import Price, billed_usage, cost_block
from matbench.records import RunDir
from matbench.scoring.reader import PredRow, RunScorer
from matbench.scoring.table import ScoreTable
from matbench.tasks import TaskSpec

_INTS = ("turns", "tool_errors", "tokens_in", "tokens_out")
# Token counts beyond input/output (matbench.cost): every call's, and only the calls the API billed.
_USAGE = ("cached_input", "reasoning", "unreported")
_BILLED = ("input", "cached_input", "output")


class RunTotals:
    """Per-id packed rows (first-seen order) plus the sums ``summary.json`` reports."""

    def __init__(self, spec: TaskSpec, scoring: str | None) -> None:
        self.spec = spec
        self._scorer = RunScorer(spec, scoring)
        self.scoring = self._scorer.name
        self._scores = ScoreTable()  # ids, F1, EM, missing and split per row
        self._index = self._scores.index  # id -> row
        self._status = bytearray()  # index into self._statuses
        self._statuses: list[str] = []
        self._ints = {name: array("q") for name in _INTS}
        self._ints.update({f"tokens_{k}": array("q") for k in _USAGE})
        self._ints.update({f"billed_{k}": array("q") for k in _BILLED})
        self._tools: dict[str, array] = {}  # tool name -> calls per row

    @classmethod
    def from_run(cls, run: RunDir, spec: TaskSpec, scoring: str | None) -> RunTotals:
        """One streaming pass over ``predictions.jsonl``."""
        totals = cls(spec, scoring)
        for _, _, raw in run.lines():
            totals.add(raw)
        return totals

    @staticmethod
    def _code(table: list, value) -> int:
        try:
            return table.index(value)  # a handful of splits and statuses
        except ValueError:
            table.append(value)
            return len(table) - 1

    def add(self, raw: dict) -> None:
        """A record as written to ``predictions.jsonl`` (a dict with id, gold, prediction, ...)."""
        r = PredRow.from_record(raw, len(self._index) + 1)
        s = self._scorer.score(r)
        tokens = raw.get("tokens") or {}
        ints = {
            "turns": raw.get("turns", 0),
            "tool_errors": raw.get("tool_errors", 0),
            "tokens_in": tokens.get("input", 0),
            "tokens_out": tokens.get("output", 0),
            **{f"tokens_{k}": tokens.get(k, 0) for k in _USAGE},
        }
        billed = billed_usage(raw)
        ints.update({f"billed_{k}": billed.get(k, 0) for k in _BILLED})
        calls = {str(k): int(v) for k, v in (raw.get("tool_calls") or {}).items()}
        # a rerun of an id (--retry-errors) replaces its row in place: it keeps its first-seen position
        i = self._scores.put(r.id, s.split, s.f1, s.em, s.missing, s.error)
        if i == len(self._status):  # a new id: a new row at the end
            self._status.append(0)
            for arr in self._ints.values():
                arr.append(0)
            for arr in self._tools.values():
                arr.append(0)
        self._status[i] = self._code(self._statuses, str(raw.get("status", "ok")))
        for name, value in ints.items():
            self._ints[name][i] = int(value or 0)
        for name in calls.keys() - self._tools.keys():
            self._tools[name] = array("q", bytes(8 * len(self._status)))
        for name, arr in self._tools.items():
            arr[i] = calls.get(name, 0)

    def ids(self) -> set[str]:
        return set(self._index)

    def finished(self, sample_id: str, *, retry_errors: bool = False) -> bool:
        """Whether a resumed run skips this sample (recorded; not an ``error`` under ``--retry-errors``)."""
        row = self._index.get(sample_id)
        if row is None:
            return False
        return not (retry_errors and self._statuses[self._status[row]] == "error")

    def finished_ids(self, *, retry_errors: bool = False) -> set[str]:
        """Ids a resumed run skips: every recorded sample, except ``error`` ones under ``--retry-errors``."""
        if not retry_errors or "error" not in self._statuses:
            return set(self._index)
        error = self._statuses.index("error")
        return {rid for rid, i in self._index.items() if self._status[i] != error}

    def scores(self) -> dict:
        """The ``matbench score --json`` object of the run."""
        return {
            "task": self.spec.name,
            "scoring": self.scoring,
            **self._scores.aggregate(self.spec.splits.names),
        }

    def _count_status(self, status: str) -> int:
        return self._status.count(self._statuses.index(status)) if status in self._statuses else 0

    def counts(self) -> dict:
        tool_calls = {name: sum(arr) for name, arr in self._tools.items() if any(arr)}
        return {
            "errors": self._count_status("error"),
            "input_errors": self._count_status("input_error"),
            "calls": sum(self._ints["turns"]),
            "tool_calls": tool_calls,
            "tool_errors": sum(self._ints["tool_errors"]),
            "tokens": self._usage(),
        }

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
            "finished": all(i in self._index for i in sample_ids),
            "errors": counts["errors"],
            "input_errors": counts["input_errors"],
            "calls": counts["calls"],
            "tool_calls": counts["tool_calls"],
            "tool_errors": counts["tool_errors"],
            "tokens": counts["tokens"],
            "duration_s": round(duration, 3),
        }
        return {**self.scores(), "run": run}

    def _usage(self) -> dict[str, int]:
        """Every token count of the run (details only where some call reported them)."""
        usage = {"input": sum(self._ints["tokens_in"]), "output": sum(self._ints["tokens_out"])}
        usage.update({k: n for k in _USAGE if (n := sum(self._ints[f"tokens_{k}"]))})
        return usage

    def _billed(self) -> dict[str, int]:
        return {k: sum(self._ints[f"billed_{k}"]) for k in _BILLED}

    def cost(self, price: Price | None) -> dict:
        """summary.json's ``cost`` block (matbench.cost) over the latest record of every id."""
        return cost_block(self._usage(), self._billed(), len(self._index), price)

    def spent(self, price: Price) -> float:
        """$ of the recorded calls that went to the API (what ``--max-cost`` counts)."""
        return price.cost(self._billed())
