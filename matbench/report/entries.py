"""A leaderboard entry: one system's scores on one task, with where the numbers came from.

Three kinds, never mixed up in the tables:

* ``run`` — a matbench run directory, validated and rescored by ``matbench submit``;
* ``reference`` — the authors' published predictions, rescored by matbench's scorer;
* ``reported`` — numbers computed elsewhere from files not available here (kept with their provenance and
  shown marked).

Scores are fractions in [0, 1] (like ``summary.json``); tables show percent.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from matbench.errors import InputError
from matbench.records import SCHEMA_VERSION, check_schema_version, write_json_atomic

KINDS = ("run", "reference", "reported")
# An entry's file name is its key: built only from sanitised parts, never a path.
SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass
class Entry:
    kind: str
    key: str
    task: str
    task_version: str
    name: str
    model: dict  # {"spec", "name", "backend"}
    protocol: str | None
    search: str | None
    scoring: str
    n: int
    missing: int | None  # None: not known (reported numbers)
    errors: int | None
    input_errors: int | None
    scores: dict[str, dict]  # "all" and each split: {"n", "f1", "em"}
    provenance: str
    matbench_version: str
    submitted_at: str
    decoding: dict | None = None
    protocol_sha256: str | None = None
    fingerprint: str | None = None
    predictions_sha256: str | None = None
    source: dict = field(default_factory=dict)
    reported: dict | None = None  # the numbers as published (percent), for kind "reported"
    cost: dict | None = None  # runs: summary.json's cost block recomputed from the tokens (matbench.cost)
    # False: a run on data that is not the task's official gold set (local, edited or partial): stored and
    # shown apart, never ranked; ``unofficial`` says why.
    official: bool = True
    unofficial: str | None = None
    # runs judged by an LLM judge: accuracy, n, ci95, model, prompt, prompt_source, unparsed, errors, by_split
    # (matbench/judge/summary.py entry_field), recomputed from judgments.jsonl; never mixed with F1/EM
    judge: dict | None = None
    schema_version: int = SCHEMA_VERSION  # round-2 entries said ``schema`` (read as the same number)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, *, file: str = "") -> Entry:
        names = {f.name for f in fields(cls)}
        if "schema_version" not in raw and "schema" in raw:  # a round-2 entry
            raw = {**raw, "schema_version": raw["schema"]}
        check_schema_version(raw, file=file or None)
        try:
            return cls(**{k: v for k, v in raw.items() if k in names})
        except TypeError as exc:
            raise InputError(f"not a leaderboard entry: {exc}", file=file) from exc


def key_part(text: str) -> str:
    """One part of an entry key: letters, digits, '.', '_' and single '-' only; never '..' (a path step)."""
    part = re.sub(r"[^A-Za-z0-9._]+|\.{2,}", "-", str(text))
    return re.sub(r"-{2,}", "-", part).strip("-.") or "x"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scores_from_result(result: dict) -> dict[str, dict]:
    """``{"all": {...}, "<split>": {...}}`` from a ``matbench score --json`` object."""
    out = {"all": {"n": result["n"], "f1": result["f1"], "em": result["em"]}}
    for name, part in result["splits"].items():
        out[name] = {"n": part["n"], "f1": part["f1"], "em": part["em"]}
    return out


def save_entry(entry: Entry, directory: Path) -> tuple[Path, bool]:
    """Write ``<key>.json``; an existing file with the same content (submitted_at aside) is left alone.

    Returns the path and whether anything was written, so that resubmitting a run is idempotent.
    """
    if not SAFE_KEY.fullmatch(entry.key):
        raise InputError(f"unsafe leaderboard entry key {entry.key!r} (letters, digits, '.', '_', '-' only)")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{entry.key}.json"
    new = entry.to_dict()
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = None
        if isinstance(old, dict):
            same = {k: v for k, v in old.items() if k != "submitted_at"} == {
                k: v for k, v in new.items() if k != "submitted_at"
            }
            if same:
                entry.submitted_at = old.get("submitted_at", entry.submitted_at)
                return path, False
    write_json_atomic(path, new)
    return path, True


def load_entries(directory: Path) -> list[Entry]:
    """Every entry under ``directory`` (sorted by file name); a broken file is an error, not skipped."""
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", file=str(path)) from exc
        if not isinstance(raw, dict):
            raise InputError("a leaderboard entry must be a JSON object", file=str(path))
        entry = Entry.from_dict(raw, file=str(path))
        if entry.kind not in KINDS:
            raise InputError(f"unknown entry kind {entry.kind!r}", file=str(path))
        entries.append(entry)
    return entries
