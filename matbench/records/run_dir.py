"""Run directories: the only writer of run files.

``runs/<utc-timestamp>_<model>_<task>/`` holds ``config.json`` (the full resolved configuration),
``predictions.jsonl`` (one line per finished sample, appended and flushed as it completes, so a killed run
loses at most the samples in flight) and ``summary.json`` (written atomically).

Each of the three carries ``schema_version`` (:data:`SCHEMA_VERSION`; every predictions line too). Files
without it are round-2 runs, read as before; a version above this matbench's is refused in one line, since
its fields may mean something this version does not know.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from matbench.errors import ConfigError, InputError, MatbenchError
from matbench.records.files import open_input

STATUSES = ("ok", "error", "input_error")
#: the layout of config.json, summary.json, predictions.jsonl lines and leaderboard entries; absent = round 2
SCHEMA_VERSION = 1
# The most of one text a record stores per turn (a reply, an answer, a tool input): a runaway 64 MiB reply
# must not become a record of hundreds of MiB; the turn keeps the true length beside it.
MAX_TEXT_BYTES = 256 * 1024
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
        # cost about a millisecond per sample on the event loop's thread. The id stays the first key (the
        # fast id scan reads it from the start of the line), the schema version second.
        out: dict = {"id": self.id, "schema_version": SCHEMA_VERSION}
        out.update((name, getattr(self, name)) for name in self.__dataclass_fields__)
        return out


def versioned(obj: dict) -> dict:
    """``obj`` with ``schema_version`` first (what every file written for a run carries)."""
    return {"schema_version": SCHEMA_VERSION, **{k: v for k, v in obj.items() if k != "schema_version"}}


def check_schema_version(obj: object, *, file: str | None = None, row: int | None = None) -> None:
    """Refuse a record written by a newer matbench; one without a version (round 2) reads as before."""
    version = obj.get("schema_version") if isinstance(obj, dict) else None
    if version is None:
        return
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"schema_version {version!r} is not a positive integer", file=file, row=row)
    if version > SCHEMA_VERSION:
        raise InputError(
            f"written with schema_version {version}, newer than this matbench reads ({SCHEMA_VERSION}): "
            "upgrade matbench to read it",
            file=file,
            row=row,
        )


def cap_text(text: str | None, limit: int = MAX_TEXT_BYTES) -> str | None:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary)."""
    if text is None or len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def put_text(record: dict, key: str, text: str | None) -> None:
    """Store ``text`` in ``record[key]`` capped (:func:`cap_text`) and its true length in ``key_chars``: a
    reply, argument or tool output of any size never makes a predictions line unbounded."""
    record[key] = cap_text(text)
    record[f"{key}_chars"] = None if text is None else len(text)


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def fingerprint(config: dict) -> str:
    """Stable hash of the part of a configuration that changes results."""
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, obj: object) -> None:
    """Write a whole file or nothing (a temporary file renamed over it); a full disk raises ``DiskFull``."""
    data = (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise as_disk_full(exc, path, len(data)) from exc


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
        write_json_atomic(self.config_path, versioned(config))
        self.predictions_path.touch()

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.config_path, versioned(config))

    def read_config(self) -> dict:
        if not self.config_path.is_file():
            raise ConfigError(f"{self.path} is not a matbench run directory (no {CONFIG_FILE})")
        return read_record(self.config_path)

    # --- predictions -----------------------------------------------------------------------------------
    def append(self, record: SampleRecord) -> None:
        """Append one finished sample and hand it to the OS before returning.

        A flush (not an fsync) is what survives a killed process; an fsync per sample would cost milliseconds
        on the event loop's thread for protection only against a machine crash. A write that fails (a full
        disk) is cut back off, so the file keeps only whole lines, and raised as :class:`DiskFull`.
        """
        data = (json.dumps(record.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            append_line(self.predictions_path, data)

    def lines(self) -> Iterator[tuple[int, int, dict]]:
        """``(row number, byte offset, record)`` of each line, streamed: one line in memory at a time.

        See :func:`iter_lines`: a damaged line is one clear error naming the row; a torn last line is skipped.
        """
        if not os.path.lexists(self.predictions_path):
            return
        yield from iter_lines(self.predictions_path)

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
        if not os.path.lexists(self.predictions_path):
            return offsets, lines
        with open_input(self.predictions_path) as fh:
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
        with open_input(self.predictions_path) as fh:
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

    def repair(self) -> int:
        """Before appending to an existing run: cut a torn last line (see :func:`repair_tail`)."""
        if not self.predictions_path.is_file():
            return 0
        return repair_tail(self.predictions_path)

    # --- summary ---------------------------------------------------------------------------------------
    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, versioned(summary))

    def read_summary(self) -> dict | None:
        if not self.summary_path.is_file():
            return None
        return read_record(self.summary_path)


# --- reading and repairing JSON Lines ---------------------------------------------------------------------------
def _parse_line(raw: bytes) -> tuple[dict | None, str | None]:
    """(the record, None), or (None, why the line is not a UTF-8 JSON object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc}"
    return (row, None) if isinstance(row, dict) else (None, "row is not a JSON object")


def iter_lines(path: Path) -> Iterator[tuple[int, int, dict]]:
    """``(line number, byte offset, object)`` of each record line of a JSON Lines file, streamed.

    Every reader of run records goes through here, so that a damaged file gives one clear line naming the file
    and the row (bad UTF-8, bad JSON, not an object). A last line without its newline is a write that was cut
    short (a killed process, a full disk): it is skipped when it does not parse; a resume cuts it off.
    """
    try:
        fh = open_input(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    with fh:
        offset = 0
        for no, raw in enumerate(fh, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            row, why = _parse_line(raw)
            if row is not None:
                check_schema_version(row, file=str(path), row=no)
                yield no, start, row
            elif raw.endswith(b"\n"):
                raise InputError(why or "unreadable", file=str(path), row=no)


def read_text_utf8(path: Path) -> str:
    """A whole text file as UTF-8, or one clear line naming the file, line and byte that are not UTF-8."""
    try:
        with open_input(path) as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    return decode_utf8(data, path)


def decode_utf8(data: bytes, path: Path) -> str:
    """``data`` as UTF-8 text, or an :class:`InputError` naming the line and column of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"not valid UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})",
            file=str(path),
            row=line,
        ) from None


