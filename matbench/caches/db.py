"""The SQLite file behind the search and response caches: one connection per file and process, WAL, reads
under a lock, writes queued and committed in batches by a background thread.

Why: a connection per thread and a commit per stored row cost more than the local BM25 search the cache
saved (issue 13 measured the default settings 13 % slower than both caches off). Here a lookup is one
primary-key SELECT on a shared connection; a store is a dict insert and a queue put, so the event loop never
waits on a commit. A stored row is visible to lookups at once (from the pending map) and reaches the file
within ``FLUSH_S`` or at ``close()``/exit. Several processes may share a file (WAL, busy timeout).
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError

logger = logging.getLogger(__name__)

#: how long a stored row may wait before it is committed (with all the rows queued meanwhile)
FLUSH_S = 0.2
#: most rows per transaction
BATCH = 512

_registry: dict[tuple[int, str, bool], CacheDB] = {}
_registry_lock = threading.Lock()


class CacheDB:
    """A shared SQLite cache file. Get one with :meth:`open`; give it back with :meth:`close`."""

    def __init__(self, path: Path, schema: str, *, readonly: bool):
        self.path = path
        self.readonly = readonly
        self._conn_lock = threading.Lock()  # the connection: one statement (or one batch) at a time
        self._lock = threading.Lock()  # the pending rows and the batch: held only for dict/list updates
        self._idle = threading.Condition(self._lock)
        self._pending: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._batch: list[tuple[str, str, str, dict[str, Any]]] = []
        self._in_flight = 0
        self._wake = threading.Event()  # set by the first store of a batch (later stores wake nobody)
        self._urgent = threading.Event()  # flush() or close(): commit now, do not wait for more rows
        self._stop = False
        self._users = 0
        self._writer: threading.Thread | None = None
        try:
            if readonly:
                self._conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0, check_same_thread=False
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(
                    str(path), timeout=30.0, check_same_thread=False, isolation_level=None
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                for stmt in filter(str.strip, schema.split(";")):
                    self._conn.execute(stmt)
            self._conn.execute("PRAGMA busy_timeout=30000")
        except (sqlite3.Error, OSError) as exc:
            from matbench.caches.location import HOW_TO_MOVE

            raise ConfigError(f"cannot use cache {path}: {exc}: {HOW_TO_MOVE}") from None

    @classmethod
    def open(cls, path: str | Path, schema: str, *, readonly: bool = False) -> CacheDB:
        """The process's connection to ``path`` (created on first use), counted until :meth:`close`."""
        path = Path(path).expanduser()
        key = (os.getpid(), str(path.resolve()), readonly)
        with _registry_lock:
            # a reader uses the process's writer connection when there is one: it sees the queued rows
            db = _registry.get((key[0], key[1], False)) if readonly else None
            db = db or _registry.get(key)
            if db is None:
                db = _registry[key] = cls(path, schema, readonly=readonly)
            db._users += 1
            return db

    # ----------------------------------------------------------------------------------------------
    def get(self, table: str, key: str, columns: str) -> tuple | None:
        """``SELECT columns FROM table WHERE key = ?``; a row stored but not yet committed is returned too."""
        with self._lock:
            pending = self._pending.get((table, key))
        if pending is not None:
            row = pending[1]
            return tuple(row[c.strip()] for c in columns.split(","))
        # the writer commits a row before it leaves the pending map, so it is always found in one of them
        with self._conn_lock:
            return self._conn.execute(f"SELECT {columns} FROM {table} WHERE key = ?", (key,)).fetchone()

    def put(self, table: str, key: str, row: dict[str, Any], *, replace: bool = False) -> None:
        """Queue ``row`` (which holds ``key``) for the next batch; never blocks on the file."""
        if self.readonly:
            raise ConfigError(f"cache {self.path} is open read-only")
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock:
            if not replace and (table, key) in self._pending:
                return
            self._pending[(table, key)] = (verb, row)
            self._batch.append((table, key, verb, row))
            self._in_flight += 1
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name=f"cache-writer:{self.path.name}", daemon=True
                )
                self._writer.start()
            first = not self._wake.is_set()
        if first:
            self._wake.set()

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Any other statement (counts, maintenance), after the queued rows are committed."""
        self.flush()
        with self._conn_lock:
            return self._conn.execute(sql, params).fetchall()

    def flush(self) -> None:
        """Wait until every queued row is committed."""
        with self._idle:
            if not self._in_flight:
                return
            self._urgent.set()
            self._wake.set()
            while self._in_flight:
                self._idle.wait(timeout=1.0)

    # ----------------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            self._urgent.wait(FLUSH_S)  # let the rows of the next few moments join this batch
            with self._lock:
                batch, self._batch = self._batch, []
                self._wake.clear()
                self._urgent.clear()
                stop = self._stop
            for start in range(0, len(batch), BATCH):
                self._commit(batch[start : start + BATCH])
            if stop:
                return

    def _commit(self, batch: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        with self._conn_lock:
            try:
                self._conn.execute("BEGIN")
                for table, _key, verb, row in batch:
                    cols = ", ".join(row)
                    marks = ", ".join("?" * len(row))
                    self._conn.execute(f"{verb} INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:  # the work succeeded; a full disk must not fail the run
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                logger.warning("could not store %d cache row(s) in %s: %s", len(batch), self.path, exc)
        with self._lock:
            for table, key, _verb, row in batch:
                if self._pending.get((table, key), (None, None))[1] is row:
                    del self._pending[(table, key)]
            self._in_flight -= len(batch)
            self._idle.notify_all()

    def close(self) -> None:
        """Give back one user's handle: what was stored so far is committed; the last user also stops the
        writer and closes the file."""
        self.flush()
        with _registry_lock:
            self._users -= 1
            if self._users > 0:
                return
            for k, v in list(_registry.items()):
                if v is self:
                    del _registry[k]
        self._shutdown()

    def _shutdown(self) -> None:
        self.flush()
        with self._lock:
            self._stop = True
            writer = self._writer
        if writer is not None:
            self._urgent.set()
            self._wake.set()
            writer.join(timeout=30)
        with self._conn_lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass


@atexit.register
def _flush_all() -> None:
    """Rows stored by a process that exits without closing its caches still reach the file."""
    with _registry_lock:
        dbs = [db for (pid, _, _), db in _registry.items() if pid == os.getpid()]
    for db in dbs:
        try:
            db.flush()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
