"""`matbench merge`: join the shards of a run (`matbench eval --shard I/N`) into one run directory."""

from __future__ import annotations

import argparse

from matbench.display import plural


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge the shards of a run into one run directory",
        description="Check that the run directories are all N shards of one run (`matbench eval --shard I/N`): "
        "one configuration, each finished, together every sample of the task exactly once; then write one run "
        "directory that score, submit, compare and view accept.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="the shards' run directories")
    p.add_argument("--out", help="the merged run directory (default: beside the first shard)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data-dir", help="load the task's samples from this folder (overrides the runs')")
    data.add_argument("--data-file", help="load the task's samples from this file (overrides the runs')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.display import pct
    from matbench.run.merge import merge_runs

    path, summary = merge_runs(args.runs, args.out, data_dir=args.data_dir, data_file=args.data_file)
    r = summary["run"]
    print(
        f"merged {plural(r['shards'], 'shard')}, {plural(summary['n'], 'sample')}: F1 {pct(summary['f1'])} EM {pct(summary['em'])} "
        f"errors={r['errors']} input_errors={r['input_errors']}\nrun directory: {path}"
    )
    return 0
