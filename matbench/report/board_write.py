"""``matbench leaderboard --write``: replace README.md, index.html (and screenshot.png) only when matbench's own
marker says it made them. A file without the marker, a symlink or a folder at a target is refused in one line
before anything is written: a user's own README in that folder is never overwritten.

The marker is the line ``MARKER`` near the top of README.md and index.html, and a PNG ``tEXt`` chunk
(``Software``) in the screenshot.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from matbench.errors import ConfigError
from matbench.report.leaderboard import MARKER

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEY = b"Software"
PNG_VALUE = b"matbench leaderboard --write"
HEAD_BYTES = 4096  # the marker sits on the first lines


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        return []
    pos, chunks = len(PNG_SIGNATURE), []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def png_with_marker(data: bytes) -> bytes:
    """``data`` (a PNG) with a ``tEXt`` chunk ``Software: matbench leaderboard --write`` after its header."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33:
        raise ConfigError("the screenshot is not a PNG file")
    body = PNG_KEY + b"\x00" + PNG_VALUE
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end_of_header = len(PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes, crc
    return data[:end_of_header] + chunk + data[end_of_header:]


def made_by_matbench(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES if path.suffix != ".png" else 1 << 16)
    if path.suffix == ".png":
        return (b"tEXt", PNG_KEY + b"\x00" + PNG_VALUE) in _png_chunks(head)
    return MARKER.encode("utf-8") in head


def check_targets(paths: list[Path]) -> None:
    """Refuse (one line, nothing touched) when any target exists and is not a matbench-made regular file."""
    for path in paths:
        if path.is_symlink():
            raise ConfigError(
                f"refusing to write {path}: it is a symbolic link (matbench replaces only its own files)"
            )
        if not path.exists():
            continue
        if not path.is_file():
            raise ConfigError(
                f"refusing to write {path}: it is not a regular file (matbench replaces only its own files)"
            )
        if not made_by_matbench(path):
            raise ConfigError(
                f"refusing to write {path}: it exists and was not made by `matbench leaderboard --write` (no "
                "marker); move it away or choose another --leaderboard-dir"
            )


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_board(root: Path, markdown: str, page: str, *, screenshot: bool) -> list[Path]:
    """Write the files (after checking every target); returns what was written."""
    readme, index, png = root / "README.md", root / "index.html", root / "screenshot.png"
    check_targets([readme, index] + ([png] if screenshot else []))
    write_atomic(readme, markdown.encode("utf-8"))
    write_atomic(index, page.encode("utf-8"))
    written = [readme, index]
    if screenshot:
        from matbench.report.browser import screenshot as take

        tmp = root / f".screenshot.{os.getpid()}.png"
        try:
            take(index, tmp)
            write_atomic(png, png_with_marker(tmp.read_bytes()))
        finally:
            tmp.unlink(missing_ok=True)
        written.append(png)
    return written
