"""``matbench submit``: validate a finished run against its task, rescore it and record a leaderboard entry.

Nothing in the run is trusted: the task's samples are reloaded, every id must be present once with the task's
gold answers and split, the scores are recomputed from the predictions with the run's scoring, and then
compared with what ``summary.json`` and each record claim. Any disagreement refuses the run with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from matbench.cost import CostTally, price_of_run
from matbench.data.sample import Sample
from matbench.errors import ConfigError, MatbenchError
from matbench.records import RunDir, safe_name
from matbench.report.entries import Entry, now_utc, save_entry, scores_from_result, sha256_file
from matbench.scoring import SCORINGS, Scored, aggregate, get_scorer
from matbench.tasks import TaskSpec, get_task

TOLERANCE = 1e-9
LIST_AT_MOST = 20


class Refused(MatbenchError):
    """The run cannot go on the leaderboard; the message says exactly why."""


@dataclass
class SubmitResult:
    entry: Entry
    path: Path
    written: bool  # False when the same entry was already there (idempotent resubmit)


def _get(config: dict, dotted: str, *, required: bool = True):
    node: object = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if required:
                raise ConfigError(f"config.json lacks {dotted}")
            return None
        node = node[part]
    return node


def _sort_ids(ids: set[str] | list[str]) -> list[str]:
    return sorted(ids, key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))


def _id_list(ids: list[str]) -> str:
    shown = ", ".join(ids[:LIST_AT_MOST])
    return shown + (f" ... and {len(ids) - LIST_AT_MOST} more" if len(ids) > LIST_AT_MOST else "")


def _num(a: float, b: float) -> tuple[str, str]:
    """Both numbers with just enough digits to tell them apart."""
    for digits in (2, 4, 6, 10, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            return sa, sb
    return repr(a), repr(b)


def _gold(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)


def load_task_samples(
    spec: TaskSpec, config: dict, data_dir: str | None, data_file: str | None
) -> list[Sample]:
    """The task's samples from the CLI's data option, else the run's recorded one, else the hub."""
    from matbench.data.loaders import load_samples

    if not (data_dir or data_file):
        data_dir = _get(config, "task.data_dir", required=False)
        data_file = _get(config, "task.data_file", required=False)
    return load_samples(spec, data_dir=data_dir or None, data_file=data_file or None)


def check_coverage(records: list[dict], samples: list[Sample], spec: TaskSpec, config: dict) -> None:
    """Every task sample exactly once (the latest line per id), no foreign ids."""
    task_ids = [s.id for s in samples]
    have = [str(r.get("id")) for r in records]
    missing = _sort_ids(set(task_ids) - set(have))
    extra = _sort_ids(set(have) - set(task_ids))
    if missing:
        msg = f"missing {len(missing)} sample(s): {_id_list(missing)}"
        selection = _get(config, "selection", required=False) or {}
        limited = {k: v for k, v in selection.items() if v not in (None, [], "")}
        if limited:
            msg += f" (the run evaluated a selection: {json.dumps(limited)})"
        raise Refused(msg)
    if extra:
        raise Refused(f"{len(extra)} sample(s) not in task {spec.name}: {_id_list(extra)}")


def check_gold(records: list[dict], samples: list[Sample]) -> None:
    """Gold answers and split of each record must equal the task's (a sample with an input error aside)."""
    by_id = {s.id: s for s in samples}
    for rec in records:
        sample = by_id[str(rec["id"])]
        if sample.input_error:
            continue
        gold = [str(g) for g in rec.get("gold") or []]
        if gold != list(sample.answers):
            raise Refused(
                f"gold answers of sample {sample.id} differ from the task's: "
                f"{_gold(gold)} vs {_gold(list(sample.answers))}"
            )
        split = rec.get("split")
        if split is not None and sample.split is not None and split != sample.split:
            raise Refused(
                f"sample {sample.id} is in split {split!r} but the task puts it in {sample.split!r}"
            )


def rescore(records: list[dict], samples: list[Sample], spec: TaskSpec, scoring: str) -> dict:
    """The ``matbench score --json`` object recomputed from the predictions; each record's own f1/em checked."""
    scorer = get_scorer(scoring, cjk=spec.cjk)
    by_id = {s.id: s for s in samples}
    scored = []
    for rec in records:
        sample = by_id[str(rec["id"])]
        pred = rec.get("prediction")
        pred = None if pred is None else str(pred)
        s = scorer(pred, list(sample.answers) if not sample.input_error else [str(g) for g in rec["gold"]])
        for metric, value in (("f1", s.f1), ("em", s.em)):
            claimed = rec.get(metric)
            if not isinstance(claimed, (int, float)) or not math.isclose(claimed, value, abs_tol=TOLERANCE):
                shown, real = (
                    _num(float(claimed), value) if isinstance(claimed, (int, float)) else (claimed, value)
                )
                raise Refused(
                    f"sample {sample.id}: predictions.jsonl records {metric}={shown} but its prediction "
                    f"scores {real} under {scoring}: the record was edited"
                )
        scored.append(Scored(sample.id, sample.split, s.f1, s.em, missing=pred is None))
    return {"task": spec.name, "scoring": scoring, **aggregate(scored, spec.splits.names)}


