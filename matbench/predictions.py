"""Read a predictions file (the authors' result format or matbench's ``predictions.jsonl``) and score it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from matbench.data.sample import Sample
from matbench.errors import InputError
from matbench.records import PREDICTIONS_FILE
from matbench.scoring import Scored, aggregate, get_scorer
from matbench.tasks import TaskSpec


@dataclass
class PredRow:
    id: str
    gold: list[str]
    prediction: str | None
    split: str | None
    row: int
    positional: bool = False  # the id is the row's 1-based position (authors' files without ids)
    status: str = "ok"

    @classmethod
    def from_record(cls, raw: dict, row: int) -> PredRow:
        """A line of matbench's ``predictions.jsonl`` (already checked to hold id, gold and prediction)."""
        gold = raw["gold"]
        return cls(
            id=str(raw["id"]),
            gold=[str(g) for g in gold] if isinstance(gold, list) else [str(gold)],
            prediction=None if raw["prediction"] is None else str(raw["prediction"]),
            split=raw.get("split"),
            row=row,
            status=str(raw.get("status", "ok")),
        )


def read_predictions(path: str | Path) -> list[PredRow]:
    """Rows of a predictions file; a run directory means its ``predictions.jsonl`` (latest row per id)."""
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    try:
        with path.open(encoding="utf-8") as fh:
            if _first_char(fh) == "[":  # the authors' format: one JSON list, read whole
                fh.seek(0)
                return _authors_rows(path, fh.read())
            fh.seek(0)
            return _jsonl_rows(path, fh)  # JSON Lines: streamed, one line in memory at a time
    except FileNotFoundError:
        raise InputError("predictions file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc


def _first_char(fh: TextIO) -> str:
    while chunk := fh.read(4096):
        if stripped := chunk.lstrip():
            return stripped[0]
    return ""


def _authors_rows(path: Path, text: str) -> list[PredRow]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}", file=str(path)) from exc
    rows = []
    for no, raw in enumerate(data, 1):
        if not isinstance(raw, dict):
            raise InputError("row is not an object", file=str(path), row=no)
        if "gt" not in raw:
            raise InputError("row has no gold field 'gt'", file=str(path), row=no)
        if "pred_answer" not in raw:
            raise InputError("row has no prediction field 'pred_answer'", file=str(path), row=no)
        gold = raw["gt"]
        rid = raw.get("id")
        rows.append(
            PredRow(
                id=str(rid) if rid is not None else str(no),
                gold=[str(g) for g in gold] if isinstance(gold, list) else [str(gold)],
                prediction=None if raw["pred_answer"] is None else str(raw["pred_answer"]),
                split=raw.get("split"),
                row=no,
                positional=rid is None,
            )
        )
    return rows


def _jsonl_rows(path: Path, lines: Iterable[str]) -> list[PredRow]:
    by_id: dict[str, PredRow] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON Lines: {exc}", file=str(path), row=no) from exc
        if not isinstance(raw, dict):
            raise InputError("row is not an object", file=str(path), row=no)
        if "id" not in raw:
            raise InputError("row has no 'id'", file=str(path), row=no)
        if "gold" not in raw:
            raise InputError("row has no gold field 'gold'", file=str(path), row=no)
        if "prediction" not in raw:
            raise InputError("row has no prediction field 'prediction'", file=str(path), row=no)
        # A resumed run (--retry-errors) appends a newer line for the same id: the latest wins.
        by_id[str(raw["id"])] = PredRow.from_record(raw, no)
    return list(by_id.values())


def check_ids(rows: list[PredRow], spec: TaskSpec, samples: list[Sample] | None, source: str) -> None:
    """Every id must belong to the task; positional ids map onto the task's sample order."""
    seen: dict[str, int] = {}
    for r in rows:
        if r.id in seen:
            raise InputError(f"duplicate id {r.id} (also row {seen[r.id]})", file=source, row=r.row)
        seen[r.id] = r.row
    if samples is not None:
        order = [s.id for s in samples]
        known = set(order)
        for r in rows:
            if r.positional:
                if r.row > len(order):
                    raise InputError(
                        f"row {r.row} has no id and the task {spec.name} has only {len(order)} samples",
                        file=source,
                        row=r.row,
                    )
                r.id = order[r.row - 1]
            elif r.id not in known:
                raise InputError(f"id {r.id} is not in task {spec.name}", file=source, row=r.row)
        return
    ranges = spec.splits.ranges
    if not ranges:
        return
    lo = min(a for a, _ in ranges.values())
    hi = max(b for _, b in ranges.values())
    for r in rows:
        try:
            num = int(r.id)
        except ValueError:
            num = None
        if num is None or not lo <= num <= hi:
            raise InputError(f"id {r.id} is not in task {spec.name} (ids {lo}-{hi})", file=source, row=r.row)


def score_rows(
    rows: list[PredRow],
    spec: TaskSpec,
    scoring: str,
    samples: list[Sample] | None = None,
) -> dict:
    """The ``matbench score --json`` object: task, scoring, n, missing, f1, em, splits (fractions)."""
    scorer = get_scorer(scoring, cjk=spec.cjk)
    split_of_sample = {s.id: s.split for s in samples} if samples is not None else {}
    scored = []
    for r in rows:
        split = r.split or split_of_sample.get(r.id) or spec.splits.split_of(r.id)
        s = scorer(r.prediction, r.gold)
        scored.append(Scored(r.id, split, s.f1, s.em, missing=r.prediction is None))
    agg = aggregate(scored, spec.splits.names)
    return {"task": spec.name, "scoring": scoring, **agg}


def score_file(
    path: str | Path,
    spec: TaskSpec,
    scoring: str | None = None,
    samples: list[Sample] | None = None,
) -> dict:
    rows = read_predictions(path)
    check_ids(rows, spec, samples, str(path))
    return score_rows(rows, spec, scoring or spec.default_scoring, samples)
