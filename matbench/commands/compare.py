"""`matbench compare`: B - A on the same task, paired by sample id, with bootstrap confidence intervals."""

from __future__ import annotations

import argparse
import json

from matbench.registry import SCORERS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs (or prediction files) with a paired bootstrap",
        description="Pair the samples of A and B by id and print the F1/EM difference (B - A) with a paired "
        "bootstrap 95%% confidence interval, the samples won/lost/tied by F1, and breakdowns by split and (for "
        "MAT-Coding) degradation type; a sample with several types counts toward each. A and B are run "
        "directories, or prediction files (the authors' result format or predictions.jsonl) with --task.",
    )
    p.add_argument("run_a", help="A: run directory or predictions file")
    p.add_argument("run_b", help="B: run directory or predictions file")
    p.add_argument("--task", help="task of prediction files (run directories carry their own)")
    p.add_argument("--scoring", choices=SCORERS.names(), help="default: the runs' (or the task's)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data-dir", help="task samples (splits, degradation types) for prediction files")
    data.add_argument(
        "--data-file", help="task samples file (splits, degradation types) for prediction files"
    )
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.report.compare import compare, load_side, to_text

    samples = None
    if args.data_dir or args.data_file:
        from matbench.data.loaders import load_samples
        from matbench.errors import ConfigError
        from matbench.tasks import get_task

        if not args.task:
            raise ConfigError("--data-dir/--data-file need --task")
        samples = load_samples(get_task(args.task), data_dir=args.data_dir, data_file=args.data_file)
    a = load_side(args.run_a, task=args.task, scoring=args.scoring, samples=samples)
    b = load_side(args.run_b, task=args.task, scoring=args.scoring, samples=samples)
    result = compare(a, b, resamples=args.resamples, seed=args.seed)
    import sys

    from matbench.scoring.predictions import size_warning
    from matbench.tasks import get_task

    warning = size_warning(get_task(result.task), result.paired, "the pairing")
    if warning:
        print(warning, file=sys.stderr)
    print(json.dumps(result.to_dict()) if args.json else to_text(result))
    return 0
