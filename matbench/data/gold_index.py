"""Which gold answers belong to a task, without its data: one short hash per sample id.

`matbench score FILE --task T` has only the file's own gold answers (the hub may be out of reach). A
MAT-Search file scored as MAT-Coding fits MAT-Coding's id range (1-150 inside 1-200) and would print a
table; the per-id hashes in ``tasks/gold/<task>.tsv.gz`` (built from the official gold set by
``scripts/build-gold-index.py``, checked against ``data.gold_sha256`` by the tests) let the reader refuse
a file whose answers are not the task's.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from matbench.tasks import TaskSpec

#: hex digits kept per sample: a collision between two different gold sets is a 1 in 4 billion chance
DIGITS = 8


def answers_hash(answers: Sequence[str]) -> str:
    """Order-free hash of a sample's gold answers (whitespace at the ends ignored)."""
    canon = json.dumps(sorted(str(a).strip() for a in answers), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:DIGITS]


def index_path(spec: TaskSpec) -> Path:
    return spec.path.parent / "gold" / f"{spec.name}.tsv.gz"


@lru_cache(maxsize=16)
def _load(path: Path) -> dict[str, str] | None:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return dict(line.rstrip("\n").split("\t", 1) for line in fh if line.strip())
    except FileNotFoundError:
        return None


def gold_index(spec: TaskSpec) -> dict[str, str] | None:
    """``id -> answers_hash`` of the task's official gold set; None when the task ships none (plug-ins)."""
    return _load(index_path(spec))


def write_index(path: Path, rows: Iterable[tuple[str, Sequence[str]]]) -> int:
    """Write ``id<TAB>hash`` lines, gzipped without a timestamp so the file is reproducible."""
    lines = [f"{rid}\t{answers_hash(golds)}\n" for rid, golds in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:
        fh.write("".join(lines).encode("utf-8"))
    return len(lines)


class GoldCheck:
    """Counts rows whose gold answers are not the task's official ones for their id."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.index = gold_index(spec)
        self.order = list(self.index) if self.index is not None else []  # the official sample order
        self.rows = self.foreign = 0
        self.first: tuple[int, str] | None = None

    def __call__(self, row_no: int, sample_id: str, golds: Sequence[str], positional: bool = False) -> None:
        """``positional``: the row has no id (the authors' files): its place in the file is its sample."""
        if self.index is None:
            return
        if positional and 0 < row_no <= len(self.order):
            sample_id = self.order[row_no - 1]
        self.rows += 1
        if self.index.get(sample_id) != answers_hash(golds):
            self.foreign += 1
            if self.first is None:
                self.first = (row_no, sample_id)

    def refusal(self, source: str) -> str | None:
        """A line when most rows' answers are not this task's (another task's file), else None.

        A few differing answers (an edited local copy) are not refused: ``submit`` decides officialness.
        """
        if self.index is None or not self.rows or self.foreign * 2 <= self.rows:
            return None
        row, sid = self.first or (0, "?")
        return (
            f"{source}: {self.foreign} of {self.rows} rows have ids or gold answers that are not task "
            f"{self.spec.name}'s (first: row {row}, id {sid}); is this another task's file? "
            "give the right --task"
        )
