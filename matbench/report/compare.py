"""``matbench compare``: two systems on the same task, paired by sample id.

Differences are B - A. Each group (all, each split, each MAT-Coding degradation type) gets the mean F1/EM of
both sides, the difference with a paired bootstrap 95% interval (seeded; every group restarts from the same
seed so its interval does not depend on which other groups exist), and the samples B won / lost / tied by F1.
A sample with several degradation types (["rotation90", "dark"]) counts toward each of its types, so the type
groups overlap and their sizes add up to more than the total.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from matbench.cost import CostTally, price_of_run
from matbench.data.sample import Sample
from matbench.errors import ConfigError, InputError
from matbench.predictions import check_ids, read_predictions
from matbench.records import RunDir
from matbench.report.bootstrap import bootstrap_means, confidence_interval
from matbench.scoring import get_scorer
from matbench.tasks import TaskSpec, get_task

TIE = 1e-12


@dataclass
class Side:
    """One system's per-sample scores, rescored from its predictions."""

    label: str
    task: str
    scoring: str
    ids: list[str]
    f1: dict[str, float]
    em: dict[str, float]
    gold: dict[str, list[str]]
    split: dict[str, str | None]
    types: dict[str, list[str]]
    cost: dict | None = None  # run directories: matbench.cost's block for the whole run


@dataclass
class Group:
    group: str
    n: int
    a_f1: float
    b_f1: float
    a_em: float
    b_em: float
    diff_f1: float
    diff_em: float
    ci_f1: tuple[float, float]
    ci_em: tuple[float, float]
    won: int
    lost: int
    tied: int


@dataclass
class Comparison:
    a: str
    b: str
    task: str
    scoring: str
    paired: int
    only_a: int
    only_b: int
    resamples: int
    seed: int
    seconds: float
    overall: Group
    splits: list[Group] = field(default_factory=list)
    types: list[Group] = field(default_factory=list)
    cost_a: dict | None = None
    cost_b: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_side(
    path: str | Path,
    *,
    task: str | None = None,
    scoring: str | None = None,
    samples: list[Sample] | None = None,
) -> Side:
    """A run directory (task and scoring from its config) or a predictions file (needs ``task``)."""
    path = Path(path)
    run = RunDir(path)
    if path.is_dir() and run.exists():
        config = run.read_config()
        spec = get_task(str((config.get("task") or {}).get("name") or task))
        scoring = scoring or config.get("scoring") or spec.default_scoring
        tally = CostTally()
        side = _side_from_run(path, tally.watch(run.iter_records()), spec, scoring, samples)  # streamed
        side.cost = tally.block(price_of_run(config, run.read_summary()))
        return side
    if task is None:
        raise ConfigError(f"{path} is not a run directory: give --task to read it as a predictions file")
    spec = get_task(task)
    scoring = scoring or spec.default_scoring
    rows = read_predictions(path)
    check_ids(rows, spec, samples, str(path))
    by_sample = {s.id: s for s in samples or []}
    scorer = get_scorer(scoring, cjk=spec.cjk)
    side = Side(str(path), spec.name, scoring, [], {}, {}, {}, {}, {})
    for r in rows:
        s = scorer(r.prediction, r.gold)
        sample = by_sample.get(r.id)
        side.ids.append(r.id)
        side.f1[r.id], side.em[r.id], side.gold[r.id] = s.f1, s.em, r.gold
        side.split[r.id] = r.split or (sample.split if sample else None) or spec.splits.split_of(r.id)
        side.types[r.id] = list(sample.metadata.get("type") or []) if sample else []
    return side


def _side_from_run(
    path: Path, records: Iterable[dict], spec: TaskSpec, scoring: str, samples: list[Sample] | None
) -> Side:
    scorer = get_scorer(scoring, cjk=spec.cjk)
    by_sample = {s.id: s for s in samples or []}
    side = Side(str(path), spec.name, scoring, [], {}, {}, {}, {}, {})
    for rec in records:
        rid = str(rec["id"])
        gold = [str(g) for g in rec.get("gold") or []]
        pred = rec.get("prediction")
        s = scorer(None if pred is None else str(pred), gold)
        side.ids.append(rid)
        side.f1[rid], side.em[rid], side.gold[rid] = s.f1, s.em, gold
        side.split[rid] = rec.get("split") or spec.splits.split_of(rid)
        types = (rec.get("metadata") or {}).get("type") or (
            by_sample[rid].metadata.get("type") if rid in by_sample else []
        )
        side.types[rid] = [str(t) for t in (types if isinstance(types, list) else [types])]
    return side


