"""Files named inside a run directory, resolved as if the directory were hostile (it may come from anyone).

A reference is followed only if it is relative, has no ``..``, crosses no symlink and ends at a regular file:
an absolute path, a ``..`` or a link could make a report thumbnail and link a host file, and opening a FIFO or
a device could hang or read forever. Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with
``fstat``, so a swap between the check and the open cannot get around it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
    (stat.S_ISSOCK, "socket"),
)


@dataclass(frozen=True)
class RunFile:
    """A reference from a record: ``path`` when it is safe to open, else ``why`` it is not followed."""

    ref: str
    path: Path | None = None
    why: str | None = None


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def resolve_run_file(run_dir: Path, ref: str) -> RunFile:
    """Resolve ``ref`` (as written in a trajectory) inside ``run_dir`` without following anything unsafe."""
    if not ref or "\x00" in ref:
        return RunFile(ref, why="empty or invalid path")
    posix = ref.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or (len(ref) > 1 and ref[1] == ":"):
        return RunFile(ref, why="absolute path")
    if ".." in parts:
        return RunFile(ref, why="leaves the run directory")
    current = run_dir
    for i, part in enumerate(parts):
        if part in ("", "."):
            continue
        current = current / part
        try:
            st = os.lstat(current)
        except OSError:
            return RunFile(ref, why="missing")
        if stat.S_ISLNK(st.st_mode):
            return RunFile(ref, why="symlink")
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            return RunFile(ref, why="missing")
        if last and not stat.S_ISREG(st.st_mode):
            return RunFile(ref, why=f"not a regular file ({_kind(st.st_mode)})")
    if current == run_dir:
        return RunFile(ref, why="empty or invalid path")
    return RunFile(ref, path=current)


def open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file; raises OSError for links, FIFOs, devices (never blocks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def real_dir(path: Path) -> Path:
    """``path`` as a real directory of its own: a symlink in its place is removed (never followed)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_not_special(path: Path) -> None:
    """A run's own file (config, predictions, summary) may be missing, but never a FIFO, a device (reading one
    would block or never end) or a symbolic link. Raises InputError naming it."""
    from matbench.errors import InputError

    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise InputError("is a symbolic link; refusing to follow it", file=str(path))
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file ({_kind(st.st_mode)}); refusing to read it", file=str(path))


def open_input(path: Path):
    """``path`` opened for reading (binary) only if it is a regular file and not a symbolic link: a FIFO would
    block, a device (``/dev/zero``) never end, a link could read any file of the host. Raises InputError
    naming the file (or FileNotFoundError when it is missing, for callers that allow that)."""
    from matbench.errors import InputError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise InputError("is a symbolic link; refusing to follow it", file=str(path)) from None
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"not a regular file ({_kind(mode)}); refusing to read it", file=str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
