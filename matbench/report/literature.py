"""The literature's rows: published judge accuracies (``matbench/data/literature.yaml``) as ``reported`` entries.

They carry one metric (e.g. GPT-4o-judged accuracy under SenseNova-MARS's protocol) and no F1/EM, so the
leaderboard shows them only in its judge table, apart from reproduced runs and never ranked with them. Each
entry names the repository, commit and file (with its sha256) the number was read from. The 95 % interval is
the Wilson interval of the published accuracy at the task's size (the tables give percentages only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matbench
from matbench.errors import ConfigError
from matbench.records.run_dir import safe_name
from matbench.report.entries import Entry, now_utc, save_entry
from matbench.tasks import get_task

LITERATURE_FILE = Path(__file__).resolve().parents[1] / "data" / "literature.yaml"
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Published:
    """One published cell: a system's accuracy (percent) in one section of a source's table."""

    source: str
    position: int  # the row's place in the source's table (the literature is listed as published)
    section: str
    setting: str
    group: str
    system: str
    accuracy: float | None  # None: the table shows "-" for this system


def wilson(p: float, n: int) -> list[float]:
    """The 95 % Wilson score interval of a proportion ``p`` over ``n`` trials (fractions)."""
    if n <= 0:
        return [0.0, 1.0]
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def load_literature(path: Path = LITERATURE_FILE) -> dict[str, dict]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the literature table: {exc}") from None
    sources = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(sources, dict):
        raise ConfigError(f"{path}: needs a `sources:` mapping")
    return sources


def published(sources: dict[str, dict]) -> list[Published]:
    out = []
    for key, src in sources.items():
        for section in src["sections"]:
            for group, system, accuracy in section["rows"]:
                pos = len(out) + 1
                out.append(Published(key, pos, section["name"], section["setting"], group, system, accuracy))
    return out


def literature_entry(item: Published, src: dict) -> Entry:
    spec = get_task(src["task"])
    n = int(src["n"])
    accuracy = round(float(item.accuracy) / 100, 8)
    section = safe_name(item.section.lower().replace("(", "").replace(")", ""))
    where = (
        f"{src['repository']} at {src['commit'][:12]}, {src['file']}, table {src['table']!r}, column "
        f"{src['column']}, section {item.section!r}"
    )
    return Entry(
        kind="reported",
        key=f"reported-{safe_name(item.source)}-{section}-{safe_name(item.system)}-{spec.name}",
        task=spec.name,
        task_version=spec.version,
        name=item.system,
        model={"spec": item.system, "name": None, "backend": None},
        protocol=f"{src['label']}: {item.section}",
        search=item.setting,
        scoring=src["metric"],
        n=n,
        missing=None,
        errors=None,
        input_errors=None,
        scores={},
        provenance=f"reported by {src['label']} ({where}); not rescored by matbench",
        matbench_version=matbench.__version__,
        submitted_at=now_utc(),
        source={
            "repository": src["repository"],
            "commit": src["commit"],
            "file": src["file"],
            "file_sha256": src["file_sha256"],
            "table": src["table"],
            "column": src["column"],
            "section": item.section,
            "group": item.group,
            "row": item.system,
            "position": item.position,
        },
        reported={"accuracy": float(item.accuracy), "unit": "percent"},
        judge={
            "accuracy": accuracy,
            "n": n,
            "ci95": wilson(accuracy, n),
            "ci95_method": f"Wilson, n={n} assumed (the table gives percentages only)",
            **src["judge"],
        },
        metric=src["metric"],
    )


def build_literature(directory: Path, path: Path = LITERATURE_FILE) -> list[tuple[Path, bool]]:
    """(Re)write every literature entry; systems whose cell is "-" get none."""
    sources = load_literature(path)
    return [
        save_entry(literature_entry(item, sources[item.source]), directory)
        for item in published(sources)
        if item.accuracy is not None
    ]
