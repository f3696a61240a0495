"""``keyword:FILE``: passages of a JSON Lines file ranked by how many query words they contain."""

import json
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError
from matbench.tools.search.base import SearchBackend, SearchHit, check_k


class KeywordSearch(SearchBackend):
    name = "keyword"
    local_deterministic = True  # same answers every time: the search cache leaves it alone

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"--search keyword:FILE needs a JSON Lines file of passages, not {path!r}")
        lines = self.path.read_text(encoding="utf-8").splitlines()
        self.passages = [json.loads(line) for line in lines if line.strip()]

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "KeywordSearch":
        return cls(arg or "")  # the generic options (timeout, cache_dir...) mean nothing to a file

    def params(self) -> dict[str, Any]:
        return {"file": self.path.name, "passages": len(self.passages)}

    def search(self, query: str, k: int) -> list[SearchHit]:
        words = set(query.lower().split())
        ranked = sorted(self.passages, key=lambda p: -len(words & set(p["text"].lower().split())))
        return [SearchHit(p["title"], f"keyword://{p['title']}", p["text"]) for p in ranked[: check_k(k)]]
