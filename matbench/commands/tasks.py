"""`matbench tasks`: list the registered tasks with sizes, sources, tools and versions."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the tasks", description="List the registered tasks.")
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from matbench.display import table
    from matbench.tasks import all_tasks

    specs = all_tasks()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "version": s.version,
                        "size": s.size,
                        "source": s.source_label(),
                        "tools": list(s.tools),
                        "image": s.image,
                        "splits": s.splits.names,
                        "protocols": sorted(s.protocols),
                        "scoring": s.default_scoring,
                    }
                    for s in specs.values()
                ],
                indent=2,
            )
        )
        return 0
    rows = [
        [
            s.name,
            s.size,
            ",".join(s.tools) or "-",
            "yes" if s.image else "no",
            "/".join(s.splits.names) or "-",
            s.version,
            s.source_label(),
        ]
        for s in specs.values()
    ]
    print(table(["task", "n", "tools", "image", "splits", "version", "source"], rows))
    return 0
