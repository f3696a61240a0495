"""Downscaled JPEG thumbnails for a run's images, made once into ``RUN/thumbs/`` so that a report of 200
samples opens instantly (the report links the full-size files by relative path; nothing is inlined)."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

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

    def source(self, ref: str) -> Path:
        p = Path(ref)
        return p if p.is_absolute() else self.run_dir / p

    def thumb(self, ref: str) -> str | None:
        """The thumbnail's path relative to the run directory, or None if the image is missing/unreadable."""
        src = self.source(ref)
        try:
            st = src.stat()
        except OSError:
            return None
        dest = self.out_dir / thumb_name(ref)
        rel = f"{THUMB_DIR}/{dest.name}"
        if dest.is_file() and dest.stat().st_mtime_ns >= st.st_mtime_ns:
            return rel
        self.out_dir.mkdir(exist_ok=True)
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        done = self._by_inode.get(ident)
        if done is not None and done.is_file():
            shutil.copyfile(done, dest)
            return rel
        if not self._make(src, dest):
            return None
        self._by_inode[ident] = dest
        return rel

    def _make(self, src: Path, dest: Path) -> bool:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(src) as img:
                img.draft("RGB", (self.max_side, self.max_side))  # JPEG sources decode at reduced size
                img.thumbnail((self.max_side, self.max_side))
                if img.mode in ("RGBA", "LA", "P"):
                    rgba = img.convert("RGBA")
                    flat = Image.new("RGB", rgba.size, "white")
                    flat.paste(rgba, mask=rgba.getchannel("A"))
                    img = flat
                else:
                    img = img.convert("RGB")
                tmp = dest.with_name(dest.name + ".tmp")
                img.save(tmp, "JPEG", quality=80)
                tmp.replace(dest)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            log.warning("cannot thumbnail %s: %s", src, exc)
            return False
        return True
