"""`matbench leaderboard`: the table of submitted entries (md, csv, json or html); --write regenerates
leaderboard/README.md and leaderboard/index.html."""

from __future__ import annotations

import argparse

from matbench.display import plural


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="show or regenerate the leaderboard",
        description="One row per system (name, model, protocol, search backend, scoring), F1 and EM per task "
        "(simple/hard for the MAT tasks), n and error counts. Markdown/HTML show percent; CSV/JSON fractions.",
    )
    p.add_argument("--task", action="append", help="only this task (repeatable); default: every task present")
    p.add_argument(
        "--format",
        choices=["text", "md", "csv", "json", "html"],
        help="default: text (a table that fits 100 columns) in a terminal, md otherwise",
    )
    p.add_argument("--ci", action="store_true", help="text format: show the 95%% intervals")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.add_argument("--sort", help="column to sort by, e.g. mat-coding.f1, mat-search.hard.em, system")
    p.add_argument(
        "--leaderboard-dir", help="default: $MATBENCH_LEADERBOARD_DIR or the repository's leaderboard/"
    )
    p.add_argument(
        "--write", action="store_true", help="regenerate README.md and index.html in the leaderboard dir"
    )
    p.add_argument(
        "--screenshot",
        action="store_true",
        help="with --write: also save screenshot.png (needs playwright+chromium)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from matbench.errors import ConfigError, InputError
    from matbench.report import leaderboard_dir, submissions_dir, writable_leaderboard_dir
    from matbench.report.entries import load_entries
    from matbench.report.leaderboard import build_board, to_csv, to_json, to_markdown

    root = writable_leaderboard_dir(args.leaderboard_dir) if args.write else leaderboard_dir(args.leaderboard_dir)

    def bad(exc: InputError) -> None:  # one line per malformed entry; the rest still builds
        print(f"matbench: refused leaderboard entry {exc}", file=sys.stderr)

    entries = load_entries(submissions_dir(root), on_bad=bad)
    if not entries:
        raise ConfigError(
            f"no leaderboard entries in {submissions_dir(root)} (add some with `matbench submit`)"
        )
    board = build_board(entries, args.task, args.sort)
    if args.write:
        from matbench.report.board_write import write_board
        from matbench.report.html_page import render_page

        written = write_board(root, to_markdown(board), render_page(board), screenshot=args.screenshot)
        print(f"wrote {', '.join(str(p) for p in written)} ({plural(len(board.rows), 'row')})")
        return 0
    fmt = args.format or ("text" if sys.stdout.isatty() else "md")
    if fmt == "html":
        from matbench.report.html_page import render_page

        text = render_page(board)
    elif fmt == "text":
        from matbench.report.board_text import to_text

        text = to_text(board, ci=args.ci)
    else:
        text = {"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](board)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0
