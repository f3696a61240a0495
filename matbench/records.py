"""Run directories: the only writer of run files.

``runs/<utc-timestamp>_<model>_<task>/`` holds ``config.json`` (the full resolved configuration),
``predictions.jsonl`` (one line per finished sample, appended and flushed as it completes, so a killed run
loses at most the samples in flight) and ``summary.json`` (written atomically).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from matbench.errors import ConfigError, InputError

STATUSES = ("ok", "error", "input_error")
CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"
# The start of a line written by RunDir.append: the id is the first field (a JSON string).
_ID_PREFIX = re.compile(rb'\{"id": ("(?:[^"\\]|\\.)*")')


@dataclass
class SampleRecord:
    """One finished sample: what ``predictions.jsonl`` holds per line."""

    id: str
    split: str | None
    question: str
    gold: list[str]
    prediction: str | None
    f1: float
    em: float
    status: str = "ok"
    error: str | None = None
    turns: int = 0
    tool_calls: dict[str, int] = field(default_factory=dict)
    tool_errors: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    latency: float = 0.0
    metadata: dict = field(default_factory=dict)
    trajectory: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        # Shallow on purpose: the record is serialised at once, and asdict's deep copy of the trajectory
        # cost about a millisecond per sample on the event loop's thread.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def fingerprint(config: dict) -> str:
    """Stable hash of the part of a configuration that changes results."""
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, obj: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunDir:
    """A run directory: create or reopen, append records, read them back, write the summary."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    # --- files -----------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    def exists(self) -> bool:
        return self.config_path.is_file()

    # --- config ----------------------------------------------------------------------------------------
    def create(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, config)
        self.predictions_path.touch()

    def read_config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{self.path} is not a matbench run directory (no {CONFIG_FILE})") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", file=str(self.config_path)) from exc

    # --- predictions -----------------------------------------------------------------------------------
    def append(self, record: SampleRecord) -> None:
        """Append one finished sample and hand it to the OS before returning.

        A flush (not an fsync) is what survives a killed process; an fsync per sample would cost milliseconds
        on the event loop's thread for protection only against a machine crash.
        """
        line = json.dumps(record.to_dict(), ensure_ascii=False) + "\n"
        with self._lock, self.predictions_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()

    def lines(self) -> Iterator[tuple[int, int, dict]]:
        """``(row number, byte offset, record)`` of each line, streamed: one line in memory at a time.

        A torn last line (the process was killed mid-write) is ignored; a torn line elsewhere is an error.
        """
        if not self.predictions_path.is_file():
            return
        pending: InputError | None = None
        with self.predictions_path.open("rb") as fh:
            offset = 0
            for no, line in enumerate(fh, 1):
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                if pending is not None:
                    raise pending
                try:
                    row = json.loads(line)
                except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                    pending = InputError(f"not valid JSON: {exc}", file=str(self.predictions_path), row=no)
                    continue
                yield no, start, row

    def latest_offsets(self) -> dict[str, int]:
        """Byte offset of the latest line of each id, in first-seen order; only ids are kept."""
        return self._scan()[0]

    def _scan(self) -> tuple[dict[str, int], int]:
        """The latest offsets and the number of record lines.

        Lines written by :meth:`append` start with the id and end with a newline, so the id is read without
        parsing the whole (trajectory-sized) line; anything else is parsed.
        """
        offsets: dict[str, int] = {}
        lines = 0
        if not self.predictions_path.is_file():
            return offsets, lines
        with self.predictions_path.open("rb") as fh:
            offset = 0
            for line in fh:
                start, offset = offset, offset + len(line)
                m = _ID_PREFIX.match(line) if line.endswith(b"\n") else None
                if m is not None:
                    try:
                        offsets[json.loads(m.group(1))] = start
                        lines += 1
                        continue
                    except ValueError:
                        pass
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # reported by lines() when it is not a torn last line
                offsets[str(row.get("id"))] = start
                lines += 1
        return offsets, lines

    def iter_records(self, *, latest: bool = True) -> Iterator[dict]:
        """Every record streamed (the latest per id when ``latest``, in first-seen order).

        Callers keep only the fields they need, so reading a 12,576-sample run costs one record of memory.
        """
        if not latest:
            yield from (row for _, _, row in self.lines())
            return
        offsets, lines = self._scan()
        if len(offsets) == lines:  # no id written twice (the usual case): every line, one sequential pass
            del offsets  # the ids are not needed while the records stream
            yield from (row for _, _, row in self.lines())
            return
        wanted = list(offsets.values())
        del offsets
        for _ in self.lines():  # validate the file (a torn line in the middle is an error) before seeking
            pass
        with self.predictions_path.open("rb") as fh:
            for off in wanted:
                fh.seek(off)
                yield json.loads(fh.readline())

    def read_records(self, *, latest: bool = True) -> list[dict]:
        """All records in a list (small runs and tests; large readers use :meth:`iter_records`)."""
        return list(self.iter_records(latest=latest))

    def finished_ids(self, *, retry_errors: bool = False) -> set[str]:
        """Ids a resumed run skips: every recorded sample, except ``error`` ones under ``--retry-errors``."""
        status: dict[str, bool] = {}
        for _, _, row in self.lines():
            status[str(row.get("id"))] = row.get("status") == "error"
        return {rid for rid, err in status.items() if not (retry_errors and err)}

    # --- summary ---------------------------------------------------------------------------------------
    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)

    def read_summary(self) -> dict | None:
        if not self.summary_path.is_file():
            return None
        try:
            return json.loads(self.summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", file=str(self.summary_path)) from exc
