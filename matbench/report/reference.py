"""Reference entries: the Visual-ARFT authors' published prediction files, rescored by matbench's scorer.

``AUTHORS_FILES`` maps each published prediction file (its path in the authors' repository at the pinned
commit) to its system and task; ``rescored_entry`` scores one. Every file the authors published is rescored,
so no Visual-ARFT cell is a number taken on trust. ``build_authors_references`` reads them from a flat folder
of files or from a copy of the authors' repository (the folder holding ``Visual-ARFT/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matbench
from matbench.errors import InputError
from matbench.protocols.authors_source import AUTHORS_COMMIT, TOP
from matbench.records.run_dir import safe_name
from matbench.report.entries import Entry, now_utc, save_entry, scores_from_result, sha256_file
from matbench.report.intervals import with_intervals
from matbench.scoring.predictions import check_ids, read_predictions
from matbench.scoring.reader import RunScorer
from matbench.tasks import get_task

AUTHORS_REPO = "https://github.com/Liuziyu77/Visual-RFT"
RESCORED = "published predictions, rescored"
AUTHORS_SEARCH = "authors' web search (top 4)"
CODING_RESULTS = f"{TOP}/evaluation_coding/evaluation_results"
SEARCH_RESULTS = f"{TOP}/evaluation_search/evaluation_results"


@dataclass(frozen=True)
class AuthorsFile:
    file: str
    task: str
    name: str
    model: str
    folder: str  # where the file lives in the authors' repository
    variant: str = ""  # a second published evaluation of the same checkpoint (the ``_v2`` files)

    @property
    def repo_path(self) -> str:
        return f"{self.folder}/{self.file}"


def _coding(file: str, name: str, model: str, variant: str = "") -> AuthorsFile:
    return AuthorsFile(file, "mat-coding", name, model, CODING_RESULTS, variant)


def _search(size: str, task: str, folder: str, part: str) -> AuthorsFile:
    name, model = f"Visual-ARFT-{size.upper()}", f"visual-arft-{size}"
    return AuthorsFile(f"{size}_step200_{part}_web_n4.json", task, name, model, f"{SEARCH_RESULTS}/{folder}")


AUTHORS_FILES: tuple[AuthorsFile, ...] = (
    _coding("7b_mat_coding_grpo_step1400.json", "Visual-ARFT-7B", "visual-arft-7b"),
    _coding("3b_mat_coding_grpo_step1400.json", "Visual-ARFT-3B", "visual-arft-3b"),
    _coding("7b_mat_coding_grpo_step1400_v2.json", "Visual-ARFT-7B (v2 file)", "visual-arft-7b", "v2"),
    _coding("3b_mat_coding_grpo_step1400_v2.json", "Visual-ARFT-3B (v2 file)", "visual-arft-3b", "v2"),
    *(
        _search(size, task, folder, part)
        for size in ("7b", "3b")
        for task, folder, part in (
            ("mat-search", "MAT-Search", "mat_search"),
            ("2wikimultihopqa", "2wiki", "2wiki"),
            ("hotpotqa", "hotpotqa", "hotpotqa"),
            ("musique", "musique", "musique"),
            ("bamboogle", "bamboogle", "bamboogle"),
        )
    ),
)


def authors_file_path(root: Path, item: AuthorsFile) -> Path:
    """``item`` under ``root``: a copy of the authors' repository (the folder holding ``Visual-ARFT/``, or
    ``Visual-ARFT/`` itself) or a flat folder of their files."""
    for base in (root, root.parent if root.name == TOP else None):
        if base is not None and (base / TOP).is_dir():
            return base / item.repo_path
    return root / item.file


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
    variant: str = "",
    repo_path: str | None = None,
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
        key="-".join(
            p for p in ("reference", safe_name(model), safe_name(variant) if variant else "", spec.name) if p
        ),
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
        source={"file": path.name, "repository": AUTHORS_REPO}
        | ({"path": repo_path, "commit": AUTHORS_COMMIT} if repo_path else {}),
    )


def build_authors_references(pred_dir: str | Path, directory: Path) -> list[tuple[Path, bool]]:
    """(Re)write every authors' entry, rescoring each published file found under ``pred_dir`` (a flat folder
    or the authors' repository layout). A missing file is an error: no cell is taken on trust."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError("not a folder of the authors' prediction files", file=str(pred_dir))
    paths = {item: authors_file_path(pred_dir, item) for item in AUTHORS_FILES}
    absent = [item.repo_path for item, path in paths.items() if not path.is_file()]
    if absent:
        raise InputError(
            f"{len(absent)} of the authors' prediction files are missing: {', '.join(absent[:4])}"
            + (" ..." if len(absent) > 4 else "")
            + f" (a copy of {AUTHORS_REPO} at {AUTHORS_COMMIT[:12]}, or a flat folder of the files)",
            file=str(pred_dir),
        )
    out = []
    for item in AUTHORS_FILES:
        entry = rescored_entry(
            paths[item],
            item.task,
            name=item.name,
            model=item.model,
            provenance=f"the Visual-ARFT authors' result file ({AUTHORS_REPO})",
            search=_search_for(item.task),
            variant=item.variant,
            repo_path=item.repo_path,
        )
        out.append(save_entry(entry, directory))
    return out
