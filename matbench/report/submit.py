"""``matbench submit``: validate a finished run against its task, rescore it and record a leaderboard entry.

Nothing in the run is trusted: its config must hash to its fingerprint and name the stock task spec, protocol
strings and limits; the task's samples are reloaded and their gold set hashed against the one the task spec
pins (only then is the run *official*: on any other data it is stored as an unofficial entry, never ranked);
every id must be present once with the task's gold answers and split; each prediction must be the answer of
its own trajectory's last turn; every turn's request text is rebuilt from the claimed protocol's strings and
the recorded outputs and compared with the sha256 the run recorded (a relabelled ``--protocol-file`` run is
refused); each record's tokens must add up from its turns (the leaderboard prices them with matbench's own
table, never a submitted price); the scores are recomputed and compared with what ``summary.json`` and each
record claim. Any disagreement refuses the run with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from matbench.data.sample import Sample
from matbench.errors import ConfigError, MatbenchError
from matbench.judge.summary import entry_field, run_judge_block
from matbench.models.cost import CostTally, add_usage
from matbench.protocols.authors_source import AUTHORS_COMMIT
from matbench.protocols.authors_strings import EXPECTED, pinned_run_problem
from matbench.protocols.authors_strings import sha256 as strings_sha256
from matbench.protocols.replay import request_digests
from matbench.protocols.templates import Templates, load_templates
from matbench.records.run_dir import PREDICTIONS_FILE, RunDir, check_schema_version
from matbench.registry import SCORERS
from matbench.report.entries import Entry, key_part, now_utc, save_entry, scores_from_result, sha256_file
from matbench.report.intervals import with_intervals
from matbench.report.official import unofficial_reason
from matbench.run.config import config_fingerprint, file_sha256, spec_limits
from matbench.scoring.reader import RunScorer
from matbench.scoring.table import Scored
from matbench.tasks import TaskSpec, get_task
from matbench.tools.search.base import setting_label

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


def check_config(config: dict, spec: TaskSpec) -> None:
    """The config hashes to its own fingerprint and names the stock task spec, protocol strings and limits."""
    claimed, real = config.get("fingerprint"), config_fingerprint(config)
    if claimed != real:
        raise Refused(
            f"config.json was edited: its fingerprint {str(claimed)[:40]!r} does not match its content ({real})"
        )
    spec_sha = _get(config, "task.spec_sha256", required=False)
    if not spec_sha:
        raise Refused("config.json records no task.spec_sha256 (made by an older matbench): rerun the task")
    stock_spec = file_sha256(spec.path)
    if spec_sha != stock_spec:
        raise Refused(
            f"the run used an edited task spec (sha256 {str(spec_sha)[:12]}), not {spec.path.name} "
            f"({stock_spec[:12]})"
        )
    name = str(_get(config, "protocol.name"))
    layout = _get(config, "protocol.layout", required=False)
    protocol_tokens, reasoning_tokens = check_protocol(config, spec, name)
    check_pinned(config)
    expected = spec_limits(spec, layout == "direct" or name == "direct", protocol_tokens)
    checked = ["options.max_calls", "options.top_k"]
    if name != "custom":  # a custom protocol file may set its own token limit
        checked.append("decoding.max_new_tokens")
    for key in checked:
        limit = key.split(".")[1]
        got = _get(config, key, required=False)
        allowed = {expected[limit]}
        if (
            limit == "max_new_tokens"
            and reasoning_tokens
            and _get(config, "model.reasoning_model", required=False)
        ):
            allowed.add(reasoning_tokens)  # native tool calling gives a reasoning model room to think
        if got not in allowed:
            raise Refused(f"config.json says {key}={got} but task {spec.name} sets {limit}={expected[limit]}")


def check_pinned(config: dict) -> None:
    """The authors' script the run read is the pinned file (whole-file sha256), and model code ran in the
    exec scope that file gives (issue 20.6)."""
    problem = pinned_run_problem(config)
    if problem:
        raise Refused(f"config.json: {problem}; rerun with the pinned files (a download, or a copy at that commit)")


def check_protocol(config: dict, spec: TaskSpec, name: str) -> tuple[int | None, int | None]:
    """A stock protocol's strings must be the stock ones: matbench's template file, or the authors' strings
    pinned by sha256 (each one, at the pinned commit). Returns the protocol's own token limits (plain, and
    for reasoning models where the protocol sets one)."""
    if name == "custom":
        return None, None
    reasoning = None
    try:
        ref = spec.protocol(name)
    except ConfigError:
        raise Refused(f"config.json names protocol {name!r}, which task {spec.name} does not have") from None
    used = str(_get(config, "protocol.sha256", required=False))
    if ref.file is not None:
        templates = load_templates(ref.file)
        stock, reasoning = templates.sha256, templates.data.get("max_new_tokens_reasoning")
        ok, what = used == stock, f"{ref.file.name} ({stock[:12]})"
    else:
        source = _get(config, "protocol.source", required=False) or {}
        hashes = source.get("strings_sha256") or {}
        prefix = f"{ref.layout or spec.kind}."
        wanted = {k for k in EXPECTED if k.startswith(prefix)}
        combined = strings_sha256("\n".join(f"{k}={v}" for k, v in sorted(hashes.items())))
        ok = (
            set(hashes) == wanted
            and all(v in EXPECTED[k] for k, v in hashes.items())
            and combined == used
            and source.get("commit") == AUTHORS_COMMIT
            and source.get("file") == ref.authors
        )
        what = f"the authors' strings pinned for {ref.authors} at {AUTHORS_COMMIT[:12]}"
    if not ok:
        raise Refused(
            f"the run's {name} protocol strings (sha256 {used[:12]}) are not the stock ones of {what}: "
            f"an edited or custom protocol cannot pass as {name}"
        )
    return ref.max_new_tokens, int(reasoning) if reasoning else None


def check_trajectories(records: list[dict]) -> None:
    """Each prediction is the answer of its own trajectory's last turn (a failed sample has none)."""
    for rec in records:
        rid, pred = rec.get("id"), rec.get("prediction")
        if rec.get("status", "ok") != "ok":
            if pred is not None:
                raise Refused(
                    f"sample {rid}: status {rec.get('status')} with a prediction: the record was edited"
                )
            continue
        if not rec.get("has_trajectory"):
            raise Refused(f"sample {rid} has no trajectory, so its prediction cannot be checked")
        answer = rec.get("last_answer")
        if pred != answer:
            shown = json.dumps(pred, ensure_ascii=False)[:80]
            real = json.dumps(answer, ensure_ascii=False)[:80]
            raise Refused(
                f"sample {rid}: the prediction {shown} is not the answer of its trajectory's last turn ({real}): "
                "the record was edited"
            )