def check_summary(summary: dict | None, result: dict, counts: dict[str, int]) -> None:
    """``summary.json`` must agree with the recomputed scores and counts; otherwise it was edited."""
    if summary is None:
        raise Refused("no summary.json: the run has not finished (resume it with `matbench eval`)")
    run = summary.get("run") or {}
    if run.get("finished") is False:
        raise Refused("summary.json says the run has not finished (resume it with `matbench eval`)")
    if summary.get("task") not in (None, result["task"]):
        raise Refused(f"summary.json is for task {summary.get('task')!r}, the run for {result['task']!r}")
    pairs: list[tuple[str, object, float]] = [
        (k, summary.get(k), result[k]) for k in ("n", "missing", "f1", "em")
    ]
    for name, part in result["splits"].items():
        theirs = (summary.get("splits") or {}).get(name)
        if not isinstance(theirs, dict):
            raise Refused(f"summary.json has no scores for split {name!r}: the summary was edited")
        pairs += [(f"splits.{name}.{k}", theirs.get(k), part[k]) for k in ("n", "f1", "em")]
    pairs += [(f"run.{k}", run[k], v) for k, v in counts.items() if k in run]
    for label, claimed, real in pairs:
        if not isinstance(claimed, (int, float)) or not math.isclose(claimed, real, abs_tol=TOLERANCE):
            shown, actual = (
                _num(float(claimed), float(real)) if isinstance(claimed, (int, float)) else (claimed, real)
            )
            raise Refused(
                f"summary.json says {label}={shown} but the predictions give {actual}: the summary was edited"
            )


def _needed(rec: dict) -> dict:
    """The fields validation reads: a record without its trajectory, question and metadata."""
    return {k: rec[k] for k in ("id", "gold", "split", "prediction", "f1", "em", "status") if k in rec}


def validate_run(
    run_dir: str | Path,
    *,
    name: str | None = None,
    data_dir: str | None = None,
    data_file: str | None = None,
) -> Entry:
    """The entry for a finished run, or :class:`Refused` with the reason."""
    run = RunDir(run_dir)
    config = run.read_config()
    spec = get_task(str(_get(config, "task.name")))
    version = str(_get(config, "task.version"))
    if version != spec.version:
        raise Refused(
            f"the run used {spec.name} version {version}, the current task spec is version {spec.version}"
        )
    scoring = str(config.get("scoring") or spec.default_scoring)
    if scoring not in SCORINGS:
        raise Refused(f"config.json names an unknown scoring {scoring!r}")
    tally = CostTally()  # tokens add up as the records stream past
    records = [_needed(r) for r in tally.watch(run.iter_records())]  # streamed; trajectories are never held
    if not records:
        raise Refused("predictions.jsonl holds no records")
    samples = load_task_samples(spec, config, data_dir, data_file)
    check_coverage(records, samples, spec, config)
    check_gold(records, samples)
    result = rescore(records, samples, spec, scoring)
    counts = {
        "errors": sum(r.get("status") == "error" for r in records),
        "input_errors": sum(r.get("status") == "input_error" for r in records),
    }
    check_summary(run.read_summary(), result, counts)

    cost = tally.block(price_of_run(config, run.read_summary()))
    sha = sha256_file(run.predictions_path)
    fingerprint = config.get("fingerprint")
    model = _get(config, "model")
    model_spec = str(model.get("spec") or model.get("model") or "unknown")
    search = config.get("search") or None
    key = "-".join(p for p in ("run", safe_name(model_spec), spec.name, fingerprint or "", sha[:12]) if p)
    created = config.get("created")
    return Entry(
        kind="run",
        key=key,
        task=spec.name,
        task_version=spec.version,
        name=name or model_spec,
        model={"spec": model_spec, "name": model.get("model"), "backend": model.get("backend")},
        protocol=_get(config, "protocol.name", required=False),
        protocol_sha256=_get(config, "protocol.sha256", required=False),
        search=search.get("backend") if isinstance(search, dict) else None,
        scoring=scoring,
        decoding=model.get("decoding"),
        n=result["n"],
        missing=result["missing"],
        errors=counts["errors"],
        input_errors=counts["input_errors"],
        scores=scores_from_result(result),
        provenance=f"matbench run {Path(run_dir).resolve().name} (created {created}), rescored by matbench submit",
        matbench_version=str(config.get("matbench_version") or ""),
        submitted_at=now_utc(),
        fingerprint=fingerprint,
        predictions_sha256=sha,
        cost=cost,
        source={
            "run_dir": Path(run_dir).resolve().name,
            "created": created,
            "git_commit": config.get("git_commit"),
            "task_source": _get(config, "task.source", required=False),
            "options": config.get("options"),
        },
    )


def submit_run(run_dir: str | Path, directory: Path, **kwargs) -> SubmitResult:
    entry = validate_run(run_dir, **kwargs)
    path, written = save_entry(entry, directory)
    return SubmitResult(entry, path, written)
