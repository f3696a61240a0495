"""What ``matbench cache info|prune`` does: describe the cache files and trim them by age or size.

The caches (``search.sqlite``: search results; ``responses.sqlite``: deterministic model responses) live in
``--cache-dir``, else ``$MATBENCH_CACHE_DIR``, else ``~/.cache/matbench``. Each table has a creation time per
row, so pruning by age is one DELETE; pruning by size keeps the newest rows whose payload fits and then
VACUUMs, so the file really shrinks.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from matbench.display import plural
from matbench.errors import ConfigError


@dataclass(frozen=True)
class CacheKind:
    file: str
    table: str
    created: str
    #: the column that says whose rows these are (search backend, model)
    owner: str
    #: the columns whose length is the row's payload
    payload: tuple[str, ...]


KINDS = (
    CacheKind("search.sqlite", "searches", "created_at", "backend", ("key", "params", "query", "hits")),
    CacheKind("responses.sqlite", "responses", "created", "model", ("key", "output")),
)


@dataclass
class CacheInfo:
    path: Path
    size: int
    rows: int
    oldest: float | None
    newest: float | None
    by_owner: dict[str, int]


def default_dir(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("MATBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "matbench"


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise ConfigError(f"--older-than {text!r}: expected a number and a unit s, m, h, d or w (e.g. 30d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``750MB``, ``1.5GiB``, ``4096`` -> bytes (units are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise ConfigError(f"--max-size {text!r}: expected a size like 500M, 2G or 750MB")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def file_size(path: Path) -> int:
    """The database and its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.is_file())


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open cache {path}: {exc}") from None
    return conn


def info(directory: Path) -> list[CacheInfo]:
    out = []
    for kind in KINDS:
        path = directory / kind.file
        if not path.is_file():
            continue
        conn = _connect(path)
        try:
            rows, oldest, newest = conn.execute(
                f"SELECT count(*), min({kind.created}), max({kind.created}) FROM {kind.table}"
            ).fetchone()
            owners = dict(
                conn.execute(
                    f"SELECT {kind.owner}, count(*) FROM {kind.table} GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot read cache {path}: {exc}") from None
        finally:
            conn.close()
        out.append(CacheInfo(path, file_size(path), rows, oldest, newest, owners))
    return out


def prune(directory: Path, *, older_than: float | None = None, max_size: int | None = None) -> list[str]:
    """Delete rows older than ``older_than`` seconds, then the oldest rows until each file is at most
    ``max_size`` bytes. Returns one line per file."""
    lines = []
    for kind in KINDS:
        path = directory / kind.file
        if not path.is_file():
            continue
        before = file_size(path)
        conn = _connect(path)
        try:
            n_before = conn.execute(f"SELECT count(*) FROM {kind.table}").fetchone()[0]
            if older_than is not None:
                conn.execute(
                    f"DELETE FROM {kind.table} WHERE {kind.created} < ?", (time.time() - older_than,)
                )
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            if max_size is not None:
                for _ in range(4):  # the payload-to-file ratio is an estimate: a few rounds at most
                    size = file_size(path)
                    if size <= max_size:
                        break
                    _drop_oldest_to_fit(conn, kind, max_size / size)
                    conn.execute("VACUUM")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            n_after = conn.execute(f"SELECT count(*) FROM {kind.table}").fetchone()[0]
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot prune cache {path}: {exc}") from None
        finally:
            conn.close()
        lines.append(
            f"{path}: {n_before - n_after:,} of {plural(n_before, 'row')} removed, "
            f"{human_size(before)} -> {human_size(file_size(path))}"
        )
    return lines


def _drop_oldest_to_fit(conn: sqlite3.Connection, kind: CacheKind, fraction: float) -> None:
    """Keep the newest rows holding ``fraction`` of the payload (a little less, for the file's overhead)."""
    length = " + ".join(f"length({c})" for c in kind.payload)
    total = conn.execute(f"SELECT coalesce(sum({length}), 0) FROM {kind.table}").fetchone()[0]
    budget = total * fraction * 0.95
    kept = 0
    cutoff = None
    for created, size in conn.execute(f"SELECT {kind.created}, {length} FROM {kind.table} ORDER BY 1 DESC"):
        if kept + size > budget:
            cutoff = created
            break
        kept += size
    if cutoff is not None:
        conn.execute(f"DELETE FROM {kind.table} WHERE {kind.created} <= ?", (cutoff,))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.1f} {unit}"
    return f"{seconds:.0f} s"
