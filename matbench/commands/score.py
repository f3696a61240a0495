"""`matbench score`: score a predictions file (the authors' result format or a matbench run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matbench.registry import SCORERS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a predictions file",
        description="Score a predictions file: the authors' JSON list of {id?, query?, gt, pred_answer} "
        "(rows without id take their 1-based position) or matbench's predictions.jsonl / a run directory.",
    )
    p.add_argument("predictions", help="predictions file or run directory")
    p.add_argument("--task", help="task name (see `matbench tasks`); a run directory carries its own")
    p.add_argument("--scoring", choices=SCORERS.names(), help="default: the task's (visual-arft)")
    p.add_argument("--data-dir", help="validate ids against the task's samples in this folder")
    p.add_argument("--data-file", help="validate ids against the task's samples in this file")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from matbench.display import score_table
    from matbench.scoring.predictions import score_file, size_warning, task_of
    from matbench.scoring.reader import RunScorer

    spec, config = task_of(args.predictions, args.task)
    scoring = RunScorer.of_run(spec, config, args.scoring).name
    samples = None
    if args.data_dir or args.data_file:
        from matbench.data.loaders import load_samples

        samples = load_samples(spec, data_dir=args.data_dir, data_file=args.data_file)
    result = score_file(args.predictions, spec, scoring, samples)
    if config is not None:  # a run: its LLM judge's accuracy beside F1/EM, when it was judged
        from matbench.judge.summary import run_judge_block

        path = Path(args.predictions)
        block = run_judge_block(path if path.is_dir() else path.parent)
        if block is not None:
            result["judge"] = block
    warning = size_warning(spec, result["n"] + result.get("errors", 0), str(args.predictions))
    if warning:
        print(warning, file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(score_table(result))
        if result.get("judge"):
            from matbench.judge.summary import judge_lines

            print("\n".join(judge_lines(result["judge"])))
    return 0
