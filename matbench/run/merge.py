"""``matbench merge``: join the shards of one run (``--shard I/N``) into one run directory.

The shards must share one configuration (the same fingerprint), be all N shards of one split, each finished, and
together cover the task's samples exactly once. The merged directory is an ordinary run: records in the task's
sample order, the union of the shards' content-addressed images, a fresh summary. ``score``, ``submit``,
``compare`` and ``view`` read it like any run, and ``matbench eval --run-dir`` on it has nothing left to do.
Only ids and byte offsets are held in memory; records are copied line by line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from matbench.errors import ConfigError, InputError
from matbench.models.cost import price_of_run
from matbench.records.files import open_input
from matbench.records.outputs import check_dir, install_dir, new_dir_beside
from matbench.records.run_dir import RunDir, safe_name, utc_stamp
from matbench.run.shards import Shard, parse_shard, shard_of
from matbench.scoring.totals import RunTotals
from matbench.tasks import get_task

LIST_AT_MOST = 10
MERGE_KIND = "merge"  # the outputs marker of a merged run directory


@dataclass
class _Part:
    run: RunDir
    config: dict
    shard: Shard
    offsets: dict[str, int]


def _ids(ids: set[str] | list[str]) -> str:
    ordered = sorted(ids, key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))
    more = len(ordered) - LIST_AT_MOST
    return ", ".join(ordered[:LIST_AT_MOST]) + (f" ... and {more} more" if more > 0 else "")


def _load(path: str | Path) -> _Part:
    run = RunDir(path)
    config = run.read_config()
    spec = (config.get("selection") or {}).get("shard")
    if not spec:
        raise ConfigError(f"{path} is not a shard (it was not run with --shard I/N)")
    selection = {
        k: v for k, v in config["selection"].items() if k in ("limit", "ids") and v not in (None, [], "")
    }
    if selection:
        raise ConfigError(
            f"{path} evaluated a selection inside its shard ({selection}): rerun it without one"
        )
    return _Part(run, config, parse_shard(spec), run.latest_offsets())


def _check_parts(parts: list[_Part]) -> None:
    from matbench.run.scheduler import FINGERPRINT_KEYS

    first = parts[0]
    counts = {p.shard.count for p in parts}
    if len(counts) > 1:
        raise ConfigError(f"the shards split the task in different numbers: {sorted(counts)}")
    by_index: dict[int, _Part] = {}
    for p in parts:
        if p.config.get("fingerprint") != first.config.get("fingerprint"):
            changed = [k for k in FINGERPRINT_KEYS if p.config.get(k) != first.config.get(k)]
            raise ConfigError(
                f"{p.run.path} and {first.run.path} were run with different configurations "
                f"(changed: {', '.join(changed) or 'fingerprint'})"
            )
        if p.shard.index in by_index:
            raise ConfigError(
                f"shard {p.shard} given twice: {by_index[p.shard.index].run.path} and {p.run.path}"
            )
        by_index[p.shard.index] = p
    n = first.shard.count
    missing = [f"{i}/{n}" for i in range(n) if i not in by_index]
    if missing:
        raise ConfigError(f"missing shard(s) {', '.join(missing)} of {n}")


def _check_coverage(parts: list[_Part], sample_ids: list[str]) -> None:
    """Each shard holds exactly the task's samples of its slice: together every sample once."""
    for p in parts:
        expected = {i for i in sample_ids if p.shard.holds(i)}
        have = set(p.offsets)
        lacking, foreign = expected - have, have - expected
        if lacking:
            raise ConfigError(
                f"{p.run.path} (shard {p.shard}) has not finished: {len(lacking)} sample(s) missing: "
                f"{_ids(lacking)} (resume it with the same `matbench eval ... --shard {p.shard}`)"
            )
        if foreign:
            raise ConfigError(
                f"{p.run.path} (shard {p.shard}) holds {len(foreign)} sample(s) that are not in its slice of the "
                f"task: {_ids(foreign)}"
            )


