"""Where the authors' evaluation scripts come from: a local copy, matbench's cache, or one download.

matbench ships none of the authors' sentences. It reads them from the authors' own scripts (Liuziyu77/Visual-RFT
at a pinned commit): ``--authors-repo DIR`` / ``$MATBENCH_AUTHORS_REPO`` (the folder holding ``Visual-ARFT/``),
else ``<cache>/authors/<commit>/<path>``, else the raw-file host once (then the cache, offline). A file is
stored in the cache only after its strings passed their checks (``authors_strings.py``).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matbench.errors import ConfigError

AUTHORS_REPO = "Liuziyu77/Visual-RFT"
AUTHORS_COMMIT = "94866331ff38c516581697882a00f947c8bfda8a"
REPO_ENV = "MATBENCH_AUTHORS_REPO"
# Tests point this at a 127.0.0.1 server that serves files in the raw host's layout.
BASE_URL_ENV = "MATBENCH_AUTHORS_BASE_URL"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
TOP = "Visual-ARFT"


@dataclass(frozen=True)
class ScriptFile:
    """One of the authors' scripts: its path in their repository, its bytes, and how matbench got it."""

    relpath: str
    data: bytes
    via: str  # "authors-repo" | "cache" | "download"
    local: Path | None  # where it was read from (None: not stored yet, just downloaded)


def _ways_out(relpath: str, why: str) -> ConfigError:
    return ConfigError(
        f"cannot read the authors' protocol strings ({relpath} of {AUTHORS_REPO} at {AUTHORS_COMMIT[:12]}): "
        f"{why}; pass --authors-repo DIR (a copy of that repository, the folder holding {TOP}/, "
        f"or set {REPO_ENV}), or use --protocol matbench-wording for matbench's own wording"
    )


def _in_repo(root: Path, relpath: str) -> Path | None:
    for cand in (root / relpath, root.parent / relpath if root.name == TOP else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def cache_path(cache_dir: Path, relpath: str) -> Path:
    owner, name = AUTHORS_REPO.split("/")
    return cache_dir / "authors" / f"{owner}+{name}" / AUTHORS_COMMIT / relpath


def raw_url(relpath: str) -> str:
    base = (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/{AUTHORS_REPO}/{AUTHORS_COMMIT}/{urllib.parse.quote(relpath)}"


def _download(relpath: str, timeout: float) -> bytes:
    """One GET through the shared transport: ``timeout`` bounds the whole download (a host that trickles
    cannot hold the run), no retry, at most 16 MiB."""
    from matbench.net.retry import RetryPolicy
    from matbench.net.service import GaveUp, JsonService

    url = raw_url(relpath)
    service = JsonService(
        url, what="download", timeout=timeout, retry=RetryPolicy(max_attempts=1), max_body=16 << 20
    )
    try:
        return service.fetch("GET").body
    except GaveUp as exc:
        if exc.status is not None and exc.status >= 400:
            raise _ways_out(relpath, f"no local copy, and {url} answered HTTP {exc.status}") from None
        raise _ways_out(relpath, f"no local copy, and {url} is unreachable ({exc.last.error})") from None
    finally:
        service.close()


def fetch_script(
    relpath: str,
    *,
    authors_repo: str | Path | None,
    cache_dir: Path,
    check: Callable[[ScriptFile], object],
    timeout: float = 30.0,
) -> tuple[ScriptFile, object]:
    """The script ``relpath`` and ``check(script)``'s result; a download is cached only once it checks out."""
    repo = authors_repo if authors_repo is not None else os.environ.get(REPO_ENV) or None
    if repo is not None:
        root = Path(repo).expanduser()
        found = _in_repo(root, relpath)
        if found is None:
            raise ConfigError(
                f"--authors-repo {root}: no {relpath} in it (give the folder that holds {TOP}/, "
                f"a copy of {AUTHORS_REPO} at {AUTHORS_COMMIT[:12]})"
            )
        script = ScriptFile(relpath, found.read_bytes(), "authors-repo", found.resolve())
        return script, check(script)
    cached = cache_path(cache_dir, relpath)
    if cached.is_file():
        script = ScriptFile(relpath, cached.read_bytes(), "cache", cached)
        return script, check(script)
    script = ScriptFile(relpath, _download(relpath, timeout), "download", None)
    result = check(script)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + f".{os.getpid()}.part")
    tmp.write_bytes(script.data)
    os.replace(tmp, cached)
    return ScriptFile(relpath, script.data, "download", cached), result
