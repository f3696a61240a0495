"""The ``judge`` block of summary.json, and the ``judge`` field of a leaderboard entry.

Judge accuracy is reported beside F1/EM, never instead of them. Both blocks are computed from
``judgments.jsonl`` (the latest judgment of each sample whose current prediction it judged) and
``judge.json`` (who judged), so `matbench score`, `compare`, `view` and `submit` read the same numbers.

summary.json ``judge`` (fractions in 0..1)::

    accuracy          correct / n (None when n == 0)
    n                 judged samples: correct + incorrect + unparsed
    correct, incorrect, unparsed
    errors            judge API failures: never counted as incorrect; the same command judges them again
    pending           samples with no current judgment (not judged yet, or --max-cost reached)
    by_split          {split: {"accuracy", "n"}}
    by_method         {"em_match" | "no_answer" | "llm_judge": count}
    ci95              [lo, hi] bootstrap percentile interval of accuracy (10,000 resamples, seed 0)
    agreement_with_em {"value": share of EM=1 samples judged correct, "n": EM=1 samples judged}
    model             the judge as typed (alias, openai:NAME); identity: backend, model, base_url, served_model
    prompt            "matbench" | "sensenova-mars"; source: where its strings came from (repo, commit, sha256)
    vision            whether the judge got the sample's image
    deviations        where matbench cannot run the prompt's authors' judge identically (sensenova-mars)
    fingerprint       the judge's identity hash (judge.json)
    cost              {"usd", "spent_usd", "status", "price"}: usd prices every judge token, spent_usd only
                      calls not answered by the response cache
    tokens            the judge's token usage

Leaderboard entry field ``judge`` (STABLE: the leaderboard's judge column renders exactly these)::

    {"accuracy": float 0..1, "n": int, "ci95": [lo, hi], "model": str, "prompt": str,
     "prompt_source": "matbench" | "<repo>@<commit>", "unparsed": int, "errors": int,
     "by_split": {split: {"accuracy": float, "n": int}}}

An entry without judgments has no ``judge`` field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from matbench.judge.records import JUDGED, JudgmentsFile
from matbench.models.cost import UNKNOWN, Price, add_usage
from matbench.records.run_dir import cap_text

RESAMPLES = 10_000
SEED = 0


def current_judgments(
    run_dir: Path, records: Iterable[dict]
) -> tuple[list[tuple[dict, dict | None]], dict | None]:
    """``[(record, its current judgment or None)]`` for the run's latest records, and judge.json."""
    jf = JudgmentsFile(run_dir)
    config = jf.read_config()
    latest = jf.latest()
    fp = (config or {}).get("fingerprint")
    out = []
    for rec in records:
        if rec.get("status") == "error":  # an API error is not scored (nor by F1/EM): rerun, then judged
            continue
        j = latest.get(str(rec.get("id")))
        pred = rec.get("prediction")
        if j is not None and (
            j.get("judge") != fp or j.get("answer") != cap_text(None if pred is None else str(pred))
        ):
            j = None  # a stale judgment (the sample was rerun, or another judge): not counted
        out.append((rec, j))
    return out, config


def accuracy_ci(values: list[float]) -> list[float] | None:
    if not values:
        return None
    from matbench.scoring.bootstrap import bootstrap_means, confidence_interval

    means = bootstrap_means(np.array(values, dtype=np.float64), RESAMPLES, np.random.default_rng(SEED))
    lo, hi = confidence_interval(means, 0.95)
    return [round(float(lo[0]), 6), round(float(hi[0]), 6)]