def _copy_images(src: Path, dst: Path) -> None:
    """The union of the shards' images. Their names are their content (``images/<2 hex>/<sha256><suffix>``):
    each file is read once, without following links, hashed while it is copied and kept only if its bytes
    are its name, so a shard cannot slip in another image under a name a record uses, nor a host file."""
    try:
        info = os.lstat(src)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise InputError("is a symbolic link or not a folder; merge never follows links", file=str(src))
    for sub in sorted(os.scandir(src), key=lambda e: e.name):
        if sub.name.startswith("."):
            continue  # a temporary file of an interrupted write
        if sub.is_symlink() or not sub.is_dir(follow_symlinks=False) or not _BUCKET.fullmatch(sub.name):
            raise InputError("not a content-addressed image folder (images/<2 hex>/)", file=sub.path)
        for entry in sorted(os.scandir(sub.path), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            m = _IMAGE_NAME.fullmatch(entry.name)
            if m is None or m.group(1)[:2] != sub.name:
                raise InputError("not a content-addressed image name (<sha256><suffix>)", file=entry.path)
            out = dst / sub.name / entry.name
            if os.path.lexists(out):
                continue  # the same name, already verified: the same bytes
            _copy_verified(Path(entry.path), out, m.group(1))


_BUCKET = re.compile(r"[0-9a-f]{2}")
_IMAGE_NAME = re.compile(r"([0-9a-f]{64})(\.[A-Za-z0-9]{1,8})?")


def _copy_verified(src: Path, out: Path, digest: str) -> None:
    fh = open_input(src)  # no link, no FIFO or device
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    hasher = hashlib.sha256()
    try:
        with fh, open(tmp, "xb") as dst:
            while chunk := fh.read(1 << 20):
                hasher.update(chunk)
                dst.write(chunk)
        if hasher.hexdigest() != digest:
            raise InputError(
                f"its content has sha256 {hasher.hexdigest()[:16]}..., not the one its name says: "
                "the shard's images were altered",
                file=str(src),
            )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def merge_runs(
    paths: list[str | Path],
    out: str | Path | None = None,
    *,
    data_dir: str | None = None,
    data_file: str | None = None,
) -> tuple[Path, dict]:
    """Check and merge; return the merged run directory and its summary."""
    from matbench.report.submit import load_task_samples

    if not paths:
        raise ConfigError("give the shard run directories to merge")
    parts = [_load(p) for p in paths]
    _check_parts(parts)
    parts.sort(key=lambda p: p.shard.index)
    first = parts[0].config
    spec = get_task(str(first["task"]["name"]))
    samples = load_task_samples(spec, first, data_dir, data_file)
    sample_ids = [s.id for s in samples]
    _check_coverage(parts, sample_ids)

    if out is None:
        out = Path(paths[0]).parent / f"{utc_stamp()}_{safe_name(first['model']['spec'])}_{spec.name}"
    target = Path(out)
    check_dir(target, MERGE_KIND)  # only an empty folder or an earlier merge is replaced
    merged = RunDir(new_dir_beside(target))
    try:
        summary = _write_merge(merged, target, parts, first, spec, sample_ids)
    except BaseException:
        shutil.rmtree(merged.path, ignore_errors=True)
        raise
    install_dir(merged.path, target, MERGE_KIND)
    return target, summary


def _write_merge(merged: RunDir, target: Path, parts: list[_Part], first: dict, spec, sample_ids: list[str]) -> dict:
    """Write the merged run into ``merged`` (a fresh folder, installed at ``target`` afterwards)."""
    config = {
        **first,
        "created": utc_stamp(),
        "selection": {**first["selection"], "shard": None, "shard_samples": None},
        "merged_from": [
            {
                "run_dir": str(p.run.path.resolve()),
                "shard": str(p.shard),
                "created": p.config.get("created"),
                "git_commit": p.config.get("git_commit"),
                "model_runtime": p.config.get("model_runtime"),
            }
            for p in parts
        ],
    }
    merged.create(config)
    with merged.predictions_path.open("wb") as dst:
        handles = {id(p): open_input(p.run.predictions_path) for p in parts}
        try:
            for sid in sample_ids:  # the task's order, as an unsharded run of the same task would mostly be
                part = parts[shard_of(sid, len(parts))]  # sorted by index: shard i is parts[i]
                fh = handles[id(part)]
                fh.seek(part.offsets[sid])
                line = fh.readline()
                dst.write(line if line.endswith(b"\n") else line + b"\n")
        finally:
            for fh in handles.values():
                fh.close()
    for p in parts:
        _copy_images(p.run.path / "images", merged.path / "images")
    scoring = str(first.get("scoring") or spec.default_scoring)
    durations = [((p.run.read_summary() or {}).get("run") or {}).get("duration_s") or 0.0 for p in parts]
    totals = RunTotals.from_run(merged, spec, scoring)
    summary = totals.summary(
        model=first["model"]["spec"],
        run_dir=str(target),
        fingerprint=first["fingerprint"],
        sample_ids=sample_ids,
        duration=float(max(durations)),
        layout=(first.get("protocol") or {}).get("layout"),
    )
    summary["run"]["cost"] = totals.cost(price_of_run(first, parts[0].run.read_summary()))
    summary["run"]["shards"] = len(parts)
    summary["run"]["shard_duration_s"] = [round(float(d), 3) for d in durations]
    from matbench.judge.records import merge_judgments
    from matbench.judge.summary import run_judge_block

    if merge_judgments([p.run.path for p in parts], merged.path):  # every shard judged by one judge
        summary["judge"] = run_judge_block(merged.path)
    merged.write_summary(summary)
    return summary
