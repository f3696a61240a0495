"""Read back what `matbench view` wrote: the compact index inside the page and the per-sample detail chunks
beside it (``<report>_data/c*.js``), so the tests can check every field the browser would render."""

from __future__ import annotations

import json
import re
from pathlib import Path

_INDEX = re.compile(r'<script type="application/json" id="mb-index">(.*?)</script>', re.S)
_CHUNK = re.compile(r"^MB\.chunk\((\d+),(.*)\);\s*$", re.S)


def read_index(page: Path) -> dict:
    m = _INDEX.search(page.read_text(encoding="utf-8"))
    assert m, f"no index in {page}"
    return json.loads(m.group(1))


def read_details(page: Path) -> dict[str, dict]:
    """Every sample's detail record, by id, from the chunk scripts the page loads on demand."""
    index = read_index(page)
    out: dict[str, dict] = {}
    for path in sorted((page.parent / index["data_dir"]).glob("c*.js")):
        m = _CHUNK.match(path.read_text(encoding="utf-8"))
        assert m, f"malformed chunk {path}"
        for rec in json.loads(m.group(2)):
            out[rec["id"]] = rec
    return out
