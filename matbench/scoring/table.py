"""Per-sample scores aggregated: means over all rows and per split, in one pass or packed by row."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    """One scored sample as the aggregator needs it."""

    id: str
    split: str | None
    f1: float
    em: float
    missing: bool = False
    error: bool = False  # an API error: not a score (counted apart, rerun with --retry-errors)


def aggregate(rows: Iterable[Scored], split_order: Sequence[str] = ()) -> dict:
    """Means over the scored rows and per split (by each row's split field), with n per split. Fractions in [0, 1].

    A row that ended in an API error is not a score: it is counted in ``errors`` and left out of n, F1 and EM
    (a failed call is not a wrong answer). One pass with running sums (rows may be a generator: nothing is
    held per row, at any number of samples).
    """
    n = missing = errors = 0
    f1 = em = 0.0
    parts: dict[str, list] = {}  # split -> [n, f1 sum, em sum]
    for r in rows:
        if r.error:
            errors += 1
            continue
        n += 1
        missing += r.missing
        f1 += r.f1
        em += r.em
        if r.split is not None:
            part = parts.get(r.split)
            if part is None:
                part = parts[r.split] = [0, 0.0, 0.0]
            part[0] += 1
            part[1] += r.f1
            part[2] += r.em
    out: dict = {
        "n": n,
        "missing": missing,
        "errors": errors,
        "f1": f1 / n if n else 0.0,
        "em": em / n if n else 0.0,
        "splits": {},
    }
    names = [s for s in split_order if s in parts]
    names += sorted(s for s in parts if s not in names)
    for name in names:
        k, f, e = parts[name]
        out["splits"][name] = {"n": k, "f1": f / k, "em": e / k}
    return out


class ScoreTable:
    """Per-sample scores packed by row, in first-seen id order: ~100 bytes a sample at any size.

    A later score for the same id replaces the earlier one in place (the latest line of a predictions file wins
    and keeps its first place), so a streamed file aggregates exactly as its deduplicated rows would.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}  # id -> row
        self.f1 = array("d")
        self.em = array("d")
        self.missing = bytearray()
        self.error = bytearray()
        self.split = array("H")  # into self.splits; 0 is no split
        self.splits: list[str | None] = [None]

    def __len__(self) -> int:
        return len(self.f1)

    def put(
        self, sample_id: str, split: str | None, f1: float, em: float, missing: bool, error: bool = False
    ) -> int:
        """Store a sample's scores; its row (new, or the one it already had)."""
        row = self.index.get(sample_id)
        if row is None:
            row = self.index[sample_id] = len(self.f1)
            self.f1.append(f1)
            self.em.append(em)
            self.missing.append(missing)
            self.error.append(error)
            self.split.append(0)
        else:
            self.f1[row], self.em[row], self.missing[row], self.error[row] = f1, em, missing, error
        if split not in self.splits:
            self.splits.append(split)
        self.split[row] = self.splits.index(split)
        return row

    def rows(self) -> Iterator[Scored]:
        for sample_id, i in self.index.items():
            yield Scored(
                sample_id, self.splits[self.split[i]], self.f1[i], self.em[i], bool(self.missing[i]),
                bool(self.error[i]),
            )

    def aggregate(self, split_order: Sequence[str] = ()) -> dict:
        return aggregate(self.rows(), split_order)
