"""``matbench capitals-info``: a command added by a plug-in."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capitals-info", help="what the example plug-in adds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("matbench-example-plugin: scorer contains, search keyword, task capitals, data format qa-tsv")
    return 0
