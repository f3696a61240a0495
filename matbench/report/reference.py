"""Reference entries: the Visual-ARFT authors' published results, rescored by matbench where the files exist.

``AUTHORS_FILES`` maps each published prediction file to its system and task; ``rescored_entry`` scores one
with matbench's scorer. ``AUTHORS_REPORTED`` holds the four 3B multi-hop results whose prediction files are not
available here: the numbers come from the authors' rules applied to the authors' files, not from matbench,
and are stored as kind ``reported`` so that tables mark them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matbench
from matbench.errors import ConfigError, InputError
from matbench.predictions import check_ids, read_predictions
from matbench.records import safe_name
from matbench.report.entries import Entry, now_utc, save_entry, scores_from_result, sha256_file
from matbench.report.intervals import with_intervals
from matbench.scoring.reader import RunScorer
from matbench.tasks import get_task

AUTHORS_REPO = "https://github.com/Liuziyu77/Visual-RFT"
RESCORED = "published predictions, rescored"
REPORTED = "published predictions not available here; authors' rules applied to the authors' files (not rescored by matbench)"
AUTHORS_SEARCH = "authors' web search (top 4)"


@dataclass(frozen=True)
class AuthorsFile:
    file: str
    task: str
    name: str
    model: str


@dataclass(frozen=True)
class AuthorsReported:
    task: str
    name: str
    model: str
    f1: float  # percent, as computed
    em: float
    file: str


AUTHORS_FILES: tuple[AuthorsFile, ...] = (
    AuthorsFile("7b_mat_coding_grpo_step1400.json", "mat-coding", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("7b_step200_mat_search_web_n4.json", "mat-search", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("7b_step200_2wiki_web_n4.json", "2wikimultihopqa", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("7b_step200_hotpotqa_web_n4.json", "hotpotqa", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("7b_step200_musique_web_n4.json", "musique", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("7b_step200_bamboogle_web_n4.json", "bamboogle", "Visual-ARFT-7B", "visual-arft-7b"),
    AuthorsFile("3b_mat_coding_grpo_step1400.json", "mat-coding", "Visual-ARFT-3B", "visual-arft-3b"),
    AuthorsFile("3b_step200_mat_search_web_n4.json", "mat-search", "Visual-ARFT-3B", "visual-arft-3b"),
)

AUTHORS_REPORTED: tuple[AuthorsReported, ...] = (
    AuthorsReported(
        "2wikimultihopqa",
        "Visual-ARFT-3B",
        "visual-arft-3b",
        49.7697,
        39.1301,
        "3b_step200_2wiki_web_n4.json",
    ),
    AuthorsReported(
        "hotpotqa", "Visual-ARFT-3B", "visual-arft-3b", 41.3262, 30.1013, "3b_step200_hotpotqa_web_n4.json"
    ),
    AuthorsReported(
        "musique", "Visual-ARFT-3B", "visual-arft-3b", 19.1019, 11.5846, "3b_step200_musique_web_n4.json"
    ),
    AuthorsReported(
        "bamboogle", "Visual-ARFT-3B", "visual-arft-3b", 49.0110, 38.4000, "3b_step200_bamboogle_web_n4.json"
    ),
)


def _search_for(task: str) -> str | None:
    return AUTHORS_SEARCH if "search" in get_task(task).tools else None


def rescored_entry(
    pred_file: str | Path,
    task: str,
    *,
    name: str,
    model: str,
    provenance: str = "",
    scoring: str | None = None,
    search: str | None = None,
    protocol: str = "visual-arft",
) -> Entry:
    """Score an authors' result file with matbench's scorer and wrap it as a ``reference`` entry."""
    path = Path(pred_file)
    if not path.is_file():
        raise InputError("reference predictions file not found", file=str(path))
    spec = get_task(task)
    rows = read_predictions(path)
    check_ids(rows, spec, None, str(path))
    scorer = RunScorer(spec, scoring)
    scored = list(scorer.rows(rows))
    result = scorer.result(scored)
    note = f"{RESCORED}: {path.name}" + (f"; {provenance}" if provenance else "")
    return Entry(
        kind="reference",
        key=f"reference-{safe_name(model)}-{spec.name}",
        task=spec.name,
        task_version=spec.version,
        name=name,
        model={"spec": model, "name": None, "backend": None},
        protocol=protocol,
        search=search,
        scoring=result["scoring"],
        n=result["n"],
        missing=result["missing"],
        errors=None,
        input_errors=None,
        scores=with_intervals(scores_from_result(result), scored),
        provenance=note,
        matbench_version=matbench.__version__,
        submitted_at=now_utc(),
        predictions_sha256=sha256_file(path),
        source={"file": path.name, "repository": AUTHORS_REPO},
    )


def reported_entry(item: AuthorsReported) -> Entry:
    """A ``reported`` entry: numbers computed outside matbench, kept as published with their provenance."""
    spec = get_task(item.task)
    if spec.size is None:
        raise ConfigError(f"task {spec.name} has no size; a reported entry needs n")
    return Entry(
        kind="reported",
        key=f"reported-{safe_name(item.model)}-{spec.name}",
        task=spec.name,
        task_version=spec.version,
        name=item.name,
        model={"spec": item.model, "name": None, "backend": None},
        protocol="visual-arft",
        search=_search_for(item.task),
        scoring="visual-arft",
        n=int(spec.size),
        missing=None,
        errors=None,
        input_errors=None,
        scores={"all": {"n": int(spec.size), "f1": round(item.f1 / 100, 8), "em": round(item.em / 100, 8)}},
        provenance=f"{REPORTED}: {item.file}",
        matbench_version=matbench.__version__,
        submitted_at=now_utc(),
        source={"file": item.file, "repository": AUTHORS_REPO},
        reported={"f1": item.f1, "em": item.em, "unit": "percent"},
    )


def build_authors_references(pred_dir: str | Path, directory: Path) -> list[tuple[Path, bool]]:
    """(Re)write every authors' entry: rescore the files found in ``pred_dir``, store the reported ones."""
    pred_dir = Path(pred_dir)
    out = []
    for item in AUTHORS_FILES:
        entry = rescored_entry(
            pred_dir / item.file,
            item.task,
            name=item.name,
            model=item.model,
            provenance=f"the Visual-ARFT authors' result file ({AUTHORS_REPO})",
            search=_search_for(item.task),
        )
        out.append(save_entry(entry, directory))
    for rep in AUTHORS_REPORTED:
        out.append(save_entry(reported_entry(rep), directory))
    return out