def _group(name: str, a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> Group:
    """a, b: (n, 2) arrays of (f1, em)."""
    diff = b - a
    means = bootstrap_means(diff, resamples, np.random.default_rng(seed))
    lo, hi = confidence_interval(means)
    won = int(np.sum(diff[:, 0] > TIE))
    lost = int(np.sum(diff[:, 0] < -TIE))
    return Group(
        group=name,
        n=len(a),
        a_f1=float(a[:, 0].mean()),
        b_f1=float(b[:, 0].mean()),
        a_em=float(a[:, 1].mean()),
        b_em=float(b[:, 1].mean()),
        diff_f1=float(diff[:, 0].mean()),
        diff_em=float(diff[:, 1].mean()),
        ci_f1=(float(lo[0]), float(hi[0])),
        ci_em=(float(lo[1]), float(hi[1])),
        won=won,
        lost=lost,
        tied=len(a) - won - lost,
    )


def compare(a: Side, b: Side, *, resamples: int = 10_000, seed: int = 0) -> Comparison:
    if a.task != b.task:
        raise ConfigError(f"cannot compare {a.task} (A) with {b.task} (B): different tasks")
    if a.scoring != b.scoring:
        raise ConfigError(f"A is scored with {a.scoring}, B with {b.scoring}: pass --scoring to use one")
    if resamples < 1:
        raise ConfigError("--resamples must be at least 1")
    in_b = set(b.ids)
    ids = [i for i in a.ids if i in in_b]
    if not ids:
        raise InputError(f"{a.label} and {b.label} have no sample id in common")
    for i in ids:
        if a.gold[i] != b.gold[i]:
            raise InputError(f"sample {i} has different gold answers in A ({a.gold[i]}) and B ({b.gold[i]})")
    start = time.perf_counter()
    sa = np.array([[a.f1[i], a.em[i]] for i in ids])
    sb = np.array([[b.f1[i], b.em[i]] for i in ids])
    overall = _group("all", sa, sb, resamples, seed)
    splits = []
    for name in dict.fromkeys(a.split[i] for i in ids if a.split[i] is not None):
        mask = np.array([a.split[i] == name for i in ids])
        splits.append(_group(name, sa[mask], sb[mask], resamples, seed))
    types = []
    all_types = sorted({t for i in ids for t in a.types[i] or b.types.get(i) or []})
    for name in all_types:
        mask = np.array([name in (a.types[i] or b.types.get(i) or []) for i in ids])
        types.append(_group(name, sa[mask], sb[mask], resamples, seed))
    return Comparison(
        a=a.label,
        b=b.label,
        task=a.task,
        scoring=a.scoring,
        paired=len(ids),
        only_a=len(a.ids) - len(ids),
        only_b=len(set(b.ids) - set(ids)),
        resamples=resamples,
        seed=seed,
        seconds=time.perf_counter() - start,
        overall=overall,
        splits=splits,
        types=types,
        cost_a=a.cost,
        cost_b=b.cost,
    )


def _pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def to_text(c: Comparison) -> str:
    from matbench.display import pct, table

    head = [
        f"A: {c.a}",
        f"B: {c.b}",
        f"task {c.task}, scoring {c.scoring}: {c.paired} paired samples; unpaired: {c.only_a} only in A, "
        f"{c.only_b} only in B",
        f"differences B - A in points, paired bootstrap 95% CI ({c.resamples} resamples, seed {c.seed}); "
        "won/lost/tied = samples where B's F1 is higher/lower/equal",
    ]
    headers = [
        "group",
        "n",
        "A F1",
        "B F1",
        "dF1",
        "95% CI",
        "A EM",
        "B EM",
        "dEM",
        "95% CI",
        "won",
        "lost",
        "tied",
    ]
    sections = [("", [c.overall]), ("split", c.splits), ("type", c.types)]
    rows = []
    for prefix, groups in sections:
        for g in groups:
            rows.append(
                [
                    f"{prefix}:{g.group}" if prefix else g.group,
                    g.n,
                    pct(g.a_f1),
                    pct(g.b_f1),
                    _pp(g.diff_f1),
                    f"[{_pp(g.ci_f1[0])}, {_pp(g.ci_f1[1])}]",
                    pct(g.a_em),
                    pct(g.b_em),
                    _pp(g.diff_em),
                    f"[{_pp(g.ci_em[0])}, {_pp(g.ci_em[1])}]",
                    g.won,
                    g.lost,
                    g.tied,
                ]
            )
    note = ""
    if c.types:
        note = "\n(type groups overlap: a sample with several degradation types counts toward each of them)"
    cost = ""
    if c.cost_a is not None or c.cost_b is not None:
        from matbench.cost import cost_text

        def side(x: dict | None) -> str:
            return cost_text(x) if x is not None else "n/a (not a run directory)"

        cost = f"\ncost (whole runs): A {side(c.cost_a)}; B {side(c.cost_b)}"
    return "\n".join(head) + "\n\n" + table(headers, rows) + note + cost
