"""``matbench sandbox run``: run one MAT-Coding snippet exactly as an episode would, and show the result."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from matbench.errors import MatbenchError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sandbox", help="run model-written code in the isolated code sandbox")
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run a snippet (placeholders path_to_input_image.jpg / path_to_output_image.jpg are mapped)",
    )
    run.add_argument("code", type=Path, help="Python file with the snippet ('-' reads standard input)")
    run.add_argument("--image", type=Path, help="input image that path_to_input_image.jpg stands for")
    run.add_argument("--timeout", type=float, default=20.0, help="wall-clock limit in seconds (default 20)")
    run.add_argument("--memory-mb", type=int, default=2048, help="address-space limit in MiB (default 2048)")
    run.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="bubblewrap or not (default auto)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    run.add_argument("--keep", type=Path, help="directory that keeps the input and output files")
    run.add_argument("--out", type=Path, help="copy the output image to this path")
    run.set_defaults(func=_run)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])


def _run(args: argparse.Namespace) -> int:
    from matbench.tools.sandbox import Sandbox, SandboxError

    if str(args.code) == "-":
        code = sys.stdin.read()
    elif args.code.is_file():
        code = args.code.read_text()
    else:
        raise MatbenchError(f"code file not found: {args.code}")
    if args.image is not None and not args.image.is_file():
        raise MatbenchError(f"input image not found: {args.image}")
    keep = args.keep if args.keep is not None else None
    if keep is None and args.out is None:
        keep = Path(tempfile.mkdtemp(prefix="matbench-sandbox-run-"))
    try:
        with Sandbox(
            timeout=args.timeout, memory_mb=args.memory_mb, workers=1, isolation=args.isolation
        ) as sb:
            result = sb.run(code, args.image, workdir=keep)
            if args.out is not None and result.output_image is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(result.output_image, args.out)
                result.output_image = args.out
    except SandboxError as exc:
        raise MatbenchError(str(exc)) from None
    if keep is None:
        result.workdir = None
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(_describe(result))
    return 0 if result.ok else 1


def _describe(result) -> str:  # noqa: ANN001 - CodeResult, imported lazily
    lines = [
        f"ok:           {result.ok}",
        f"isolation:    {result.isolation}",
        f"wall time:    {result.wall_time:.3f} s"
        + (f" (code {result.exec_time:.3f} s)" if result.exec_time is not None else ""),
        f"output image: {result.output_image or '-'}",
    ]
    if result.workdir is not None:
        lines.append(f"files kept:   {result.workdir}")
    if result.error:
        lines.append(f"error:        {result.error}")
    for title, text in (
        ("stdout", result.stdout),
        ("stderr", result.stderr),
        ("traceback", result.traceback),
    ):
        if text:
            lines.append(f"--- {title} ---")
            lines.append(text.rstrip("\n"))
    return "\n".join(lines)
