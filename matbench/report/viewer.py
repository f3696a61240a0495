"""``matbench view``: an HTML report of a run that opens at any size, as a local file with no server.

The page holds the run header, the summary table, the filters and a compact index of the samples (one small
JSON row each, in id order); the trajectories (thinking, action, search query and snippets, code with
stdout/stderr/error, problem labels and tips, input and produced images as thumbnails that open full size)
are written beside it in ``<report>_data/cNNNNN.js`` chunks and rendered only when a sample is opened. A
12,576-sample run no longer builds a 44 MB DOM at load.

The run directory is treated as untrusted: image references are resolved by
:mod:`matbench.records.files` (nothing outside the run, no links, no FIFOs or devices), all text is
rendered with ``textContent``, and every file the report writes is renamed into place. The page and its data
folder replace only a page and a folder that matbench's marker says it made (:mod:`matbench.records.outputs`).
"""

from __future__ import annotations

import html
import json
import logging
import shutil
from pathlib import Path

from matbench.errors import ConfigError
from matbench.judge.view import JudgeViews
from matbench.records.files import check_not_special
from matbench.records.outputs import (
    check_dir,
    check_file,
    file_marker,
    install_dir,
    new_dir_beside,
    write_file,
)
from matbench.records.run_dir import CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE, RunDir
from matbench.report.view_data import ImageLinker, detail, id_order, index_row
from matbench.report.view_header import config_text, stats_text
from matbench.report.view_page import page
from matbench.scoring.reader import RunScorer
from matbench.scoring.table import Scored, aggregate
from matbench.tasks import TaskSpec

log = logging.getLogger(__name__)

#: samples per detail chunk: small enough that opening one sample loads ~100 KB-1 MB
CHUNK = 100
#: rows of the list shown at once
PAGE_SIZE = 100
#: the outputs markers (matbench.records.outputs) of the page and of its data folder
PAGE_KIND = "view"
DATA_KIND = "view-data"
OPTION = "--out"


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _pct(x: object) -> str:
    return f"{100 * float(x):.2f}" if isinstance(x, (int, float)) else ""


def run_scorer(config: dict) -> RunScorer | None:
    """The run's scorer (as score and submit build it); None for a task or a scorer this matbench does not
    have (a plug-in's, not installed here): the report then shows the records' own numbers and says so."""
    from matbench.tasks import all_tasks

    task = config.get("task") if isinstance(config.get("task"), dict) else {}
    spec = all_tasks().get(str(task.get("name")))
    if spec is None:
        return None
    try:
        return RunScorer.of_run(spec, config)
    except ConfigError as exc:
        log.warning("%s: showing the recorded scores", exc)
        return None


def header(
    rows: list[dict],
    config: dict,
    summary: dict | None,
    scorer: RunScorer | None = None,
    source: str | None = None,
) -> str:
    """The config line, the run's numbers as text, the F1/EM table by split and the outcome counts."""
    spec = scorer.spec if scorer is not None else None
    main, exact = scorer.labels if scorer is not None else ("F1", "EM")
    scored = [
        Scored(
            r["id"],
            r["split"] or None,
            r["f1"],
            r["em"],
            missing=r["missing"],
            error=r.get("badge") == "error",
        )
        for r in rows
    ]
    agg = aggregate(scored, spec.splits.names if spec else ())
    table = "".join(
        f"<tr><td>{_e(name)}</td><td>{part['n']}</td><td>{_pct(part['f1'])}</td><td>{_pct(part['em'])}</td></tr>"
        for name, part in [*agg["splits"].items(), ("all", agg)]
    )
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("correct", "wrong", "error")}
    meta = " · ".join(f"<b>{_e(label)}</b> {_e(text)}" for label, text in config_text(config, source))
    run = (summary or {}).get("run")
    stats = stats_text(run) if isinstance(run, dict) else []
    return (
        f'<div class="meta">{meta}</div>'
        + (f'<div class="meta run">{_e(" · ".join(stats))}</div>' if stats else "")
        + f'<table class="sum"><tr><th>split</th><th>n</th><th>{_e(main)}</th><th>{_e(exact)}</th></tr>'
        + table
        + "</table>"
        + f'<div class="meta">{counts["correct"]} correct (EM 1), {counts["wrong"]} wrong, '
        + f"{counts['error']} error(s); missing predictions: {agg['missing']}</div>"
    )


