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
from dataclasses import dataclass, field
from pathlib import Path

from matbench.errors import ConfigError, InputError

STATUSES = ("ok", "error", "input_error")
CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"


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

    def read_records(self, *, latest: bool = True) -> list[dict]:
        """All records (the latest per id when ``latest``, in first-seen order).

        A torn last line (the process was killed mid-write) is ignored; a torn line elsewhere is an error.
        """
        if not self.predictions_path.is_file():
            return []
        lines = self.predictions_path.read_text(encoding="utf-8").splitlines()
        rows: list[dict] = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if no == len(lines):
                    continue
                raise InputError(f"not valid JSON: {exc}", file=str(self.predictions_path), row=no) from exc
        if not latest:
            return rows
        by_id: dict[str, dict] = {}
        for row in rows:
            by_id[str(row.get("id"))] = row  # dicts keep first-insertion order; values take the last
        return list(by_id.values())

    def finished_ids(self, *, retry_errors: bool = False) -> set[str]:
        """Ids a resumed run skips: every recorded sample, except ``error`` ones under ``--retry-errors``."""
        return {
            str(r["id"]) for r in self.read_records() if not (retry_errors and r.get("status") == "error")
        }

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
