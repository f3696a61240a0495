"""``matbench view``: an HTML report of a run that opens at any size, as a local file with no server.

The page holds the run header, the summary table, the filters and a compact index of the samples (one small
JSON row each, in id order); the trajectories (thinking, action, search query and snippets, code with
stdout/stderr/error, problem labels and tips, input and produced images as thumbnails that open full size)
are written beside it in ``<report>_data/cNNNNN.js`` chunks and rendered only when a sample is opened. A
12,576-sample run no longer builds a 44 MB DOM at load.

The run directory is treated as untrusted: image references are resolved by
:mod:`matbench.report.run_files` (nothing outside the run, no links, no FIFOs or devices), all text is
rendered with ``textContent``, and every file the report writes is renamed into place. The page and its data
folder replace only a page and a folder that matbench's marker says it made (:mod:`matbench.run.outputs`).
"""

from __future__ import annotations

import html
import json
import logging
import shutil
from pathlib import Path

from matbench.errors import ConfigError
from matbench.judge.view import JudgeViews
from matbench.records import CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE, RunDir
from matbench.report.run_files import check_not_special
from matbench.report.view_data import ImageLinker, detail, id_order, index_row, stats_text
from matbench.report.view_page import page
from matbench.run.outputs import check_dir, check_file, file_marker, install_dir, new_dir_beside, write_file
from matbench.scoring.reader import RunScorer
from matbench.scoring.table import Scored, aggregate

log = logging.getLogger(__name__)

#: samples per detail chunk: small enough that opening one sample loads ~100 KB-1 MB
CHUNK = 100
#: rows of the list shown at once
PAGE_SIZE = 100
#: the outputs markers (matbench.run.outputs) of the page and of its data folder
PAGE_KIND = "view"
DATA_KIND = "view-data"


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


def header(rows: list[dict], config: dict, summary: dict | None, scorer: RunScorer | None = None) -> str:
    """The config line, the run's numbers as text, the F1/EM table by split and the outcome counts."""
    task = config.get("task") if isinstance(config.get("task"), dict) else {}
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
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    proto = config.get("protocol") if isinstance(config.get("protocol"), dict) else {}
    search = config.get("search") if isinstance(config.get("search"), dict) else {}
    meta = (
        f'<div class="meta"><b>task</b> {_e(task.get("name"))} v{_e(task.get("version"))} · '
        f"<b>model</b> {_e(model.get('spec'))} ({_e(model.get('model'))}, {_e(model.get('backend'))}) · "
        f"<b>protocol</b> {_e(proto.get('name'))} · <b>scoring</b> {_e(config.get('scoring'))} · "
        f"<b>search</b> {_e(search.get('backend') or '-')} · <b>created</b> {_e(config.get('created'))}</div>"
    )
    run = (summary or {}).get("run")
    stats = stats_text(run) if isinstance(run, dict) else []
    return (
        meta
        + (f'<div class="meta run">{_e(" · ".join(stats))}</div>' if stats else "")
        + f'<table class="sum"><tr><th>split</th><th>n</th><th>{_e(main)}</th><th>{_e(exact)}</th></tr>'
        + table
        + "</table>"
        + f'<div class="meta">{counts["correct"]} correct (EM 1), {counts["wrong"]} wrong, '
        + f"{counts['error']} error(s); missing predictions: {agg['missing']}</div>"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) and its ``<stem>_data/`` folder beside it."""
    run = RunDir(run_dir)
    for name in (CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE):
        check_not_special(run.path / name)  # a FIFO or a device would block or never end
    config = run.read_config()
    target = Path(out) if out else run.path / "report.html"
    data_name = f"{target.stem}_data"
    option = "--out"
    check_file(target, PAGE_KIND, option)  # before any work: a foreign file or folder there is refused
    check_dir(target.parent / data_name, DATA_KIND, option)
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
        install_dir(tmp, target.parent / data_name, DATA_KIND, option)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    title = f"matbench report: {run.path.resolve().name}"
    index = {"data_dir": data_name, "page_size": PAGE_SIZE, "rows": rows}
    head = header(rows, config, run.read_summary(), scorer) + verdicts.header()
    write_file(target, page(title, head, rows, index, marker=file_marker(PAGE_KIND)), PAGE_KIND, option)
    return target