def _targets(target: Path) -> str:
    """The data folder's name; a foreign file or folder where the page or its data go is refused first."""
    data_name = f"{target.stem}_data"
    check_file(target, PAGE_KIND, OPTION)
    check_dir(target.parent / data_name, DATA_KIND, OPTION)
    return data_name


def _write(target: Path, data_name: str, rows: list[dict], blobs: dict[str, dict], title: str, head: str) -> None:
    """The detail chunks (in natural id order) into ``<stem>_data/``, then the page that indexes them."""
    rows.sort(key=lambda r: id_order(r["id"]))
    tmp = new_dir_beside(target.parent / data_name)
    try:
        for n, start in enumerate(range(0, len(rows), CHUNK)):
            part = rows[start : start + CHUNK]
            for r in part:
                r["c"] = n
            payload = json.dumps(
                [blobs.pop(r["id"]) for r in part], ensure_ascii=False, separators=(",", ":")
            )
            (tmp / f"c{n:05d}.js").write_text(f"MB.chunk({n},{payload});\n", encoding="utf-8")
        install_dir(tmp, target.parent / data_name, DATA_KIND, OPTION)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    index = {"data_dir": data_name, "page_size": PAGE_SIZE, "rows": rows}
    write_file(target, page(title, head, rows, index, marker=file_marker(PAGE_KIND)), PAGE_KIND, OPTION)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) and its ``<stem>_data/`` folder beside it."""
    run = RunDir(run_dir)
    for name in (CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE):
        check_not_special(run.path / name)  # a FIFO or a device would block or never end
    config = run.read_config()
    target = Path(out) if out else run.path / "report.html"
    data_name = _targets(target)  # before any work
    images = ImageLinker(run.path, target.parent)

    scorer = run_scorer(config)
    verdicts = JudgeViews(run.path)
    rows: list[dict] = []
    blobs: dict[str, dict] = {}
    for no, rec in enumerate(run.iter_records(), 1):  # streamed: only the compact row and the detail are kept
        scorable = scorer is not None and "id" in rec and "gold" in rec  # else: the record's own numbers
        score = scorer.score_record(rec, no, file=str(run.predictions_path)) if scorable else None
        row = index_row(rec, score)
        judged = verdicts.of(rec)
        row["judge"] = judged["verdict"] if judged else None
        rows.append(row)
        blobs[row["id"]] = {**detail(rec, images), "judge": judged}
    head = header(rows, config, run.read_summary(), scorer) + verdicts.header()
    _write(target, data_name, rows, blobs, f"matbench report: {run.path.resolve().name}", head)
    return target


def _no_image(ref: object, caption: str) -> dict:
    """A predictions file has no run directory to show images from (its rows hold no trajectories)."""
    return {"ref": str(ref), "caption": caption, "why": "no run directory"}


def write_predictions_report(
    path: str | Path, spec: TaskSpec, scoring: str | None = None, out: str | Path | None = None
) -> Path:
    """The report of a predictions file that is not a run (the authors' JSON list of ``{id?, query?, gt,
    pred_answer}``, or JSON Lines): question, gold, prediction and scores, read and checked as ``matbench
    score`` reads them (ids and answers must belong to the task). Default ``<file stem>_report.html`` beside
    the file."""
    from matbench.scoring.predictions import check_ids, read_predictions, size_warning

    path = Path(path)
    target = Path(out) if out else path.parent / f"{path.stem}_report.html"
    data_name = _targets(target)
    preds = read_predictions(path)
    check_ids(preds, spec, None, str(path))  # refused in one line when they are another task's
    warning = size_warning(spec, len(preds), str(path))
    if warning:
        log.warning("%s", warning.removeprefix("warning: "))
    scorer = RunScorer(spec, scoring)
    rows: list[dict] = []
    blobs: dict[str, dict] = {}
    for p in preds:
        rec = {"id": p.id, "split": p.split, "question": p.question, "gold": p.gold, "prediction": p.prediction,
               "status": p.status}
        row = index_row(rec, scorer.score(p))
        row["judge"] = None
        rows.append(row)
        blobs[row["id"]] = {**detail(rec, _no_image), "judge": None}
    config = {"task": {"name": spec.name, "version": spec.version}, "scoring": scorer.name}
    head = header(rows, config, None, scorer, source=str(path))
    _write(target, data_name, rows, blobs, f"matbench report: {path.name}", head)
    return target
