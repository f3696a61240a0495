"""Outputs matbench may replace: a folder or a file at a user-given path (``index build --out``, ``view
--out`` and its data folder, ``merge --out``, ``leaderboard --write``) is replaced only when matbench's own
marker says matbench made it for the same purpose; anything else there is refused in one line, untouched.

A folder's marker is the file ``.matbench-output`` inside it (``{"made_by": "matbench", "kind": KIND}``);
a file's marker is the line :func:`file_marker` returns, which the writer puts in the file's first 4 KiB
(an HTML or Markdown comment). A symbolic link at the path is never followed and never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from matbench.errors import ConfigError

MARKER_NAME = ".matbench-output"
MADE_BY = "matbench"
FILE_MARK_BYTES = 4096


def file_marker(kind: str) -> str:
    """The text a file made by matbench for ``kind`` carries in its first 4 KiB."""
    return f"matbench-output: {kind}"


def mark_dir(path: str | Path, kind: str) -> None:
    """Say in ``path`` that matbench made it for ``kind`` (call on the fresh folder, before installing it)."""
    (Path(path) / MARKER_NAME).write_text(json.dumps({"made_by": MADE_BY, "kind": kind}) + "\n", "utf-8")


def _dir_marked(path: Path, kind: str) -> bool:
    try:
        fd = os.open(path / MARKER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        data = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    finally:
        os.close(fd)
    return isinstance(data, dict) and data.get("made_by") == MADE_BY and data.get("kind") == kind


def _file_marked(path: Path, kind: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, FILE_MARK_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    return file_marker(kind).encode() in head


def _refuse(path: Path, what: str, option: str) -> ConfigError:
    return ConfigError(
        f"{path}: {what}, not one matbench made; it was left untouched "
        f"(remove it yourself or choose another {option})"
    )


def _existing(path: Path, option: str) -> os.stat_result | None:
    """What is at ``path`` (never followed: a symbolic link is refused), or None when nothing is."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot inspect it ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise _refuse(path, "a symbolic link", option)
    return info


def check_dir(path: str | Path, kind: str, option: str = "--out") -> bool:
    """Raise unless ``path`` is absent, an empty folder or a folder matbench made for ``kind``.

    Returns whether something is there to replace."""
    path = Path(path)
    info = _existing(path, option)
    if info is None:
        return False
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "an existing file", option)
    if _dir_marked(path, kind):
        return True
    try:
        empty = not any(os.scandir(path))
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    if empty:
        return True
    raise _refuse(path, "a folder with files in it", option)


def check_file(path: str | Path, kind: str, option: str = "--out") -> bool:
    """Raise unless ``path`` is absent or a plain file matbench made for ``kind``; returns whether it exists."""
    path = Path(path)
    info = _existing(path, option)
    if info is None:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "not a plain file", option)
    if not _file_marked(path, kind):
        raise _refuse(path, "an existing file", option)
    return True


def new_dir_beside(target: str | Path) -> Path:
    """A fresh private folder next to ``target`` (same file system), to be filled and then installed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)
    return tmp


def install_dir(tmp: str | Path, target: str | Path, kind: str, option: str = "--out") -> None:
    """Mark ``tmp`` and move it to ``target``, replacing only what :func:`check_dir` allows (checked again
    now, just before the swap); ``tmp`` is removed if that is refused."""
    tmp, target = Path(tmp), Path(target)
    try:
        mark_dir(tmp, kind)
        there = check_dir(target, kind, option)
        if not there:
            try:
                os.rename(tmp, target)
                return
            except OSError:  # someone made it meanwhile: check what it is
                there = check_dir(target, kind, option)
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
        os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_file(target: str | Path, data: str | bytes, kind: str, option: str = "--out") -> None:
    """Write ``data`` (which must carry :func:`file_marker`) to ``target`` through a renamed temporary file,
    replacing only what :func:`check_file` allows."""
    target = Path(target)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if file_marker(kind).encode() not in raw[:FILE_MARK_BYTES]:
        raise AssertionError(f"a {kind} file must carry its marker in its first {FILE_MARK_BYTES} bytes")
    check_file(target, kind, option)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, 0o644)
        check_file(target, kind, option)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
