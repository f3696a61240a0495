"""Read a predictions file (the authors' result format or matbench's ``predictions.jsonl``) and score it."""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

from matbench.data.gold_index import GoldCheck
from matbench.data.sample import Sample
from matbench.errors import ConfigError, InputError
from matbench.records.files import open_input
from matbench.records.run_dir import PREDICTIONS_FILE, RunDir, decode_utf8
from matbench.scoring.reader import PredRow, RunScorer
from matbench.tasks import TaskSpec, get_task


def read_predictions(path: str | Path) -> list[PredRow]:
    """Rows of a predictions file; a run directory means its ``predictions.jsonl`` (latest row per id)."""
    path = _predictions_path(path)
    if _is_jsonl(path):
        rows = list(iter_jsonl_predictions(path))  # JSON Lines: read one line at a time
    else:
        try:
            with open_input(path) as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read: {exc}", file=str(path)) from exc
        rows = _authors_rows(path, decode_utf8(data, path))  # the authors' format: one JSON list
    if not rows:
        raise InputError(EMPTY, file=str(path))
    return rows


EMPTY = "holds no predictions (an empty file scores nothing)"


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
                question=raw["query"] if isinstance(raw.get("query"), str) else None,
            )
        )
    return rows


def check_ids(rows: list[PredRow], spec: TaskSpec, samples: list[Sample] | None, source: str) -> None:
    """Every id must belong to the task, once; positional ids map onto the task's sample order."""
    seen: dict[str, int] = {}
    for r in rows:
        if r.id in seen:
            raise InputError(f"duplicate id {r.id} (also row {seen[r.id]})", file=source, row=r.row)
        seen[r.id] = r.row
    check = IdCheck(spec, samples, source)
    golds = GoldCheck(spec) if samples is None else None
    for r in rows:
        check(r)
        if golds is not None:
            golds(r.row, r.id, r.gold, r.positional)
    if golds is not None and (refusal := golds.refusal(source)):
        raise InputError(refusal)


class IdCheck:
    """One row at a time (a streamed file): its id must belong to the task; a positional id takes the task's
    id at that position."""

    def __init__(self, spec: TaskSpec, samples: list[Sample] | None, source: str) -> None:
        self.spec, self.source = spec, source
        self.order = [s.id for s in samples] if samples is not None else None
        self.known = set(self.order) if self.order is not None else None
        ranges = spec.splits.ranges
        self.range = (
            (min(a for a, _ in ranges.values()), max(b for _, b in ranges.values())) if ranges else None
        )

    def __call__(self, r: PredRow) -> PredRow:
        spec, source = self.spec, self.source
        if self.order is not None:
            if r.positional:
                if r.row > len(self.order):
                    raise InputError(
                        f"row {r.row} has no id and the task {spec.name} has only {len(self.order)} samples",
                        file=source,
                        row=r.row,
                    )
                r.id = self.order[r.row - 1]
            elif r.id not in self.known:
                raise InputError(f"id {r.id} is not in task {spec.name}", file=source, row=r.row)
            return r
        if self.range is not None:
            lo, hi = self.range
            try:
                num = int(r.id)
            except ValueError:
                num = None
            if num is None or not lo <= num <= hi:
                raise InputError(
                    f"id {r.id} is not in task {spec.name} (ids {lo}-{hi})", file=source, row=r.row
                )
        return r


def score_rows(
    rows: Iterable[PredRow],
    spec: TaskSpec,
    scoring: str | None,
    samples: list[Sample] | None = None,
) -> dict:
    """The ``matbench score --json`` object: task, scoring, n, missing, f1, em, splits (fractions); aggregate
    keeps running sums, so rows stream."""
    scorer = RunScorer(spec, scoring)
    return scorer.result(scorer.rows(rows, samples))


