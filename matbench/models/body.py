"""Request bodies as JSON bytes, with each image's data URL serialised once, not once per call.

A coding episode resends the same ~1.3 MB data URL on every turn; serialising the whole body with ``json.dumps``
cost ~20 ms of the event loop's time per call. Here the URL's JSON text is made once per image (cached beside
the data URL itself) and spliced into the small rest of the body, which is all that is serialised per call.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from matbench.models.images import _LRU

# URLs shorter than this are serialised in place (splicing would cost more than it saves).
SPLICE_MIN = 4096
_NONCE = secrets.token_hex(8)
_MARK_PREFIX = f"\x00matbench-image:{_NONCE}:"
# The JSON form of a mark: json.dumps escapes the NUL characters, so model text can never contain it.
_MARK_JSON = re.compile(r'"\\u0000matbench-image:' + _NONCE + r':(\d+)\\u0000"')
_fragments = _LRU(max_entries=256, max_bytes=512 * 1024 * 1024)


def _fragment(url: str) -> bytes:
    cached = _fragments.get(url)  # type: ignore[arg-type]  # a str key: its hash is cached on the string
    if cached is None:
        cached = json.dumps(url, ensure_ascii=False).encode("utf-8")
        _fragments.put(url, cached)  # type: ignore[arg-type]
    return cached  # type: ignore[return-value]


def _image_slots(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(holder, key) of every long image URL in the body: Chat's ``messages[].content[].image_url.url`` and
    the Responses API's ``input[].content[].image_url`` (an ``input_image`` part holds the URL string)."""
    slots = []
    for message in [*(body.get("messages") or []), *(body.get("input") or [])]:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            image = part.get("image_url") if isinstance(part, dict) else None
            holder, key = (image, "url") if isinstance(image, dict) else (part, "image_url")
            url = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(url, str) and len(url) >= SPLICE_MIN:
                slots.append((holder, key))
    return slots


def encode_json_body(body: dict[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON, the same bytes ``json.dumps`` gives, images spliced from the cache."""
    slots = _image_slots(body)
    urls = [holder[key] for holder, key in slots]
    try:
        for i, (holder, key) in enumerate(slots):
            holder[key] = f"{_MARK_PREFIX}{i}\x00"
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    finally:
        for (holder, key), url in zip(slots, urls, strict=True):
            holder[key] = url
    if not slots:
        return text.encode("utf-8")
    out: list[bytes] = []
    pos = 0
    for m in _MARK_JSON.finditer(text):
        out.append(text[pos : m.start()].encode("utf-8"))
        out.append(_fragment(urls[int(m.group(1))]))
        pos = m.end()
    out.append(text[pos:].encode("utf-8"))
    return b"".join(out)


def body_cache_stats() -> dict[str, int]:
    return {"hits": _fragments.hits, "misses": _fragments.misses, "entries": len(_fragments._data)}


def clear_body_cache() -> None:
    _fragments.clear()
