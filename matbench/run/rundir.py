"""Which run directory a planned task writes to, and whether an existing one may be resumed.

A new configuration never resumes an old run: a changed fingerprinted key is refused (naming each key), a
larger selection (``--limit``, ``--ids``) extends the run, another shard is another run. A new run's directory
is created only once every task is planned, so a refusal leaves nothing behind.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from matbench.data.sample import Sample
from matbench.errors import ConfigError, InputError
from matbench.records.run_dir import RunDir, fingerprint, safe_name
from matbench.run.config import changed_keys, result_part
from matbench.run.lock import RunLock
from matbench.run.shards import parse_shard
from matbench.tasks import TaskSpec

EvalSettings = Any  # matbench.run.options.EvalSettings (generated)


def select_samples(samples: list[Sample], ids: list[str] | None, limit: int | None, spec: TaskSpec) -> list[Sample]:
    if ids:
        by_id = {s.id: s for s in samples}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ConfigError(f"--ids: {', '.join(unknown)} not in task {spec.name}")
        samples = [by_id[i] for i in ids]
    return samples[:limit] if limit is not None else samples


def _same_run_target(path: Path, model: str, task: str, shard: str | None) -> bool:
    """A previous run directory of this model, task and shard (the name alone can be ambiguous)."""
    try:
        cfg = RunDir(path).read_config()
    except (ConfigError, InputError):
        return False
    return (
        cfg.get("model", {}).get("spec") == model
        and cfg.get("task", {}).get("name") == task
        and (cfg.get("selection") or {}).get("shard") == shard
    )


def run_key(config: dict) -> str:
    """Eight hex digits of what makes the run: its fingerprinted configuration, less the selection (a larger
    ``--limit`` extends a run) and the hub revision (a moved hub is refused on resume, with the way on)."""
    part = {k: v for k, v in result_part(config).items() if not k.startswith("task.revision")}
    return fingerprint(part)[:8]


def _run_path(settings: EvalSettings, spec: TaskSpec, config: dict) -> Path:
    """``runs/<model>_<task>_<key>[_shardIofN]``: the same command finds its run again, a changed one starts
    fresh."""
    shard = config["selection"]["shard"]
    name = f"{safe_name(settings.model)}_{spec.name}_{run_key(config)}"
    return Path(settings.runs_root) / (name + (f"_{parse_shard(shard).label}" if shard else ""))


def _legacy_run(settings: EvalSettings, spec: TaskSpec, config: dict) -> Path | None:
    """A run named the round-2 way (``<utc>_<model>_<task>``) with this very configuration: resume it."""
    shard = config["selection"]["shard"]
    task_part = spec.name + (f"_{parse_shard(shard).label}" if shard else "")
    root = Path(settings.runs_root)
    previous = sorted(root.glob(f"*_{safe_name(settings.model)}_{task_part}")) if root.is_dir() else []
    for path in reversed(previous):
        if path.name[:1].isdigit() and _same_run_target(path, settings.model, spec.name, shard):
            try:
                old = RunDir(path).read_config()
            except (ConfigError, InputError):
                continue
            if run_key(old) == run_key(config):
                return path
    return None


def resolve_run_dir(settings: EvalSettings, spec: TaskSpec, config: dict) -> RunDir:
    """The run directory: ``--run-dir`` (pinned: a changed configuration there is refused), else the one
    named by model, task and configuration key (an earlier round's run of the same configuration too)."""
    if settings.run_dir:
        path = Path(settings.run_dir)
        if len(settings.tasks) > 1:
            path = path / spec.name
        return RunDir(path)
    path = _run_path(settings, spec, config)
    if not RunDir(path).exists():
        path = _legacy_run(settings, spec, config) or path
    return RunDir(path)


def overwrite_run(run: RunDir, settings: EvalSettings, spec: TaskSpec, config: dict) -> RunDir:
    """Remove an existing run (under its lock, so that a running `eval` is never pulled from under)."""
    with RunLock(run.path):
        shutil.rmtree(run.path)
    return run if settings.run_dir else RunDir(_run_path(settings, spec, config))


def check_resume(run: RunDir, old: dict, config: dict, samples_all: list[Sample], spec: TaskSpec) -> None:
    """Refuse a changed configuration naming each changed key; accept an extended selection (and record it)."""
    hint = "pass --run-dir DIR for a new run, or --overwrite to replace it"
    old_sel, new_sel = old.get("selection") or {}, config.get("selection") or {}
    if old_sel.get("shard") != new_sel.get("shard"):
        raise ConfigError(
            f"{run.path} holds shard {old_sel.get('shard') or 'none (all samples)'}, "
            f"not {new_sel.get('shard') or 'all samples'}: pass another --run-dir"
        )
    changed = changed_keys(old, config)
    old_commit = (old.get("task") or {}).get("revision_resolved")
    if changed == ["task.revision_resolved"] and old_commit:  # the hub moved under an unpinned run
        hint = f"--data-revision {old_commit} finishes it on the data it started with; {hint}"
    if changed:
        raise ConfigError(
            f"{run.path} was run with a different configuration (changed: {', '.join(changed)}); {hint}"
        )
    if all(old_sel.get(k) == new_sel.get(k) for k in ("limit", "ids")):
        return
    try:
        before = {s.id for s in select_samples(samples_all, old_sel.get("ids"), old_sel.get("limit"), spec)}
    except ConfigError:
        before = set()
    now = {s.id for s in select_samples(samples_all, new_sel.get("ids"), new_sel.get("limit"), spec)}
    if not before <= now:
        keys = [f"selection.{k}" for k in ("limit", "ids") if old_sel.get(k) != new_sel.get(k)]
        raise ConfigError(
            f"{run.path} was run on a larger selection (changed: {', '.join(keys)}; "
            f"{len(before - now)} of its samples would be left out); {hint}"
        )
    kept = {k: old[k] for k in ("created", "run_id") if k in old}
    run.write_config({**config, **kept})  # an extended run: the same run, more samples


def open_run(plan: Any) -> None:
    """Create a new run's directory (only once every task is planned, so a refusal leaves nothing behind)."""
    if plan.lock is not None:
        return
    plan.run.path.mkdir(parents=True, exist_ok=True)
    plan.lock = RunLock(plan.run.path).acquire()
    if plan.run.exists():  # another `eval` made it since this one planned: resume it instead, never twice
        plan.lock.release()
        raise ConfigError(f"{plan.run.path} was just started by another `matbench eval`; rerun to resume it")
    plan.run.create(plan.config)
    print(f"new run: {plan.run.path}", file=sys.stderr)  # a changed configuration is a new directory: say which
