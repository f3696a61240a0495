"""Where other authors' scripts come from: a local copy, matbench's cache, or one download.

matbench ships none of the authors' sentences. It reads them from the authors' own scripts at a pinned commit
(an :class:`Upstream`: Liuziyu77/Visual-RFT for the agent protocol, OpenSenseNova/SenseNova-MARS for their
LLM judge): a local copy (``--authors-repo DIR`` / ``$MATBENCH_AUTHORS_REPO`` for Visual-ARFT, the folder
holding ``Visual-ARFT/``), else ``<cache>/authors/<owner>+<name>/<commit>/<path>``, else the raw-file host once
(then the cache, offline).

A downloaded file is the pinned file: its whole sha256 (``Upstream.pinned``) is checked before anything reads
it and before it is cached, and again each time it is read from the cache; a file with no pinned hash is
never downloaded. A local copy is checked string by string (``authors_strings.py``, ``judge/sensenova.py``)
and its file hash is recorded, so that ``submit`` can tell a run made from the pinned file.
"""

from __future__ import annotations

import hashlib
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
class Upstream:
    """One pinned repository matbench reads strings from, and what to tell a user who has no copy of it."""

    repo: str
    commit: str
    top: str  # the folder a local copy holds (the copy may also be given as that folder itself)
    env: str  # the variable naming a local copy
    flag: str  # the option naming a local copy
    instead: str  # the way out that needs no copy at all
    pinned: tuple[tuple[str, str], ...] = ()  # (path, sha256 of the whole file at ``commit``)

    def pinned_sha256(self, relpath: str) -> str | None:
        return dict(self.pinned).get(relpath)


# sha256 of each script matbench reads, whole, at AUTHORS_COMMIT
_ARFT_FILES = {
    "evaluation_coding/evaluation_mat_coding_ngpu_7b_df.py":
        "252a2cc492092b78297764be3e31d15b49fdf5b23f5e59a4cf27fc508c088f0b",
    "evaluation_coding/evaluation_mat_coding_visual_arft.py":
        "8f5a754d8dee6f7df760ab2cb218d8793aa0a281ed0706914c1235793109b588",
    "evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_df.py":
        "5d18968e2dcbe2026096fbe0ae000128c7688ae24522b22c607403ccf0c5a4fc",
    "evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_visual_arft.py":
        "e20aa13efb3450aa13c6cb343474f57722e360ab91f4ad3d6e17977c78e44c49",
    "evaluation_search/traditional_benchmark/evaluation_bamboogle_ngpu_7b_df.py":
        "2887ac66fd456e0888e6169731168821940c97fe9f5330357913b52b9bcb611e",
    "evaluation_search/traditional_benchmark/evaluation_bamboogle_ngpu_7b_visual_arft.py":
        "f623f544d6d4657ecf9a95459010128ff5616dfae4cdc173f4b9b046896441cc",
    "evaluation_search/traditional_benchmark/evaluation_2wikimultihopqa_ngpu_7b_df.py":
        "bbe54615d8ede90a8dcf7426308b3cc8d0ac44a809e9ca91bd0823dc2d91cba1",
    "evaluation_search/traditional_benchmark/evaluation_2wikimultihopqa_ngpu_7b_visual_arft.py":
        "3ac849185d166727e98f320a673caf2167ca2c3426b224d15cb0250e1c93391d",
    "evaluation_search/traditional_benchmark/evaluation_hotpotqa_ngpu_7b_df.py":
        "f9bb4106a04b7d5c53e1c25e4c68a026c2bda689a812faac338e07a88d446fbb",
    "evaluation_search/traditional_benchmark/evaluation_hotpotqa_ngpu_7b_visual_arft.py":
        "e1a260e0b6f3d11b4e4e2c2f124401aa29e447053486847dd5946e80f404ee0d",
    "evaluation_search/traditional_benchmark/evaluation_musique_ngpu_7b_df.py":
        "9f8ae179e025dde99f51440fc28a4eab1fe56dcc63a4cbacbabe7a182ea37d78",
    "evaluation_search/traditional_benchmark/evaluation_musique_ngpu_7b_visual_arft.py":
        "17baa99ec8b03461602596087c6541ddc61191d422e950e438959fff1da7ad7e",
}

VISUAL_ARFT = Upstream(
    AUTHORS_REPO,
    AUTHORS_COMMIT,
    TOP,
    REPO_ENV,
    "--authors-repo",
    "use --protocol matbench-wording for matbench's own wording",
    tuple((f"{TOP}/{path}", digest) for path, digest in _ARFT_FILES.items()),
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
    """One GET through the shared transport: ``timeout`` bounds the whole download (a host that trickles
    cannot hold the run), no retry, at most 16 MiB."""
    from matbench.net.retry import RetryPolicy
    from matbench.net.service import GaveUp, JsonService

    url = raw_url(relpath, up)
    service = JsonService(
        url, what="download", timeout=timeout, retry=RetryPolicy(max_attempts=1), max_body=16 << 20
    )
    try:
        return service.fetch("GET").body
    except GaveUp as exc:
        if exc.status is not None and exc.status >= 400:
            raise _ways_out(relpath, f"no local copy, and {url} answered HTTP {exc.status}", up) from None
        raise _ways_out(relpath, f"no local copy, and {url} is unreachable ({exc.last.error})", up) from None
    finally:
        service.close()


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
    pinned = up.pinned_sha256(relpath)
    if pinned is None:  # a bug of matbench's: every file it may download has its hash recorded
        raise AssertionError(f"no pinned sha256 for {relpath} of {up.repo}")
    if cached.is_file():
        data = cached.read_bytes()
        if _sha256(data) != pinned:
            raise ConfigError(
                f"{cached}: the cached copy of {relpath} is not the file pinned at {up.repo}@{up.commit[:12]} "
                f"(sha256 {_sha256(data)[:16]}..., expected {pinned[:16]}...): it was altered; remove it "
                f"(matbench downloads it again) or pass {up.flag} DIR"
            )
        script = ScriptFile(relpath, data, "cache", cached)
        return script, check(script)
    data = _download(relpath, timeout, up)
    if _sha256(data) != pinned:  # before anything reads it, and never cached
        raise _ways_out(
            relpath,
            f"the downloaded file is not the one pinned at {up.commit[:12]} (sha256 {_sha256(data)[:16]}..., "
            f"expected {pinned[:16]}...); nothing was cached",
            up,
        )
    script = ScriptFile(relpath, data, "download", None)
    result = check(script)
    tmp = cached.with_name(cached.name + f".{os.getpid()}.part")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(script.data)
        os.replace(tmp, cached)
    except OSError as exc:
        from matbench.caches.location import cache_problem

        raise cache_problem(cache_dir, exc) from None
    return ScriptFile(relpath, script.data, "download", cached), result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned_file_problem(source: dict, up: Upstream = VISUAL_ARFT) -> str | None:
    """Why a run's recorded ``protocol.source`` (or judge source) was not read from the pinned file, or None:
    the repository, the commit and the whole file's sha256 must be the pinned ones."""
    relpath = str(source.get("file"))
    pinned = up.pinned_sha256(relpath)
    if source.get("repo") != up.repo or source.get("commit") != up.commit:
        return f"its source is {source.get('repo')}@{str(source.get('commit'))[:12]}, not {up.repo}@{up.commit[:12]}"
    if pinned is None:
        return f"{relpath} is not a file matbench pins in {up.repo}"
    got = str(source.get("file_sha256"))
    if got != pinned:
        return f"{relpath} had sha256 {got[:16]}..., not the pinned file's {pinned[:16]}..."
    return None
