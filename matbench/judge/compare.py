"""`matbench compare` of judge accuracy: B - A over the samples both runs had judged, by the same judge.

Judge accuracies of two judges (or two prompts) are never differenced: the comparison says so instead. The
interval is the same paired bootstrap as F1/EM's (``scoring/bootstrap.py``, seeded per group).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from matbench.judge.records import JUDGED
from matbench.scoring.bootstrap import bootstrap_means, confidence_interval


@dataclass
class JudgeSide:
    """A run's current verdicts (1 correct, 0 incorrect or unparsed) by id, and who judged."""

    verdicts: dict[str, float]
    splits: dict[str, str | None]
    judge: dict  # model, prompt, fingerprint

    @property
    def label(self) -> str:
        return f"{self.judge.get('model')} ({self.judge.get('prompt')} prompt)"


@dataclass
class JudgeGroup:
    group: str
    n: int
    a: float
    b: float
    diff: float
    ci: tuple[float, float]


def judge_side(run_dir: str | Path) -> JudgeSide | None:
    """The run's judge verdicts, or None when it was not judged (or is not a run directory)."""
    from matbench.judge.summary import current_judgments
    from matbench.records.run_dir import RunDir

    path = Path(run_dir)
    run = RunDir(path if path.is_dir() else path.parent)
    if not (run.path / "judgments.jsonl").is_file() or not run.exists():
        return None
    records = ({k: r.get(k) for k in ("id", "split", "prediction", "status")} for r in run.iter_records())
    pairs, config = current_judgments(run.path, records)
    if config is None:
        return None
    verdicts, splits = {}, {}
    for rec, j in pairs:
        if j is not None and j.get("verdict") in JUDGED:
            rid = str(rec.get("id"))
            verdicts[rid] = 1.0 if j["verdict"] == "correct" else 0.0
            splits[rid] = rec.get("split") or j.get("split")
    info = {k: config.get(k) for k in ("model", "prompt", "fingerprint")}
    return JudgeSide(verdicts, splits, info)


def _group(name: str, a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> JudgeGroup:
    diff = b - a
    lo, hi = confidence_interval(bootstrap_means(diff, resamples, np.random.default_rng(seed)))
    return JudgeGroup(
        name, len(a), float(a.mean()), float(b.mean()), float(diff.mean()), (float(lo[0]), float(hi[0]))
    )


def compare_judges(a: JudgeSide | None, b: JudgeSide | None, *, resamples: int, seed: int) -> dict | None:
    """``{"judge", "paired", "groups": [...]}``, or ``{"note": why not}``; None when neither was judged."""
    if a is None and b is None:
        return None
    if a is None or b is None:
        return {"note": f"only {'B' if a is None else 'A'} was judged: no judge-accuracy difference"}
    if a.judge.get("fingerprint") != b.judge.get("fingerprint"):
        return {
            "note": f"A was judged by {a.label}, B by {b.label}: judge accuracies of different judges are not "
            "compared (judge both with one judge: `matbench judge RUN --judge MODEL`)"
        }
    ids = [i for i in a.verdicts if i in b.verdicts]
    if not ids:
        return {"note": "no sample was judged in both runs"}
    va = np.array([a.verdicts[i] for i in ids])
    vb = np.array([b.verdicts[i] for i in ids])
    groups = [_group("all", va, vb, resamples, seed)]
    for name in dict.fromkeys(a.splits[i] for i in ids if a.splits[i] is not None):
        mask = np.array([a.splits[i] == name for i in ids])
        groups.append(_group(str(name), va[mask], vb[mask], resamples, seed))
    return {"judge": a.judge, "paired": len(ids), "groups": [asdict(g) for g in groups]}


def judge_text(result: dict | None) -> str:
    if not result:
        return ""
    if "note" in result:
        return "\njudge accuracy: " + result["note"]
    from matbench.display import pct, table

    def pp(x: float) -> str:
        return f"{100 * x:+.2f}"

    judge = result["judge"]
    rows = [
        [g["group"], g["n"], pct(g["a"]), pct(g["b"]), pp(g["diff"]), f"[{pp(g['ci'][0])}, {pp(g['ci'][1])}]"]
        for g in result["groups"]
    ]
    head = (
        f"\njudge accuracy ({judge.get('model')}, {judge.get('prompt')} prompt): {result['paired']} samples judged "
        "in both runs; B - A with the same paired bootstrap"
    )
    return head + "\n" + table(["group", "n", "A judge", "B judge", "dJudge", "95% CI"], rows)
