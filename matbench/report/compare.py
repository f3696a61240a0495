"""``matbench compare``: two systems on the same task, paired by sample id.

Differences are B - A. Each group (all, each split, each MAT-Coding degradation type) gets the mean F1/EM of
both sides, the difference with a paired bootstrap 95% interval (seeded; every group restarts from the same
seed so its interval does not depend on which other groups exist), and the samples B won / lost / tied by F1.
A sample with several degradation types (["rotation90", "dark"]) counts toward each of its types, so the type
groups overlap and their sizes add up to more than the total.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from matbench.data.sample import Sample
from matbench.errors import ConfigError, InputError
from matbench.judge.compare import compare_judges, judge_text
from matbench.models.cost import CostTally, price_of_run
from matbench.records.run_dir import RunDir
from matbench.scoring.bootstrap import bootstrap_means, confidence_interval
from matbench.scoring.predictions import check_ids, read_predictions, task_of
from matbench.scoring.reader import PredRow, RunScorer

TIE = 1e-12


class Side:
    """One system's per-sample scores, rescored from its predictions, packed by row (first-seen id order):
    about 150 bytes a sample, so two 12,576-sample runs compare in a few MB beyond the interpreter. Gold answers
    are kept as a hash: A and B only need to agree on them."""

    def __init__(self, label: str, task: str, scoring: str) -> None:
        self.label, self.task, self.scoring = label, task, scoring
        self.index: dict[str, int] = {}  # id -> row
        self.f1 = array("d")
        self.em = array("d")
        # hash of the row's gold answers (one process: the same str hash on both sides)
        self.gold = array("q")
        self.split: list[str | None] = []  # shared strings
        self.types: list[tuple[str, ...]] = []  # shared tuples
        self._shared: dict = {}
        self.cost: dict | None = None  # run directories: matbench.models.cost's block for the whole run
        self.judge = None  # run directories with judgments.jsonl: a matbench.judge.compare.JudgeSide

    def _share(self, value):
        return self._shared.setdefault(value, value)

    def add(
        self, rid: str, f1: float, em: float, gold: list[str], split: str | None, types: list[str]
    ) -> None:
        """A sample's row; a later one for the same id replaces it in place (as the records' latest line)."""
        row = self.index.get(rid)
        if row is None:
            row = self.index[rid] = len(self.f1)
            self.f1.append(f1)
            self.em.append(em)
            self.gold.append(0)
            self.split.append(None)
            self.types.append(())
        self.f1[row], self.em[row] = f1, em
        self.gold[row] = hash(tuple(gold))
        self.split[row] = self._share(split)
        self.types[row] = self._share(tuple(types))

    @property
    def ids(self) -> list[str]:
        return list(self.index)


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
    judge: dict | None = None  # the judge-accuracy difference (matbench/judge/compare.py), when judged

    def to_dict(self) -> dict:
        return asdict(self)


def load_side(
    path: str | Path,
    *,
    task: str | None = None,
    scoring: str | None = None,
    samples: list[Sample] | None = None,
) -> Side:
    """A run directory (task and scoring from its config; a different ``task`` is refused) or a predictions
    file (needs ``task``)."""
    path = Path(path)
    spec, config = task_of(path, task)
    if config is not None:
        run = RunDir(path if path.is_dir() else path.parent)
        scorer = RunScorer.of_run(spec, config, scoring)
        tally = CostTally()
        side = _side_from_run(path, tally.watch(run.iter_records()), scorer, samples)  # streamed
        if not side.ids:
            raise InputError(
                "holds no predictions (an empty run compares nothing)", file=str(run.predictions_path)
            )
        side.cost = tally.block(price_of_run(config, run.read_summary()))
        from matbench.judge.compare import judge_side

        side.judge = judge_side(run.path)
        return side
    scorer = RunScorer(spec, scoring)
    rows = read_predictions(path)
    check_ids(rows, spec, samples, str(path))
    by_sample = {s.id: s for s in samples or []}
    split_of_sample = {s.id: s.split for s in samples or []}
    side = Side(str(path), spec.name, scorer.name)
    for r in rows:
        s = scorer.score(r, split_of_sample)
        sample = by_sample.get(r.id)
        types = list(sample.metadata.get("type") or []) if sample else []
        side.add(r.id, s.f1, s.em, r.gold, s.split, types)
    return side


def _side_from_run(
    path: Path, records: Iterable[dict], scorer: RunScorer, samples: list[Sample] | None
) -> Side:
    by_sample = {s.id: s for s in samples or []}
    side = Side(str(path), scorer.spec.name, scorer.name)
    for no, rec in enumerate(records, 1):  # one record at a time: only the packed row is kept
        r = PredRow.from_record(rec, no, file=str(path))
        s = scorer.score(r)
        types = (rec.get("metadata") or {}).get("type") or (
            by_sample[r.id].metadata.get("type") if r.id in by_sample else []
        )
        types = [str(t) for t in (types if isinstance(types, list) else [types])]
        side.add(r.id, s.f1, s.em, r.gold, s.split, types)
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
    ra, rb = array("q"), array("q")  # the rows of each paired id in A and in B, in A's order
    for i, row in a.index.items():
        other = b.index.get(i)
        if other is not None:
            ra.append(row)
            rb.append(other)
    if not ra:
        raise InputError(f"{a.label} and {b.label} have no sample id in common")
    ids = list(a.index)
    for x, y in zip(ra, rb, strict=True):
        if a.gold[x] != b.gold[y]:
            raise InputError(
                f"sample {ids[x]} has different gold answers in A and B: they were not run on the same data"
            )
    start = time.perf_counter()
    ia, ib = np.frombuffer(ra, dtype=np.int64), np.frombuffer(rb, dtype=np.int64)
    sa = np.column_stack([np.frombuffer(a.f1)[ia], np.frombuffer(a.em)[ia]])
    sb = np.column_stack([np.frombuffer(b.f1)[ib], np.frombuffer(b.em)[ib]])
    overall = _group("all", sa, sb, resamples, seed)
    splits = []
    for name in dict.fromkeys(a.split[x] for x in ra if a.split[x] is not None):
        mask = np.array([a.split[x] == name for x in ra])
        splits.append(_group(name, sa[mask], sb[mask], resamples, seed))
    types = []
    pair_types = [a.types[x] or b.types[y] for x, y in zip(ra, rb, strict=True)]
    for name in sorted({t for ts in pair_types for t in ts}):
        mask = np.array([name in ts for ts in pair_types])
        types.append(_group(name, sa[mask], sb[mask], resamples, seed))
    return Comparison(
        a=a.label,
        b=b.label,
        task=a.task,
        scoring=a.scoring,
        paired=len(ra),
        only_a=len(a.index) - len(ra),
        only_b=len(b.index) - len(ra),
        resamples=resamples,
        seed=seed,
        seconds=time.perf_counter() - start,
        overall=overall,
        splits=splits,
        types=types,
        cost_a=a.cost,
        cost_b=b.cost,
        judge=compare_judges(a.judge, b.judge, resamples=resamples, seed=seed),
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
        from matbench.models.cost import cost_text

        def side(x: dict | None) -> str:
            return cost_text(x) if x is not None else "n/a (not a run directory)"

        cost = f"\ncost (whole runs): A {side(c.cost_a)}; B {side(c.cost_b)}"
    return "\n".join(head) + "\n\n" + table(headers, rows) + note + cost + judge_text(c.judge)
