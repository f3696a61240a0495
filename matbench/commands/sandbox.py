"""``matbench sandbox run``: run one MAT-Coding snippet exactly as an episode would, and show the result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from matbench.errors import ConfigError, MatbenchError
from matbench.tools.sandbox import DEFAULT_CODE_TIMEOUT, INPUT_PLACEHOLDER

# --out writes the format its suffix names (PIL format names)
OUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
               ".webp": "WEBP", ".gif": "GIF"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sandbox", help="run model-written code in the isolated code sandbox")
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run a snippet (placeholders path_to_input_image.jpg / path_to_output_image.jpg are mapped)",
    )
    run.add_argument("code", type=Path, help="Python file with the snippet ('-' reads standard input)")
    run.add_argument("--image", type=Path, help="input image that path_to_input_image.jpg stands for")
    run.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CODE_TIMEOUT,
        help=f"wall-clock limit in seconds (default {DEFAULT_CODE_TIMEOUT:g}, as eval's --code-timeout)",
    )
    run.add_argument("--memory-mb", type=int, default=2048, help="address-space limit in MiB (default 2048)")
    run.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="bubblewrap or not (default auto: bubblewrap, else refused unless --unsafe-no-sandbox)",
    )
    run.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run the code even without bubblewrap isolation (as eval's option of the same name)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    run.add_argument("--keep", type=Path, help="directory that keeps the input and output files (else none)")
    run.add_argument(
        "--out", type=Path, help="write the output image here, in the format its suffix names (.png, .jpg, ...)"
    )
    run.set_defaults(func=_run)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])


def _run(args: argparse.Namespace) -> int:
    from matbench.tools.sandbox import SandboxError
    from matbench.tools.sandbox_policy import open_code_sandbox

    if str(args.code) == "-":
        code = sys.stdin.read()
    elif args.code.is_file():
        code = args.code.read_text()
    else:
        raise MatbenchError(f"code file not found: {args.code}")
    if args.image is None and INPUT_PLACEHOLDER in code:
        raise ConfigError(f"the code reads {INPUT_PLACEHOLDER}: give the input image with --image FILE")
    if args.image is not None and not args.image.is_file():
        raise MatbenchError(f"input image not found: {args.image}")
    out_format = _out_format(args.out)
    if args.isolation == "none" and not args.unsafe_no_sandbox:
        raise ConfigError("--isolation none runs the code without isolation: add --unsafe-no-sandbox to mean it")
    try:
        if args.unsafe_no_sandbox:
            from matbench.tools.sandbox import Sandbox

            sb = Sandbox(timeout=args.timeout, memory_mb=args.memory_mb, workers=1, isolation=args.isolation)
        else:
            sb = open_code_sandbox("this snippet", args.timeout, 1, False, after="", memory_mb=args.memory_mb)
        with sb:  # without --keep every file lives in the sandbox root, which goes with it
            result = sb.run(code, args.image, workdir=args.keep)
            if args.out is not None and result.output_image is not None:
                _write_as(result.output_image, args.out, out_format)
                result.output_image = args.out
            elif args.keep is None:
                result.output_image = None
    except SandboxError as exc:
        raise MatbenchError(str(exc)) from None
    if args.keep is None:
        result.workdir = None
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(_describe(result))
    return 0 if result.ok else 1


def _out_format(out: Path | None) -> str | None:
    if out is None:
        return None
    fmt = OUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out {out}: name the image format by its suffix ({', '.join(OUT_FORMATS)})")
    return fmt


def _write_as(src: Path, dst: Path, fmt: str) -> None:
    """The verified output image, re-encoded when the suffix names another format than the snippet wrote."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        if img.format == fmt:
            dst.write_bytes(src.read_bytes())
            return
        if fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(dst, format=fmt)


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