def judge_block(
    pairs: list[tuple[dict, dict | None]], config: dict | None, price: Price | None = None
) -> dict:
    counts = {v: 0 for v in (*JUDGED, "error")}
    by_split: dict[str, list[int]] = {}
    by_method: dict[str, int] = {}
    em_n = em_correct = pending = 0
    values: list[float] = []
    tokens: dict[str, int] = {}
    billed: dict[str, int] = {}
    for rec, j in pairs:
        if j is None:
            pending += 1
            continue
        verdict = j.get("verdict")
        counts[verdict] = counts.get(verdict, 0) + 1
        add_usage(tokens, {k: v for k, v in (j.get("tokens") or {}).items() if isinstance(v, (int, float))})
        add_usage(
            billed, {k: v for k, v in (j.get("billed_tokens") or {}).items() if isinstance(v, (int, float))}
        )
        if verdict not in JUDGED:
            continue
        ok = verdict == "correct"
        values.append(1.0 if ok else 0.0)
        method = str(j.get("method"))
        by_method[method] = by_method.get(method, 0) + 1
        split = rec.get("split") or j.get("split")
        if split:
            cell = by_split.setdefault(str(split), [0, 0])
            cell[0] += ok
            cell[1] += 1
        if float(rec.get("em") or 0.0) >= 1.0:
            em_n += 1
            em_correct += ok
    n = len(values)
    config = config or {}
    if price is None and isinstance(config.get("price"), dict):
        try:
            price = Price(**config["price"])
        except TypeError:
            price = None
    if price is None:
        cost = {"usd": None, "spent_usd": None, "status": UNKNOWN, "price": None}
    else:
        cost = {
            "usd": round(price.cost(tokens), 6),
            "spent_usd": round(price.cost(billed), 6),
            "status": "ok",
            "price": price.to_dict(),
        }
    return {
        "accuracy": round(counts["correct"] / n, 6) if n else None,
        "n": n,
        "correct": counts["correct"],
        "incorrect": counts["incorrect"],
        "unparsed": counts["unparsed"],
        "errors": counts["error"],
        "pending": pending,
        "by_split": {
            name: {"accuracy": round(c / t, 6) if t else None, "n": t}
            for name, (c, t) in sorted(by_split.items())
        },
        "by_method": by_method,
        "ci95": accuracy_ci(values),
        "agreement_with_em": {"value": round(em_correct / em_n, 6) if em_n else None, "n": em_n},
        "model": config.get("model"),
        "identity": config.get("identity"),
        "prompt": config.get("prompt"),
        "source": config.get("source"),
        "vision": config.get("vision"),
        "deviations": config.get("deviations") or [],
        "fingerprint": config.get("fingerprint"),
        "cost": cost,
        "tokens": tokens,
    }


def run_judge_block(run_dir: str | Path) -> dict | None:
    """The block for a run directory from its files, or None when it has no judgments."""
    from matbench.records.run_dir import RunDir

    run = RunDir(run_dir)
    if not JudgmentsFile(run.path).exists():
        return None
    pairs, config = current_judgments(run.path, _slim(run.iter_records()))
    if config is None:
        return None
    return judge_block(pairs, config)


def _slim(records: Iterable[dict]) -> Iterable[dict]:
    for r in records:
        yield {k: r.get(k) for k in ("id", "split", "prediction", "em", "status")}


def write_judge_block(run_dir: str | Path, block: dict) -> bool:
    """Put the block into summary.json (a run that never finished has none yet: False)."""
    from matbench.records.run_dir import RunDir

    run = RunDir(run_dir)
    summary = run.read_summary()
    if summary is None:
        return False
    summary["judge"] = block
    run.write_summary(summary)
    return True


def entry_field(block: dict | None) -> dict | None:
    """The leaderboard entry's ``judge`` field (see the module docstring): None without judgments."""
    if not block or not block.get("n"):
        return None
    source = block.get("source") or {}
    where = (
        f"{source['repo']}@{source['commit']}" if source.get("repo") and source.get("commit") else "matbench"
    )
    return {
        "accuracy": block["accuracy"],
        "n": block["n"],
        "ci95": block.get("ci95"),
        "model": block.get("model"),
        "prompt": block.get("prompt"),
        "prompt_source": where,
        "unparsed": block.get("unparsed", 0),
        "errors": block.get("errors", 0),
        "by_split": block.get("by_split") or {},
    }


def judge_lines(block: dict) -> list[str]:
    """What `matbench judge`, `eval --judge` and `score` print."""
    if block.get("accuracy") is None:
        head = "judge accuracy: n/a (nothing judged)"
    else:
        ci = block.get("ci95")
        ci_text = f" [95% CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f}]" if ci else ""
        head = f"judge accuracy: {100 * block['accuracy']:.2f}{ci_text} (n={block['n']})"
    splits = "  ".join(
        f"{name} {100 * c['accuracy']:.2f} (n={c['n']})"
        for name, c in block.get("by_split", {}).items()
        if c.get("accuracy") is not None
    )
    agree = block.get("agreement_with_em") or {}
    agree_text = (
        f"{100 * agree['value']:.1f}% of {agree['n']} EM=1 samples judged correct"
        if agree.get("value") is not None
        else "no EM=1 samples"
    )
    lines = [
        f"{head}  judge={block.get('model')} prompt={block.get('prompt')}",
    ]
    if splits:
        lines.append(f"  by split: {splits}")
    lines.append(
        f"  unparsed={block.get('unparsed', 0)} errors={block.get('errors', 0)} pending={block.get('pending', 0)}"
        f"  agreement with EM: {agree_text}"
    )
    cost = block.get("cost") or {}
    usd = cost.get("usd")
    lines.append(f"  judge cost: {UNKNOWN if usd is None else f'${usd:.4f}'}")
    return lines
