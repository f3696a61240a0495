"""`matbench view`: write one self-contained HTML report of a run (thumbnails into RUN_DIR/thumbs/)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="write an HTML report of a run",
        description="Write one HTML report of a run: the summary, then every sample with its question, gold and "
        "predicted answer, F1/EM, status and each turn (thinking, action, search results, code and output, "
        "problem labels and tips, images as thumbnails that open full size), with client-side filters.",
    )
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--out", help="report file (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.report.viewer import write_report

    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
