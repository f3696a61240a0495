"""Thin command line: each sub-command lives in ``matbench/commands/<name>.py``.

A command is a ``register(subparsers)`` function (adds its parser and sets ``func``) named in
:data:`matbench.registry.COMMANDS`; its module imports heavy dependencies lazily inside the handler, so that
``matbench --help`` starts fast. Adding a command is one file plus one registry line, or a
``matbench.commands`` entry point in a plug-in package.
"""

from __future__ import annotations

import argparse
import logging
import sys

from matbench import __version__
from matbench.errors import MatbenchError
from matbench.registry import COMMANDS

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matbench",
        description="Evaluate vision-language models as tool-using agents (MAT-Search, MAT-Coding, multi-hop QA).",
    )
    parser.add_argument("--version", action="version", version=f"matbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS.names():
        if COMMANDS.origin(name) == "matbench":
            COMMANDS.load(name)(sub)
            continue
        try:  # a broken plug-in must not take the whole command line down
            COMMANDS.load(name)(sub)
        except (MatbenchError, argparse.ArgumentError) as exc:
            log.warning("plug-in command %r left out: %s", name, exc)
    for command in sub.choices.values():
        # `matbench eval -v ...` as well as `matbench -v eval ...` (SUPPRESS: the top-level value stands
        # unless the flag is given after the command)
        if "-v" not in command._option_string_actions:
            command.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging on stderr"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a "rerun this to resume" line repeats
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MatbenchError as exc:
        print(f"matbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("matbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
