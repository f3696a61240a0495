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

from matbench.models.cost import Price, billed_usage, cost_block
from matbench.records.run_dir import RunDir
from matbench.scoring.reader import PredRow, RunScorer
from matbench.scoring.table import ScoreTable
from matbench.tasks import TaskSpec
from matbench.tools.base import turn_calls

_INTS = ("turns", "tool_errors", "tokens_in", "tokens_out")
# Token counts beyond input/output (matbench.models.cost): every call's, and only the calls the API billed.
_USAGE = ("cached_input", "reasoning", "unreported")
_BILLED = ("input", "cached_input", "output")
# per-row flags of how a sample ended (a byte each)
_CALLED_TOOL = 1  # some tool ran, or the model made a native function call (answer() included)
_NO_ANSWER = 2  # ended without an answer (status ok, no prediction: the call limit came first)


def called_a_tool(raw: dict, calls: dict[str, int]) -> bool:
    """Whether the sample used its tools at all: a tool ran (the record's counts), or some turn holds a native
    function call (an ``answer`` call too: the model does use native tool calls)."""
    if any(calls.values()):
        return True
    for turn in raw.get("trajectory") or []:
        if isinstance(turn, dict) and any("function" in c for c in turn_calls(turn)):
            return True
    return False


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
        self._flags = bytearray()  # _CALLED_TOOL | _NO_ANSWER per row

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
        status = str(raw.get("status", "ok"))
        flags = _CALLED_TOOL if called_a_tool(raw, calls) else 0
        if status == "ok" and r.prediction is None:
            flags |= _NO_ANSWER
        # a rerun of an id (--retry-errors) replaces its row in place: it keeps its first-seen position
        i = self._scores.put(r.id, s.split, s.f1, s.em, s.missing, s.error)
        if i == len(self._status):  # a new id: a new row at the end
            self._status.append(0)
            self._flags.append(0)
            for arr in self._ints.values():
                arr.append(0)
            for arr in self._tools.values():
                arr.append(0)
        self._status[i] = self._code(self._statuses, status)
        self._flags[i] = flags
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

    def tool_use(self) -> tuple[int, int, int]:
        """(samples that ran to their end, those of them that called no tool, those that never answered):
        API and input errors are left out, they never had the chance."""
        ok = self._statuses.index("ok") if "ok" in self._statuses else -1
        ran = no_tool = no_answer = 0
        for status, flags in zip(self._status, self._flags, strict=True):
            if status == ok:
                ran += 1
                no_tool += not flags & _CALLED_TOOL
                no_answer += bool(flags & _NO_ANSWER)
        return ran, no_tool, no_answer

    def counts(self) -> dict:
        tool_calls = {name: sum(arr) for name, arr in self._tools.items() if any(arr)}
        _, no_tool, no_answer = self.tool_use()
        return {
            "errors": self._count_status("error"),
            "input_errors": self._count_status("input_error"),
            "no_tool_calls": no_tool,
            "no_answer": no_answer,
            "calls": sum(self._ints["turns"]),
            "tool_calls": tool_calls,
            "tool_errors": sum(self._ints["tool_errors"]),
            "tokens": self._usage(),
        }

    def summary(
        self,
        *,
        model: str,
        run_dir: str,
        fingerprint: str,
        sample_ids: list[str],
        duration: float,
        layout: str | None = None,
    ) -> dict:
        """``summary.json``: the scores and the run's counts (``finished`` when every sample id is recorded).
        ``layout`` is the protocol's (config.json): a ``direct`` run has no tools, so no count of samples that
        called none; the native ``tools`` layout gets its own hint when most samples called no tool."""
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
            "no_tool_calls": counts["no_tool_calls"],
            "no_answer": counts["no_answer"],
            "tokens": counts["tokens"],
            "duration_s": round(duration, 3),
        }
        if layout == "direct":
            del run["no_tool_calls"]
        elif hint := self.no_tool_hint(native_tools=layout == "tools"):
            run["no_tool_hint"] = hint
        return {**self.scores(), "run": run}

    def _usage(self) -> dict[str, int]:
        """Every token count of the run (details only where some call reported them)."""
        usage = {"input": sum(self._ints["tokens_in"]), "output": sum(self._ints["tokens_out"])}
        usage.update({k: n for k in _USAGE if (n := sum(self._ints[f"tokens_{k}"]))})
        return usage

    def _billed(self) -> dict[str, int]:
        return {k: sum(self._ints[f"billed_{k}"]) for k in _BILLED}

    def cost(self, price: Price | None) -> dict:
        """summary.json's ``cost`` block (matbench.models.cost) over the latest record of every id."""
        return cost_block(self._usage(), self._billed(), len(self._index), price)

    def spent(self, price: Price) -> float:
        """$ of the recorded calls that went to the API (what ``--max-cost`` counts)."""
        return price.cost(self._billed())

    def no_tool_hint(self, native_tools: bool) -> str | None:
        """One line when most samples (or all) called no tool; for the native ``tools`` protocol it names the
        usual cause (a server that does not turn the model's calls into native tool calls)."""
        ran, no_tool, _ = self.tool_use()
        if no_tool * 2 <= ran:  # most samples used their tools (or none ran)
            return None
        text = f"{no_tool} of {ran} samples called no tool"
        if native_tools:
            return (
                f"{text}: is the model using native tool calls? --protocol tools needs a server that returns "
                "them (vLLM: --enable-auto-tool-choice and a --tool-call-parser for the model), or use a tag protocol"
            )
        return f"{text}: the model answered without the task's tools; check the protocol suits the model"