def rescore(records: list[dict], samples: list[Sample], spec: TaskSpec, scoring: str) -> tuple[dict, list]:
    """The ``matbench score --json`` object recomputed from the predictions; each record's own f1/em checked."""
    scorer = RunScorer(spec, scoring)
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
        scored.append(
            Scored(sample.id, sample.split, s.f1, s.em, missing=pred is None, error=rec.get("status") == "error")
        )
    return scorer.result(scored), scored


def check_summary(summary: dict | None, result: dict, counts: dict[str, int], model: str) -> None:
    """``summary.json`` must agree with the recomputed scores and counts and the config's model."""
    if summary is None:
        raise Refused("no summary.json: the run has not finished (resume it with `matbench eval`)")
    run = summary.get("run") or {}
    if run.get("model") not in (None, model):
        raise Refused(f"summary.json names model {run.get('model')!r} but config.json {model!r}: relabelled")
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


def _count_of(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_tokens(rec: dict) -> None:
    """A record's tokens are the sum of its turns' (each a count >= 0): no cost can be edited down."""
    rid = rec.get("id")
    total: dict[str, int] = {}
    for i, turn in enumerate(rec.get("trajectory") or [], 1):
        tokens = turn.get("tokens") if isinstance(turn, dict) else None
        for key, value in (tokens or {}).items():
            if not _count_of(value):
                raise Refused(f"sample {rid}, turn {i}: token count {key}={value!r} is not a count")
        add_usage(total, tokens or {})
    claimed = rec.get("tokens") or {}
    for key, value in claimed.items():
        if not _count_of(value):
            raise Refused(f"sample {rid}: token count {key}={value!r} is not a count")
    if {k: v for k, v in claimed.items() if v} != {k: v for k, v in total.items() if v}:
        raise Refused(
            f"sample {rid}: predictions.jsonl records tokens {json.dumps(claimed, sort_keys=True)} but its "
            f"turns add up to {json.dumps(total, sort_keys=True)}: the record was edited"
        )


class RequestCheck:
    """Every turn's request text, rebuilt from the claimed protocol's strings and the recorded outputs, must
    hash to the ``request_sha256`` the run recorded: a ``--protocol-file`` run cannot pass as a stock one."""

    def __init__(self, name: str, templates: Templates, compat: str):
        self.name, self.templates, self.compat = name, templates, compat

    def check(self, rec: dict) -> None:
        turns = rec.get("trajectory") or []
        if rec.get("status") == "input_error" or not turns:
            return
        question = str(rec.get("question") or "")
        built_texts = request_digests(self.templates, question, turns, self.compat)
        for i, (turn, built) in enumerate(zip(turns, built_texts, strict=False), 1):
            recorded = turn.get("request_sha256") if isinstance(turn, dict) else None
            if recorded is None:
                raise Refused(
                    f"sample {rec.get('id')}, turn {i}: no request_sha256 recorded (made by an older matbench), "
                    "so the protocol cannot be checked: rerun the task"
                )
            if recorded != built:
                raise Refused(
                    f"sample {rec.get('id')}, turn {i}: the request text the run sent is not what protocol "
                    f"{self.name} builds from its strings and the recorded outputs: the run used other strings "
                    "(a relabelled --protocol-file run)"
                )


def request_check(config: dict, spec: TaskSpec, authors_repo: str | None) -> RequestCheck | None:
    """The check for the run's claimed protocol (None for a run that says it is ``custom``)."""
    from matbench.protocols.resolve import resolve_protocol
    from matbench.tools.search.base import default_cache_dir

    name = str(_get(config, "protocol.name"))
    if name == "custom":
        return None
    resolved = resolve_protocol(spec, name, None, authors_repo=authors_repo, cache_dir=default_cache_dir())
    compat = str((_get(config, "options", required=False) or {}).get("compat") or "fixed")
    return RequestCheck(name, resolved.templates, compat)


def search_of(config: dict) -> tuple[str | None, dict | None]:
    """The run's search setting (config ``search.setting``; older runs: backend and parameters) and its label."""
    search = config.get("search")
    if not isinstance(search, dict):
        return None, None
    setting = search.get("setting")
    if not isinstance(setting, dict):
        setting = {"backend": search.get("backend"), **(search.get("params") or {})}
    return setting_label(setting), setting


def _needed(rec: dict) -> dict:
    """The fields validation reads: a record without its trajectory (but its last turn's answer), question and
    metadata."""
    check_schema_version(rec, file=PREDICTIONS_FILE, row=str(rec.get("id")))
    out = {k: rec[k] for k in ("id", "gold", "split", "prediction", "f1", "em", "status") if k in rec}
    trajectory = rec.get("trajectory") or []
    last = trajectory[-1] if trajectory else None
    out["has_trajectory"] = isinstance(last, dict)
    out["last_answer"] = last.get("answer") if isinstance(last, dict) else None
    return out


def validate_run(
    run_dir: str | Path,
    *,
    name: str | None = None,
    data_dir: str | None = None,
    data_file: str | None = None,
    authors_repo: str | None = None,
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
    if scoring not in SCORERS:
        raise Refused(f"config.json names an unknown scoring {scoring!r}")
    check_config(config, spec)
    requests = request_check(config, spec, authors_repo)
    tally = CostTally()  # tokens add up as the records stream past
    records = []
    for rec in tally.watch(run.iter_records()):  # streamed; trajectories are never held
        check_tokens(rec)
        if requests is not None:
            requests.check(rec)
        records.append(_needed(rec))
    if not records:
        raise Refused("predictions.jsonl holds no records")
    model = _get(config, "model")
    model_spec = str(model.get("spec") or model.get("model") or "unknown")
    samples = load_task_samples(spec, config, data_dir, data_file)
    unofficial = unofficial_reason(spec, samples)
    check_coverage(records, samples, spec, config)
    check_gold(records, samples)
    check_trajectories(records)
    result, scored = rescore(records, samples, spec, scoring)
    counts = {
        "errors": sum(r.get("status") == "error" for r in records),
        "input_errors": sum(r.get("status") == "input_error" for r in records),
    }
    check_summary(run.read_summary(), result, counts, model_spec)

    # tokens only: the leaderboard prices them with matbench's table when it builds (a price in summary.json,
    # or one the submitter wrote into the entry, is never used)
    cost = {"tokens": dict(tally.usage), "billed_tokens": dict(tally.billed), "n": tally.n}
    sha = sha256_file(run.predictions_path)
    fingerprint = str(config.get("fingerprint") or "")
    search_label, setting = search_of(config)
    parts = ("run" if unofficial is None else "unofficial", model_spec, spec.name, fingerprint, sha[:12])
    key = "-".join(key_part(p) for p in parts if p)
    created = config.get("created")
    decoding = config.get("decoding") if isinstance(config.get("decoding"), dict) else model.get("decoding")
    return Entry(
        kind="run",
        key=key,
        task=spec.name,
        task_version=spec.version,
        name=name or model_spec,
        model={"spec": model_spec, "name": model.get("model"), "backend": model.get("backend")},
        protocol=_get(config, "protocol.name", required=False),
        protocol_sha256=_get(config, "protocol.sha256", required=False),
        search=search_label,
        search_setting=setting,
        scoring=scoring,
        decoding=decoding,
        n=result["n"],
        missing=result["missing"],
        errors=counts["errors"],
        input_errors=counts["input_errors"],
        scores=with_intervals(scores_from_result(result), scored),
        provenance=f"matbench run {Path(run_dir).resolve().name} (created {created}), rescored by matbench submit",
        matbench_version=str(config.get("matbench_version") or ""),
        submitted_at=now_utc(),
        fingerprint=fingerprint or None,
        predictions_sha256=sha,
        cost=cost,
        source={
            "run_dir": Path(run_dir).resolve().name,
            "created": created,
            "git_commit": config.get("git_commit"),
            "task_source": _get(config, "task.source", required=False),
            "options": config.get("options"),
        },
        official=unofficial is None,
        unofficial=unofficial,
        judge=entry_field(run_judge_block(run.path)),
    )


def submit_run(run_dir: str | Path, directory: Path, **kwargs) -> SubmitResult:
    entry = validate_run(run_dir, **kwargs)
    path, written = save_entry(entry, directory)
    return SubmitResult(entry, path, written)