def score_file(
    path: str | Path,
    spec: TaskSpec,
    scoring: str | None = None,
    samples: list[Sample] | None = None,
) -> dict:
    """Score a file streamed: JSON Lines hold one row in memory at a time (the authors' JSON list is read whole,
    as it must be), so a 12,576-sample run scores in the memory of a small one."""
    path = _predictions_path(path)
    golds = None
    if _is_jsonl(path):
        check = IdCheck(spec, samples, str(path))  # ids are unique: the reader keeps the latest line of each
        rows: Iterable[PredRow] = (check(r) for r in iter_jsonl_predictions(path))
        # A plain file (not a run, whose config names its task) scored without the data: the task's
        # shipped gold hashes tell whether these answers are the task's at all.
        if samples is None and run_config_of(path) is None:
            rows = _gold_checked(rows, golds := GoldCheck(spec))
    else:
        rows = read_predictions(path)
        check_ids(rows, spec, samples, str(path))  # the gold check too
    result = score_rows(rows, spec, scoring, samples)
    if golds is not None and (refusal := golds.refusal(str(path))):
        raise InputError(refusal)
    if result["n"] == 0 and not result["errors"]:
        raise InputError(EMPTY, file=str(path))
    return result


def _gold_checked(rows: Iterable[PredRow], check: GoldCheck) -> Iterator[PredRow]:
    for r in rows:
        check(r.row, r.id, r.gold, r.positional)
        yield r


def _predictions_path(path: str | Path) -> Path:
    path = Path(path)
    return path / PREDICTIONS_FILE if path.is_dir() else path


def _is_jsonl(path: Path) -> bool:
    """JSON Lines unless the first non-blank byte opens a list (the authors' format); an empty file is JSONL."""
    try:
        with open_input(path) as fh:
            while chunk := fh.read(4096):
                if stripped := chunk.lstrip():
                    return stripped[:1] != b"["
    except FileNotFoundError:
        raise InputError("predictions file not found", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc
    return True


def _record_lines(path: Path) -> Iterator[tuple[int, int, dict]]:
    """(row, byte offset, record) of each line of a JSON Lines predictions file, each checked."""
    with open_input(path) as fh:
        offset = 0
        for no, raw in enumerate(fh, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                    file=str(path),
                    row=no,
                ) from None
            yield no, start, _checked_row(path, line, no)


def _checked_row(path: Path, line: str, no: int) -> dict:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON Lines: {exc}", file=str(path), row=no) from exc
    if not isinstance(raw, dict):
        raise InputError("row is not an object", file=str(path), row=no)
    for key, why in (("id", "row has no 'id'"), ("gold", "row has no gold field 'gold'")):
        if key not in raw:
            raise InputError(why, file=str(path), row=no)
    if "prediction" not in raw:
        raise InputError("row has no prediction field 'prediction'", file=str(path), row=no)
    return raw


def iter_jsonl_predictions(path: Path) -> Iterator[PredRow]:
    """The latest row of each id of a JSON Lines file, in first-seen order, streamed in two passes: the ids
    first (every line checked), then the rows. Only ids and offsets are held, and only while ids repeat."""
    index: dict[str, int] = {}  # id -> slot in rows/offsets (its latest line)
    rows, offsets = array("q"), array("q")
    lines = 0
    for no, start, raw in _record_lines(path):
        lines += 1
        slot = index.setdefault(str(raw["id"]), len(rows))
        if slot == len(rows):
            rows.append(no)
            offsets.append(start)
        else:  # a resumed run (--retry-errors) appended a newer line for the same id: the latest wins
            rows[slot], offsets[slot] = no, start
    if len(index) == lines:  # no id repeats (the usual case): every line, in one more sequential pass
        del index, rows, offsets
        for no, _, raw in _record_lines(path):
            yield PredRow.from_record(raw, no, file=str(path))
        return
    del index
    with open_input(path) as fh:
        for no, start in zip(rows, offsets, strict=True):
            fh.seek(start)
            yield PredRow.from_record(json.loads(fh.readline()), no, file=str(path))
