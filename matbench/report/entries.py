"""A leaderboard entry: one system's scores on one task, with where the numbers came from.

Three kinds, never mixed up in the tables:

* ``run`` — a matbench run directory, validated and rescored by ``matbench submit``;
* ``reference`` — the authors' published predictions, rescored by matbench's scorer;
* ``reported`` — numbers computed elsewhere from files not available here (kept with their provenance and
  shown marked). A reported entry with a ``metric`` (e.g. the literature's LLM-judge accuracies) carries no
  F1/EM at all: it lives only in the judge table, never ranked.

Scores are fractions in [0, 1] (like ``summary.json``); tables show percent. Every field is checked when an
entry is read (``check_fields``): a malformed file is refused in one line naming it and the field.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from matbench.errors import InputError
from matbench.records.run_dir import SCHEMA_VERSION, check_schema_version, write_json_atomic

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
    # runs: the tokens the trajectories consumed ({"tokens", "billed_tokens", "n", "price_model"}); the
    # leaderboard prices them with matbench's own table when it builds (never a submitter's price)
    cost: dict | None = None
    # None: F1/EM under ``scoring``; else the one metric a reported entry gives (it has no F1/EM)
    metric: str | None = None
    # the search setting in full ({"backend", ...}); ``search`` is its label, which rankings group by
    search_setting: dict | None = None
    # False: a run on data that is not the task's official gold set (local, edited or partial): stored and
    # shown apart, never ranked; ``unofficial`` says why.
    official: bool = True
    unofficial: str | None = None
    # runs judged by an LLM judge: accuracy, n, ci95, model, prompt, prompt_source, unparsed, errors, by_split
    # (matbench/judge/summary.py entry_field), recomputed from judgments.jsonl; never mixed with F1/EM. A
    # literature entry: the published accuracy with its judge (and no F1/EM at all, see ``metric``)
    judge: dict | None = None
    schema_version: int = SCHEMA_VERSION  # round-2 entries said ``schema`` (read as the same number)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def judge_only(self) -> bool:
        """A literature entry with one judge accuracy and no F1/EM (never in the F1/EM tables)."""
        return self.metric is not None and not self.scores

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


def _bad(field_name: str, why: str, value: object) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"field {field_name}: {why}, got {shown}"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_frac(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _check_interval(name: str, ci: object) -> str | None:
    if ci is None:
        return None
    if not (isinstance(ci, list) and len(ci) == 2 and all(_is_frac(x) for x in ci) and ci[0] <= ci[1]):
        return _bad(name, "expected [low, high] fractions in [0, 1]", ci)
    return None


def _check_scores(scores: object) -> str | None:
    if not isinstance(scores, dict):
        return _bad("scores", "expected an object", scores)
    for split, part in scores.items():
        where = f"scores.{split}"
        if not isinstance(part, dict):
            return _bad(where, "expected an object", part)
        if not _is_int(part.get("n")):
            return _bad(f"{where}.n", "expected a count", part.get("n"))
        for metric in ("f1", "em"):
            if not _is_frac(part.get(metric)):
                return _bad(f"{where}.{metric}", "expected a fraction in [0, 1]", part.get(metric))
            problem = _check_interval(f"{where}.{metric}_ci", part.get(f"{metric}_ci"))
            if problem:
                return problem
    return None


def _check_judge(judge: object) -> str | None:
    if judge is None:
        return None
    if not isinstance(judge, dict):
        return _bad("judge", "expected an object", judge)
    if not _is_frac(judge.get("accuracy")):
        return _bad("judge.accuracy", "expected a fraction in [0, 1]", judge.get("accuracy"))
    if not _is_int(judge.get("n")):
        return _bad("judge.n", "expected a count", judge.get("n"))
    for name in ("model", "prompt"):
        if not isinstance(judge.get(name), str) or not judge.get(name):
            return _bad(f"judge.{name}", "expected a name", judge.get(name))
    return _check_interval("judge.ci95", judge.get("ci95"))


def _check_cost(cost: object) -> str | None:
    if cost is None:
        return None
    if not isinstance(cost, dict):
        return _bad("cost", "expected an object", cost)
    for name in ("tokens", "billed_tokens"):
        tokens = cost.get(name)
        if tokens is None:
            continue
        if not isinstance(tokens, dict):
            return _bad(f"cost.{name}", "expected an object of token counts", tokens)
        for k, v in tokens.items():
            if not _is_int(v):
                return _bad(f"cost.{name}.{k}", "expected a token count (an integer >= 0)", v)
    return None


_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "key": (str,),
    "task": (str,),
    "task_version": (str,),
    "name": (str,),
    "model": (dict,),
    "protocol": (str, type(None)),
    "search": (str, type(None)),
    "scoring": (str,),
    "provenance": (str,),
    "matbench_version": (str,),
    "submitted_at": (str,),
    "official": (bool,),
    "unofficial": (str, type(None)),
    "source": (dict,),
    "search_setting": (dict, type(None)),
    "metric": (str, type(None)),
}


def check_fields(raw: dict) -> str | None:
    """Why ``raw`` is not a well-formed entry (one phrase naming the field), or None."""
    names = {f.name for f in fields(Entry)}
    for f in fields(Entry):
        if f.name not in raw and f.default is MISSING and f.default_factory is MISSING:
            return f"field {f.name}: missing"
    for name, kinds in _TYPES.items():
        if name in raw and (not isinstance(raw[name], kinds) or raw[name] == ""):
            shown = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            return _bad(name, f"expected {shown}", raw[name])
    unknown = sorted(set(raw) - names - {"schema"})  # "schema": a round-2 entry's schema_version
    if unknown:
        return f"field {unknown[0]}: not an entry field"
    if raw["kind"] not in KINDS:
        return _bad("kind", f"expected one of {', '.join(KINDS)}", raw["kind"])
    if not SAFE_KEY.fullmatch(raw["key"]):
        return _bad("key", "expected letters, digits, '.', '_', '-'", raw["key"])
    if not _is_int(raw["n"]):
        return _bad("n", "expected a count", raw["n"])
    for name in ("missing", "errors", "input_errors"):
        if raw[name] is not None and not _is_int(raw[name]):
            return _bad(name, "expected a count or null", raw[name])
    problem = _check_scores(raw["scores"]) or _check_judge(raw.get("judge")) or _check_cost(raw.get("cost"))
    if problem:
        return problem
    if raw.get("metric") is None and "all" not in raw["scores"]:
        return _bad("scores.all", "an F1/EM entry needs scores for all samples", None)
    if raw.get("metric") is not None and not raw["scores"] and raw.get("judge") is None:
        return "field judge: a judge-metric entry needs its judge block"
    return None


def read_entry(path: Path) -> Entry:
    """One entry file, checked field by field; ``InputError`` names the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=str(path)) from None
    if not isinstance(raw, dict):
        raise InputError("a leaderboard entry must be a JSON object", file=str(path))
    problem = check_fields(raw)
    if problem:
        raise InputError(problem, file=str(path))
    return Entry.from_dict(raw, file=str(path))


def load_entries(directory: Path, on_bad: Callable[[InputError], None] | None = None) -> list[Entry]:
    """Every entry under ``directory`` (sorted by file name). A malformed file raises, or, with ``on_bad``,
    is reported to it and left out, so that the rest still builds."""
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            entries.append(read_entry(path))
        except InputError as exc:
            if on_bad is None:
                raise
            on_bad(exc)
    return entries
