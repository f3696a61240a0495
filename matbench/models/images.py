"""Image files -> base64 data URLs and content digests, cached because every turn resends the same image.

The cache key is (resolved path, mtime_ns, size): a tool that rewrites a file in place gets a fresh
encoding, an unchanged file costs one ``stat``. The MIME type is sniffed from the bytes, not the
suffix (fixture ``.jpg`` files are really PNGs and some servers reject a mismatched type).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

# Formats every OpenAI-compatible vision endpoint accepts as-is; anything else is re-encoded to PNG.
_ACCEPTED = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type from magic bytes, or None when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM"):
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def _to_png(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        out = io.BytesIO()
        im.save(out, format="PNG")
        return out.getvalue()


class _LRU:
    """A small thread-safe LRU bounded by entry count and total size."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple, str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple, value: str) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._data[key] = value
            self._bytes += len(value)
            while self._data and (len(self._data) > self.max_entries or self._bytes > self.max_bytes):
                _, evicted = self._data.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0


_data_urls = _LRU(max_entries=256, max_bytes=512 * 1024 * 1024)
_digests = _LRU(max_entries=4096, max_bytes=4096 * 64)


def _file_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    resolved = os.path.realpath(path)
    st = os.stat(resolved)  # FileNotFoundError names the path
    return (resolved, st.st_mtime_ns, st.st_size)


def image_data_url(path: str | os.PathLike[str]) -> str:
    """``data:<mime>;base64,...`` for an image file; formats outside png/jpeg/webp/gif become PNG."""
    key = _file_key(path)
    cached = _data_urls.get(key)
    if cached is not None:
        return cached
    data = Path(key[0]).read_bytes()
    mime = sniff_mime(data)
    if mime not in _ACCEPTED:
        data = _to_png(data)  # PIL raises a clear error when the file is not an image at all
        mime = "image/png"
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    _data_urls.put(key, url)
    return url


def image_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of the file's bytes: the response cache keys on content, not on the (temporary) path."""
    key = _file_key(path)
    cached = _digests.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with open(key[0], "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _digests.put(key, digest)
    return digest


def clear_image_caches() -> None:
    _data_urls.clear()
    _digests.clear()


def image_cache_stats() -> dict[str, int]:
    return {"hits": _data_urls.hits, "misses": _data_urls.misses, "entries": len(_data_urls._data)}