def repair_tail(path: Path) -> int:
    """Make the file end with a whole line before anything is appended; returns the bytes cut off.

    An unterminated last line that is a complete record only gets its newline; a torn one (the process died
    mid-write) is cut back to the last newline, so the next record cannot be glued onto the fragment.
    """
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos, keep = size, 0
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        fh.seek(keep)
        tail = fh.read()
        if _parse_line(tail)[0] is not None:
            fh.write(b"\n")
            return 0
        fh.truncate(keep)
        return size - keep


# --- a full disk ----------------------------------------------------------------------------------------------
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class DiskFull(MatbenchError):
    """A write failed for lack of space: the run stops (never a sample's fault) and a rerun finishes it."""

    def __init__(self, path: Path, needed: int, reason: str):
        self.path, self.needed = path, needed
        free = _free_bytes(path)
        have = f", {_size(free)} free" if free is not None else ""
        super().__init__(
            f"{reason} while writing {path} (needs {_size(needed)} more{have}); every finished sample is kept: "
            "free some space and rerun the same command to finish the run"
        )


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def as_disk_full(exc: OSError, path: Path, needed: int) -> BaseException:
    """``DiskFull`` for a no-space error, else the error itself."""
    if not is_disk_full(exc):
        return exc
    return DiskFull(path, needed, exc.strerror or "no space left on device")


def _free_bytes(path: Path) -> int | None:
    for p in (path, *path.parents):
        try:
            st = os.statvfs(p)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def read_record(path: Path) -> dict:
    """A record file (config.json, summary.json, judge.json): JSON, of a schema version this matbench reads (else one line naming it)."""
    try:
        record = json.loads(read_text_utf8(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}", file=str(path)) from exc
    check_schema_version(record, file=str(path))
    return record


def append_line(path: Path, data: bytes) -> None:
    """Append one whole line or nothing, handed to the OS before returning (the caller is the one writer).

    Unbuffered on purpose: a buffered file whose flush failed (a full disk) keeps the bytes, cannot be cut back
    (its truncate flushes first) and raises again when closed, past the cleanup: the file kept a torn line and
    the caller got a bare OSError. Here a failed write is cut back off and raised as :class:`DiskFull`.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise as_disk_full(exc, path, len(data)) from exc
    finally:
        os.close(fd)
