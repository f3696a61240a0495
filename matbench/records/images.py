"""A run's images, content-addressed: ``images/<2 hex>/<sha256><suffix>``, one file per distinct content.

Records reference images by these relative paths. The same input image used by many samples, or a code step
that returns its input unchanged, is stored once per run instead of once per sample and turn, and shards of a
run merge by taking the union of their ``images/`` folders.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

IMAGES_DIR = "images"


class ImageStore:
    """Puts files into ``RUN/images/`` under the sha256 of their bytes (atomic: safe from several threads)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(run_dir) / IMAGES_DIR

    def path_for(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def put(self, src: Path) -> Path:
        """The stored copy of ``src`` (written only when no file of the same content is there yet)."""
        data = Path(src).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        dst = self.path_for(digest, Path(src).suffix.lower() or ".png")
        if dst.is_file() and dst.stat().st_size == len(data):
            return dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk must not keep a partial copy
            raise
        return dst
