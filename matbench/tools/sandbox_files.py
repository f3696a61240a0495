"""The harness side of a job's files: reading them without following links or blocking, verifying the
output image (a plain file, a real image, at most ``MAX_OUTPUT_PIXELS``), and removing job directories
whatever the code left in them."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from matbench.tools.sandbox_worker import remove_tree

log = logging.getLogger("matbench.tools.sandbox")

OUTPUT_PLACEHOLDER = "path_to_output_image.jpg"
OUTPUT_NAME = "output.jpg"
# The default max_pixels of the Qwen2.5-VL image processor (16384 patches of 28x28): a vision model never
# sees more detail than this, so a larger output only costs decode/encode time and memory downstream.
MAX_OUTPUT_PIXELS = 12845056


def read_capped(dir_fd: int, name: str, limit: int) -> str:
    """Read at most ``limit`` bytes of a job file without following links or blocking on FIFOs."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"[{name} is not a regular file]"
        data = os.read(fd, limit)
        size = info.st_size
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text += f"\n[truncated {size - limit} bytes]"
    return text


def is_plain_file(dir_fd: int, name: str) -> bool:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def same_dir(path: Path, dir_fd: int) -> bool:
    """True if ``path`` is still the directory we created (the job may rename it and plant a link)."""
    try:
        here, there = os.stat(path, follow_symlinks=False), os.fstat(dir_fd)
    except OSError:
        return False
    return stat.S_ISDIR(here.st_mode) and (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def copy_from(dir_fd: int, name: str, dest: Path) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (
        f"the output image is {width}x{height} ({width * height / 1e6:.1f} MP), above the limit of "
        f"{max_pixels} pixels (the vision processor's max_pixels): write a smaller image"
    )


def output_problem(dir_fd: int, max_bytes: int, max_pixels: int) -> str | None:
    """None if the job wrote a plain file that PIL identifies and verifies as an image of at most
    ``max_pixels`` pixels, else why not (the size comes from the header: nothing is decoded)."""
    try:
        fd = os.open(OUTPUT_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return f"no output image written (the code must save it to {OUTPUT_PLACEHOLDER})"
    except OSError as exc:
        return f"output is not a readable image ({exc.strerror})"
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return "output is not a readable image (not a regular file)"
        if info.st_size == 0:
            return "output is not a readable image (empty file)"
        if info.st_size > max_bytes:
            return "output is not a readable image (larger than the file-size limit)"
        from PIL import Image

        try:
            with Image.open(fh) as im:
                width, height = im.size
                if width * height > max_pixels:
                    return _too_many_pixels(width, height, max_pixels)
                im.verify()
        except Image.DecompressionBombError as exc:
            return f"the output image is too large ({exc}); the limit is {max_pixels} pixels"
        except Exception as exc:  # noqa: BLE001 - any decoder complaint means "not a readable image"
            return f"output is not a readable image ({type(exc).__name__})"
    if width <= 0 or height <= 0:
        return "output is not a readable image (empty size)"
    return None


def rmtree(path: Path) -> None:
    """Remove a job directory however the code left it (unwritable, unsearchable, 3,000 levels deep)."""
    if not remove_tree(str(path)):
        log.warning("could not remove %s completely", path)
