"""Where matbench's caches live (``--cache-dir``, else ``$MATBENCH_CACHE_DIR``, else ``~/.cache/matbench``), and
one clear line when that place cannot be used: a read-only home, a cache dir that is a file, no home at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matbench.errors import ConfigError

ENV = "MATBENCH_CACHE_DIR"
HOW_TO_MOVE = f"set {ENV}=DIR (or pass --cache-dir DIR) to keep the cache somewhere writable"


def default_cache_dir() -> Path:
    """``$MATBENCH_CACHE_DIR`` or ``~/.cache/matbench`` (not created here)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    try:
        return Path.home() / ".cache" / "matbench"
    except RuntimeError as exc:  # no $HOME and no passwd entry
        raise ConfigError(f"no home directory for the cache ({exc}): {HOW_TO_MOVE}") from None


def cache_problem(path: Path, exc: OSError | Exception) -> ConfigError:
    """The one line for a cache at ``path`` that cannot be written."""
    why = getattr(exc, "strerror", None) or str(exc)
    return ConfigError(f"cache directory {path} is not writable ({why}): {HOW_TO_MOVE}")


def usable_cache_dir(path: str | Path | None = None) -> Path:
    """``path`` (default: :func:`default_cache_dir`), created if need be and checked writable."""
    where = Path(path).expanduser() if path else default_cache_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise cache_problem(where, exc) from None
    return where
