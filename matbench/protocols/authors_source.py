"""Where other authors' scripts come from: a local copy, matbench's cache, or one download.

matbench ships none of the authors' sentences. It reads them from the authors' own scripts at a pinned commit
(an :class:`Upstream`: Liuziyu77/Visual-RFT for the agent protocol, OpenSenseNova/SenseNova-MARS for their
LLM judge): a local copy (``--authors-repo DIR`` / ``$MATBENCH_AUTHORS_REPO`` for Visual-ARFT, the folder
holding ``Visual-ARFT/``), else ``<cache>/authors/<owner>+<name>/<commit>/<path>``, else the raw-file host once
(then the cache, offline). A file is stored in the cache only after its strings passed their checks
(``authors_strings.py``, ``judge/sensenova.py``).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
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
class Upstream:
    """One pinned repository matbench reads strings from, and what to tell a user who has no copy of it."""

    repo: str
    commit: str
    top: str  # the folder a local copy holds (the copy may also be given as that folder itself)
    env: str  # the variable naming a local copy
    flag: str  # the option naming a local copy
    instead: str  # the way out that needs no copy at all


VISUAL_ARFT = Upstream(
    AUTHORS_REPO,
    AUTHORS_COMMIT,
    TOP,
    REPO_ENV,
    "--authors-repo",
    "use --protocol matbench-wording for matbench's own wording",
)


@dataclass(frozen=True)
class ScriptFile:
    """One of the authors' scripts: its path in their repository, its bytes, and how matbench got it."""

    relpath: str
    data: bytes
    via: str  # "authors-repo" | "cache" | "download"
    local: Path | None  # where it was read from (None: not stored yet, just downloaded)


def _ways_out(relpath: str, why: str, up: Upstream = VISUAL_ARFT) -> ConfigError:
    return ConfigError(
        f"cannot read the authors' strings ({relpath} of {up.repo} at {up.commit[:12]}): "
        f"{why}; pass {up.flag} DIR (a copy of that repository, the folder holding {up.top}/, "
        f"or set {up.env}), or {up.instead}"
    )


def _in_repo(root: Path, relpath: str, top: str = TOP) -> Path | None:
    for cand in (root / relpath, root.parent / relpath if root.name == top else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def cache_path(cache_dir: Path, relpath: str, up: Upstream = VISUAL_ARFT) -> Path:
    owner, name = up.repo.split("/")
    return cache_dir / "authors" / f"{owner}+{name}" / up.commit / relpath


def raw_url(relpath: str, up: Upstream = VISUAL_ARFT) -> str:
    base = (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/{up.repo}/{up.commit}/{urllib.parse.quote(relpath)}"


def _download(relpath: str, timeout: float, up: Upstream = VISUAL_ARFT) -> bytes:
    url = raw_url(relpath, up)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a fixed https/http URL
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise _ways_out(relpath, f"no local copy, and {url} answered HTTP {exc.code}", up) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _ways_out(relpath, f"no local copy, and {url} is unreachable ({reason})", up) from None


def fetch_script(
    relpath: str,
    *,
    authors_repo: str | Path | None,
    cache_dir: Path,
    check: Callable[[ScriptFile], object],
    timeout: float = 30.0,
    upstream: Upstream = VISUAL_ARFT,
) -> tuple[ScriptFile, object]:
    """The script ``relpath`` and ``check(script)``'s result; a download is cached only once it checks out."""
    up = upstream
    repo = authors_repo if authors_repo is not None else os.environ.get(up.env) or None
    if repo is not None:
        root = Path(repo).expanduser()
        found = _in_repo(root, relpath, up.top)
        if found is None:
            raise ConfigError(
                f"{up.flag} {root}: no {relpath} in it (give the folder that holds {up.top}/, "
                f"a copy of {up.repo} at {up.commit[:12]})"
            )
        script = ScriptFile(relpath, found.read_bytes(), "authors-repo", found.resolve())
        return script, check(script)
    cached = cache_path(cache_dir, relpath, up)
    if cached.is_file():
        script = ScriptFile(relpath, cached.read_bytes(), "cache", cached)
        return script, check(script)
    script = ScriptFile(relpath, _download(relpath, timeout, up), "download", None)
    result = check(script)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + f".{os.getpid()}.part")
    tmp.write_bytes(script.data)
    os.replace(tmp, cached)
    return ScriptFile(relpath, script.data, "download", cached), result
