"""`matbench view`: write one self-contained HTML report of a run (thumbnails into RUN_DIR/thumbs/), or of a
predictions file that is not a run (the authors' JSON list, with --task), as `matbench score` reads it."""

from __future__ import annotations

import argparse

from matbench.registry import SCORERS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="write an HTML report of a run or a predictions file",
        description="Write one HTML report of a run: the summary, then every sample with its question, gold and "
        "predicted answer, F1/EM, status and each turn (thinking, action, search results, code and output, "
        "problem labels and tips, images as thumbnails that open full size), with client-side filters. "
        "A predictions file that is not a run (the authors' JSON list of {id?, query?, gt, pred_answer}) "
        "needs --task and shows question, gold, prediction and scores.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR|FILE", help="the run directory, or a predictions file")
    p.add_argument("--task", help="the task of a predictions file (see `matbench tasks`); a run carries its own")
    p.add_argument("--scoring", choices=SCORERS.names(), help="a predictions file's scoring (default: the task's)")
    p.add_argument("--out", help="report file (default RUN_DIR/report.html, or FILE_STEM_report.html beside FILE)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from matbench.errors import ConfigError
    from matbench.records.files import check_not_special
    from matbench.records.run_dir import CONFIG_FILE, PREDICTIONS_FILE
    from matbench.report.viewer import write_predictions_report, write_report
    from matbench.scoring.predictions import run_config_of, task_of

    path = Path(args.run_dir)
    if path.is_dir() or path.name == PREDICTIONS_FILE:
        check_not_special((path if path.is_dir() else path.parent) / CONFIG_FILE)  # a FIFO would block
    config = run_config_of(path)
    if config is None:  # a predictions file: its task from --task, read and checked as `score` reads it
        spec, _ = task_of(path, args.task)
        written = write_predictions_report(path, spec, args.scoring, args.out)
    else:  # a run (its task may be a plug-in's that is not installed here: the report shows its own numbers)
        name = str((config.get("task") or {}).get("name"))
        if args.task and args.task != name:
            raise ConfigError(f"{path} is a run of task {name}, not {args.task}: leave out --task")
        if args.scoring:
            raise ConfigError("--scoring is for a predictions file: a run is shown with its own scoring")
        written = write_report(path if path.is_dir() else path.parent, args.out)
    print(f"wrote {written}")
    return 0
