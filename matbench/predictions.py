"""Read a predictions file (the authors' result format or matbench's ``predictions.jsonl``) and score it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from matbench.data.sample import Sample
from matbench.errors import ConfigError, InputError
from matbench.records import PREDICTIONS_FILE, RunDir, decode_utf8
from matbench.scoring import Scored, aggregate, get_scorer
from matbench.tasks import TaskSpec, get_task


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
    if not path.exists():
        raise InputError("predictions file not found", file=str(path))
    try:
        with path.open("rb") as fh:
            if _first_byte(fh) == b"[":  # the authors' format: one JSON list, read whole
                fh.seek(0)
                rows = _authors_rows(path, decode_utf8(fh.read(), path))
            else:
                fh.seek(0)
                rows = _jsonl_rows(path, _utf8_lines(path, fh))  # JSON Lines: streamed, a line at a time
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    if not rows:
        raise InputError("holds no predictions (an empty file scores nothing)", file=str(path))
    return rows


def _first_byte(fh: BinaryIO) -> bytes:
    while chunk := fh.read(4096):
        if stripped := chunk.lstrip():
            return stripped[:1]
    return b""


def _utf8_lines(path: Path, fh: BinaryIO) -> Iterator[str]:
    """Each line as text; bytes that are not UTF-8 are one clear error naming the row and column."""
    for no, raw in enumerate(fh, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                file=str(path),
                row=no,
            ) from None


def run_config_of(path: str | Path) -> dict | None:
    """The ``config.json`` of a run directory, or of the run a ``predictions.jsonl`` belongs to; else None."""
    path = Path(path)
    run = RunDir(path if path.is_dir() else path.parent)
    if path.is_dir() or path.name == PREDICTIONS_FILE:
        if run.exists():
            return run.read_config()
    return None


def task_of(path: str | Path, task: str | None) -> tuple[TaskSpec, dict | None]:
    """A run's task comes from its config (a different ``--task`` is refused); a plain file needs ``--task``."""
    config = run_config_of(path)
    if config is not None:
        name = str((config.get("task") or {}).get("name"))
        if task and task != name:
            raise ConfigError(
                f"{path} is a run of task {name}, not {task}: leave out --task or pick the right run"
            )
        return get_task(name), config
    if not task:
        raise ConfigError(f"{path} is not a run directory: give --task to read it as a predictions file")
    return get_task(task), None


def size_warning(spec: TaskSpec, n: int, label: str) -> str | None:
    """A line for stderr when ``n`` is not the whole task: these numbers are not the task's."""
    if spec.size is None or n == int(spec.size):
        return None
    return (
        f"warning: {label} holds {n} of the {spec.size} samples of {spec.name}: not the task's full numbers"
    )


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


def scored_rows(
    rows: list[PredRow],
    spec: TaskSpec,
    scoring: str,
    samples: list[Sample] | None = None,
) -> list[Scored]:
    """Each row's F1/EM and split."""
    scorer = get_scorer(scoring, cjk=spec.cjk)
    split_of_sample = {s.id: s.split for s in samples} if samples is not None else {}
    scored = []
    for r in rows:
        split = r.split or split_of_sample.get(r.id) or spec.splits.split_of(r.id)
        s = scorer(r.prediction, r.gold)
        scored.append(Scored(r.id, split, s.f1, s.em, missing=r.prediction is None))
    return scored


def score_rows(
    rows: list[PredRow],
    spec: TaskSpec,
    scoring: str,
    samples: list[Sample] | None = None,
) -> dict:
    """The ``matbench score --json`` object: task, scoring, n, missing, f1, em, splits (fractions)."""
    agg = aggregate(scored_rows(rows, spec, scoring, samples), spec.splits.names)
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
