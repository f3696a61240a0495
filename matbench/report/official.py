"""What makes a run *official*: it was evaluated on the task's official gold set.

The official gold set of a task (every sample id with its gold answers and split) is pinned in its task spec as
``data.gold_sha256``. `matbench submit` hashes the gold set of the data it validates against; only an exact
match is official. A local copy with edited answers, a demo subset or a different release hashes differently:
such runs can be stored only as unofficial entries, which the leaderboard shows apart and never ranks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from matbench.data.sample import Sample
from matbench.display import plural
from matbench.tasks import TaskSpec


def _id_key(sample_id: str) -> tuple:
    return (0, int(sample_id), "") if sample_id.isdigit() else (1, 0, sample_id)


def gold_digest(samples: Iterable[Sample]) -> str:
    """sha256 of the canonical gold set: ``[[id, answers, split], ...]`` sorted by id, compact JSON."""
    rows = sorted(
        ([s.id, [str(a) for a in s.answers], s.split] for s in samples), key=lambda r: _id_key(r[0])
    )
    blob = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def unofficial_reason(spec: TaskSpec, samples: list[Sample]) -> str | None:
    """None when ``samples`` are the task's official gold set, else why not (one line)."""
    pinned = spec.data.get("gold_sha256")
    if not pinned:
        return f"task {spec.name} pins no official gold set (data.gold_sha256 in {spec.path.name})"
    digest = gold_digest(samples)
    if digest == pinned:
        return None
    size = plural(len(samples), "sample") + (f" of {spec.size}" if spec.size is not None else "")
    return (
        f"the data is not the official {spec.name} gold set ({size}, gold sha256 {digest[:12]}, "
        f"official {str(pinned)[:12]})"
    )
