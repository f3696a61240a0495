"""Downscaled JPEG thumbnails for a run's images, made once into ``RUN/thumbs/`` so that a report opens
instantly (the report links the full-size files by relative path; nothing is inlined).

Sources come only from :func:`matbench.records.files.resolve_run_file` and are opened without following
links; thumbnails are written through a temporary file and renamed, so a planted symlink in ``thumbs/`` is
replaced, never written through."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from matbench.records.files import open_regular, real_dir

log = logging.getLogger(__name__)

THUMB_DIR = "thumbs"
MAX_SIDE = 256


def thumb_name(rel: str) -> str:
    stem = Path(rel).with_suffix("").as_posix().replace("/", "__").replace("..", "_")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in stem)[-80:]
    return f"{safe}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}.jpg"


class Thumbnailer:
    """Make (or reuse) thumbnails; identical files (hard links, same inode) are decoded only once."""

    def __init__(self, run_dir: Path, max_side: int = MAX_SIDE):
        self.run_dir = run_dir
        self.out_dir = run_dir / THUMB_DIR
        self.max_side = max_side
        self._by_inode: dict[tuple[int, int, int, int], Path] = {}
        self._dir_ready = False

    def thumb(self, src: Path, ref: str) -> str | None:
        """The thumbnail of ``src`` (a path already resolved safely inside the run) relative to the run
        directory, or None if the image is unreadable."""
        try:
            fd = open_regular(src)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            dest = self.out_dir / thumb_name(ref)
            rel = f"{THUMB_DIR}/{dest.name}"
            try:
                dst = os.lstat(dest)
                if stat.S_ISREG(dst.st_mode) and dst.st_mtime_ns >= st.st_mtime_ns:
                    return rel
            except OSError:
                pass
            if not self._dir_ready:
                real_dir(self.out_dir)
                self._dir_ready = True
            ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            done = self._by_inode.get(ident)
            if done is not None:
                self._write(dest, done.read_bytes())
                return rel
            if not self._make(fh, src, dest):
                return None
        self._by_inode[ident] = dest
        return rel

    @staticmethod
    def _write(dest: Path, data: bytes) -> None:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        with _create(tmp) as out:
            out.write(data)
        os.replace(tmp, dest)

    def _make(self, fh, src: Path, dest: Path) -> bool:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(fh) as img:
                img.draft("RGB", (self.max_side, self.max_side))  # JPEG sources decode at reduced size
                img.thumbnail((self.max_side, self.max_side))
                if img.mode in ("RGBA", "LA", "P"):
                    rgba = img.convert("RGBA")
                    flat = Image.new("RGB", rgba.size, "white")
                    flat.paste(rgba, mask=rgba.getchannel("A"))
                    img = flat
                else:
                    img = img.convert("RGB")
                tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
                with _create(tmp) as out:
                    img.save(out, "JPEG", quality=80)
                os.replace(tmp, dest)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            log.warning("cannot thumbnail %s: %s", src, exc)
            return False
        return True


def _create(path: Path):
    """A new file opened for writing; whatever was at ``path`` (a planted link included) is removed first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")
