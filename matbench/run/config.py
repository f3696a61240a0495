"""Which parts of a run's ``config.json`` decide its results: the fingerprint, and the exact keys that differ.

`matbench eval` refuses to resume a run whose result-deciding configuration changed, naming each changed key
(``model.base_url``, ``task.spec_sha256``); `matbench submit` recomputes the fingerprint to catch an edited
config. How many samples were selected is not part of it: a run may be extended (a larger ``--limit``, more
``--ids``) and stays the same run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from matbench.records.run_dir import fingerprint
from matbench.tasks import TaskSpec

# Fields of config.json that change results; a resumed run must match them all.
FINGERPRINT_KEYS = ("task", "model", "protocol", "scoring", "search", "options", "decoding", "seed")
# Dotted keys inside those that only say how much of the task was selected.
SELECTION_KEYS = frozenset({"task.n_samples"})


def _leaves(node: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            _leaves(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = node


# How the hub data was asked for; once the commit it resolved to is known, that commit alone is the data.
REQUESTED_REVISION_KEYS = frozenset({"task.revision", "task.revision_pinned"})


def result_part(config: dict) -> dict:
    """The fingerprinted part of a configuration, selection keys left out. When the hub commit the data was
    loaded from is recorded, it stands for the data: a run resumed with ``--data-revision`` set to that
    commit is the same run as the unpinned one that resolved to it."""
    flat: dict[str, object] = {}
    for key in FINGERPRINT_KEYS:
        _leaves(config.get(key), key, flat)
    skip = SELECTION_KEYS
    if flat.get("task.revision_resolved") is not None:
        skip = skip | REQUESTED_REVISION_KEYS
    return {k: v for k, v in flat.items() if k not in skip}


def config_fingerprint(config: dict) -> str:
    return fingerprint(result_part(config))


def changed_keys(old: dict, new: dict) -> list[str]:
    """Dotted keys whose value differs between two configurations (in the fingerprinted part)."""
    a, b = result_part(old), result_part(new)
    keys = list(dict.fromkeys([*a, *b]))
    return [k for k in keys if a.get(k, _MISSING) != b.get(k, _MISSING)]


def spec_limits(spec: TaskSpec, direct: bool, protocol_max_new_tokens: int | None = None) -> dict[str, int]:
    """The per-episode limits a task spec sets (a direct run gets one call; a protocol may set its own token
    limit): runs are made with these, and `matbench submit` refuses a run whose config says otherwise."""
    limits = spec.limits
    return {
        "max_calls": 1 if direct else int(limits.get("max_calls", 5)),
        "max_new_tokens": protocol_max_new_tokens or int(limits.get("max_new_tokens", 1024)),
        "top_k": int(limits.get("top_k", 4)),
    }


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_MISSING = object()
