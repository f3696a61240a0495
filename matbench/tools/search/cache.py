"""A persistent, replayable search cache (SQLite, WAL) shared by threads and processes.

Why: Google results drift and cost money. A MAT-Search run in ``readwrite`` mode records every answer; a
later ``read`` run replays them offline and bit-identically (a query that is not in the cache is an error,
never a silent live search). Keys are backend name + ``backend.params()`` + k + the exact query, so a
different endpoint, index or k never collides; secrets are never part of ``params()``. Failures are
never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

from matbench.caches.db import CacheDB
from matbench.errors import ConfigError
from matbench.tools.search.base import (
    SearchBackend,
    SearchCacheMiss,
    SearchError,
    SearchHit,
    default_cache_dir,
)

log = logging.getLogger("matbench.search.cache")

CacheMode = Literal["readwrite", "read", "off"]
CACHE_MODES: tuple[str, ...] = ("readwrite", "read", "off")
KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    params TEXT NOT NULL,
    k INTEGER NOT NULL,
    query TEXT NOT NULL,
    hits TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    return default_cache_dir() / "search.sqlite"


def resolve_mode(mode: str, backend: SearchBackend) -> str:
    """``auto`` -> ``off`` for a local deterministic backend (BM25 over a local index answers faster than a
    cache lookup and the same every time), else ``readwrite``; explicit modes are kept."""
    if mode != "auto":
        return mode
    return "off" if getattr(backend, "local_deterministic", False) else "readwrite"


def cache_key(backend: str, params: dict[str, Any], k: int, query: str) -> str:
    ident = {"v": KEY_VERSION, "backend": backend, "params": params, "k": k, "query": query}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class CachedSearch(SearchBackend):
    """Wraps a backend with the cache; same ``search``/``search_batch`` interface, thread-safe."""

    def __init__(self, backend: SearchBackend, path: str | Path | None = None, mode: str = "auto"):
        if mode not in CACHE_MODES and mode != "auto":
            raise ConfigError(f"unknown search cache mode {mode!r}; choose one of {', '.join(CACHE_MODES)}")
        self.backend = backend
        self.name = backend.name
        #: "auto": no cache for a local deterministic backend (the search is cheaper than the lookup),
        #: readwrite for the others
        self.mode: CacheMode = resolve_mode(mode, backend)  # type: ignore[assignment]
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self._params = backend.params()
        self._params_json = json.dumps(self._params, sort_keys=True)
        self._guard = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}
        self._corrupt: set[str] = set()  # keys whose stored row did not read back: the next store replaces it
        self._hits = self._misses = self._errors = 0
        self._db: CacheDB | None = None
        if self.mode == "read" and not self.path.is_file():
            raise ConfigError(
                f"search cache {self.path} does not exist; --search-cache read replays the cache "
                "a previous run wrote (use readwrite to fill it)"
            )
        if self.mode != "off":  # open now: a bad path or a locked/corrupt file fails before the run starts
            self._db = CacheDB.open(self.path, _SCHEMA, readonly=self.mode == "read")
            try:
                self._db.get("searches", "", "hits")
            except sqlite3.Error as exc:
                self._db.close()
                raise ConfigError(f"cannot use search cache {self.path}: {exc}") from None

    # ----------------------------------------------------------------------------------------------
    # sqlite

    def _lookup(self, key: str) -> list[SearchHit] | None:
        assert self._db is not None
        try:
            row = self._db.get("searches", key, "hits")
        except sqlite3.Error as exc:
            raise SearchError(f"search cache {self.path} unreadable: {exc}") from None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
                raise ValueError("not a list of hits")
            return [SearchHit.from_dict(d) for d in data]
        except (ValueError, TypeError) as exc:  # a corrupt row is a miss: searched again, the row replaced
            log.warning("search cache %s: corrupt row dropped (%s); searching again", self.path, exc)
            with self._guard:
                self._corrupt.add(key)
            return None

    def _store(self, key: str, k: int, query: str, hits: list[SearchHit]) -> None:
        assert self._db is not None
        payload = json.dumps([h.to_dict() for h in hits], ensure_ascii=False)
        row = {
            "key": key,
            "backend": self.name,
            "params": self._params_json,
            "k": k,
            "query": query,
            "hits": payload,
            "created_at": time.time(),
        }
        with self._guard:
            replace = key in self._corrupt
            self._corrupt.discard(key)
        self._db.put("searches", key, row, replace=replace)

    # ----------------------------------------------------------------------------------------------
    # counting

    def _count(self, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
        with self._guard:
            self._hits += hits
            self._misses += misses
            self._errors += errors

    def stats(self) -> dict[str, int]:
        with self._guard:
            return {"hits": self._hits, "misses": self._misses, "errors": self._errors}

    # ----------------------------------------------------------------------------------------------
    # the interface

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def describe(self) -> str:
        return f"{self.backend.describe()} [cache {self.mode}: {self.path}]"

    def key(self, query: str, k: int) -> str:
        return cache_key(self.name, self._params, k, query)

    def search(self, query: str, k: int) -> list[SearchHit]:
        return self.search_with_source(query, k)[0]

    def search_with_source(self, query: str, k: int) -> tuple[list[SearchHit], bool]:
        """Like ``search``, plus whether the answer came from the cache (for the episode transcript)."""
        if self.mode == "off":
            return self._fetch(query, k), False
        key = self.key(query, k)
        while True:
            hits = self._lookup(key)
            if hits is not None:
                self._count(hits=1)
                return hits, True
            if self.mode == "read":
                self._count(misses=1)
                raise SearchCacheMiss(
                    f"query not in the search cache {self.path} (replay mode, --search-cache read): "
                    f"{self.name} k={k} query={query!r}"
                )
            # single flight: one thread fetches a given query, the others wait and then read the cache
            with self._guard:
                event = self._inflight.get(key)
                leader = event is None
                if leader:
                    event = self._inflight[key] = threading.Event()
            if not leader:
                event.wait()
                continue  # the leader stored it (hit), or failed (we try ourselves)
            try:
                # A leader that just finished may have stored it between our lookup and taking the lead.
                hits = self._lookup(key)
                if hits is not None:
                    self._count(hits=1)
                    return hits, True
                hits = self._fetch(query, k)
                self._store(key, k, query, hits)
                return hits, False
            finally:
                with self._guard:
                    del self._inflight[key]
                event.set()

    def _fetch(self, query: str, k: int) -> list[SearchHit]:
        self._count(misses=1)
        try:
            return self.backend.search(query, k)
        except SearchError:
            self._count(errors=1)
            raise

    def search_batch(self, queries: list[str], k: int) -> list[list[SearchHit]]:
        if self.mode == "off":
            self._count(misses=len(queries))
            try:
                return self.backend.search_batch(queries, k)
            except SearchError:
                self._count(errors=1)
                raise
        keys = [self.key(q, k) for q in queries]
        found: dict[str, list[SearchHit]] = {}
        missing: dict[str, str] = {}  # key -> query, deduplicated, in first-seen order
        for q, key in zip(queries, keys, strict=True):
            if key in found or key in missing:
                continue
            hits = self._lookup(key)
            if hits is None:
                missing[key] = q
            else:
                found[key] = hits
        # a query repeated within the batch is fetched once: its repeats count as hits, like single flight
        self._count(hits=len(queries) - len(missing), misses=len(missing))
        if missing and self.mode == "read":
            first = next(iter(missing.values()))
            raise SearchCacheMiss(
                f"{len(missing)} of {len(queries)} queries not in the search cache {self.path} "
                f"(replay mode, --search-cache read), e.g. {self.name} k={k} query={first!r}"
            )
        if missing:
            try:
                fetched = self.backend.search_batch(list(missing.values()), k)
            except SearchError:
                self._count(errors=1)
                raise
            for (key, q), hits in zip(missing.items(), fetched, strict=True):
                self._store(key, k, q, hits)
                found[key] = hits
        return [found[key] for key in keys]

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
        self.backend.close()
