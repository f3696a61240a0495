"""The embedded default: BM25 (bm25s) over a FlashRAG/Search-R1 passage corpus, no key and no network.

A corpus is jsonl rows ``{"id": ..., "contents": "\\"Title\\"\\ntext"}`` (a ``title`` field, or ``title`` +
``text`` instead of ``contents``, are accepted too). ``build_index`` reads it once, streaming, and writes a
self-contained index directory:

- the BM25 matrix in shards (``shard-NNNNN/``, :mod:`matbench.tools.search.bm25_shards`), each scored with
  the corpus-wide document frequencies so the merged top-k equals a single index's, built in the memory of
  one shard and memory-mapped at query time, plus the vocabulary (``vocab.json``);
- ``docs.jsonl`` + ``docs.offsets.npy``: ``[id, title, text]`` per passage for result lookup by ``pread``
  (thread-safe, no shared file position), so the original corpus is not needed afterwards;
- ``meta.json``: corpus path/size/sha256, counts, tokenizer settings, BM25 parameters, versions and a
  ``fingerprint`` that identifies the results (used in search-cache keys instead of the path).

The BM25 matrix is computed with vectorised numpy (one sort of (token, doc) keys per shard) instead of bm25s's
per-document Python loop: same tokenizer and formula (Lucene BM25, bm25s's default), same CSC layout, a
fraction of the time and memory. ``tests/test_search_local.py`` checks the scores against ``bm25s.BM25.index``
on a real corpus, and a many-shard index against a one-shard index. Indexes of format version 1 (one bm25s
matrix, ``*.index.npy``) are still read, as one shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from matbench import __version__
from matbench.errors import ConfigError, InputError
from matbench.records.outputs import check_dir, install_dir, mark_dir, new_dir_beside
from matbench.tools.search.base import SearchBackend, SearchHit, check_k, default_cache_dir, split_contents
from matbench.tools.search.bm25_shards import DEFAULT_SHARD_SIZE, Shard, ShardBuilder, merged_top_k

INDEX_FORMAT = "matbench-bm25"
INDEX_KIND = "index"  # the outputs marker of an index folder
INDEX_FORMAT_VERSION = 2
#: versions this matbench reads (1: a single bm25s matrix at the top of the directory)
READABLE_VERSIONS = (1, 2)
VOCAB_NAME = "vocab.json"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
META_NAME = "meta.json"
DOCS_NAME = "docs.jsonl"
OFFSETS_NAME = "docs.offsets.npy"
DEFAULT_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class Passage:
    """One corpus row, already split into the title and the text the model will see."""

    id: str
    title: str
    text: str
    contents: str


@dataclass(frozen=True)
class TokenizerSettings:
    """Recorded in meta.json: queries must be tokenized exactly like the corpus was."""

    lower: bool = True
    pattern: str = TOKEN_PATTERN
    stopwords: str = "en"
    #: "pystemmer:english" when PyStemmer was importable at build time, else None
    stemmer: str | None = None


@dataclass(frozen=True)
class BM25Params:
    method: str = "lucene"
    k1: float = 1.5
    b: float = 0.75


@dataclass(frozen=True)
class IndexInfo:
    """What ``build_index`` reports: enough for the CLI line and the bench."""

    path: Path
    n_passages: int
    n_tokens: int
    vocab_size: int
    seconds: float
    size_bytes: int
    fingerprint: str
    shards: int = 1


# --------------------------------------------------------------------------------------------------
# corpus reading


def iter_passages(path: str | Path, *, on_bytes: Any = None) -> Iterator[Passage]:
    """Stream a FlashRAG/Search-R1 jsonl corpus; malformed rows raise InputError naming file and line.

    ``on_bytes(raw_line: bytes)`` is called for every line read (hashing, progress) if given.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read corpus: {exc.strerror}", file=str(path)) from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if on_bytes is not None:
                on_bytes(raw)
            if not raw.strip():
                continue
            yield parse_corpus_row(raw, file=str(path), line=lineno)


def parse_corpus_row(raw: bytes | str, *, file: str, line: int) -> Passage:
    try:
        row = json.loads(raw.rstrip(b"\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n"))
    except UnicodeDecodeError:
        raise InputError("line is not valid UTF-8", file=file, row=line) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})", file=file, row=line) from None
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got a {type(row).__name__}", file=file, row=line)
    title_field = row.get("title")
    if title_field is not None and not isinstance(title_field, str):
        raise InputError("'title' must be a string", file=file, row=line)
    contents = row.get("contents")
    if contents is None and isinstance(row.get("text"), str):
        text = row["text"]
        contents = f'"{title_field}"\n{text}' if title_field else text
    if not isinstance(contents, str):
        raise InputError(
            "missing 'contents' string (corpus rows look like "
            '{"id": "0", "contents": "\\"Title\\"\\ntext"})',
            file=file,
            row=line,
        )
    raw_id = row.get("id", row.get("_id"))
    if raw_id is None:
        doc_id = str(line - 1)
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        doc_id = str(raw_id)
    else:
        raise InputError(f"'id' must be a string or an integer, got {raw_id!r}", file=file, row=line)
    title, text = split_contents(contents, title_field or None)
    return Passage(id=doc_id, title=title, text=text, contents=contents)


# --------------------------------------------------------------------------------------------------
# tokenizer


def _load_stemmer(name: str | None) -> Any:
    if name is None:
        return None
    kind, _, lang = name.partition(":")
    if kind != "pystemmer":
        raise ConfigError(f"unknown stemmer {name!r} in index metadata")
    try:
        import Stemmer  # PyStemmer: optional
    except ImportError:
        raise ConfigError(
            f"this index was built with stemming ({name}); install PyStemmer (pip install PyStemmer) to query it"
        ) from None
    return Stemmer.Stemmer(lang)


def default_tokenizer_settings(stemmer: str | bool | None = "auto") -> TokenizerSettings:
    """English stopwords always; stemming only when PyStemmer is importable (it is not a dependency)."""
    if stemmer == "auto":
        try:
            import Stemmer  # noqa: F401
        except ImportError:
            stemmer = None
        else:
            stemmer = "pystemmer:english"
    elif stemmer is True:
        stemmer = "pystemmer:english"
    elif stemmer is False:
        stemmer = None
    return TokenizerSettings(stemmer=stemmer)


def make_tokenizer(settings: TokenizerSettings) -> Any:
    import bm25s.tokenization

    return bm25s.tokenization.Tokenizer(
        lower=settings.lower,
        splitter=settings.pattern,
        stopwords=settings.stopwords,
        stemmer=_load_stemmer(settings.stemmer),
    )


# --------------------------------------------------------------------------------------------------
# build


def build_index(
    corpus: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stemmer: str | bool | None = "auto",
    bm25: BM25Params | None = None,
    show_progress: bool = True,
    overwrite: bool = True,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> IndexInfo:
    """Read ``corpus`` once (streaming) and write a self-contained BM25 index to ``out_dir``.

    The index is written to a temporary sibling directory and renamed into place, so a crash or a
    concurrent builder never leaves a half-written index behind.
    """
    import numpy as np

    t0 = time.perf_counter()
    corpus = Path(corpus)
    out_dir = Path(out_dir)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {batch_size}")
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be positive, got {shard_size}")
    try:
        st = corpus.stat()
    except OSError as exc:
        raise InputError(f"cannot read corpus: {exc.strerror}", file=str(corpus)) from None
    if corpus.is_dir():
        raise InputError("is a directory, expected a .jsonl corpus file", file=str(corpus))
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"{out_dir} already exists")
    check_dir(out_dir, INDEX_KIND)  # replaced only if matbench made it as an index
    settings = default_tokenizer_settings(stemmer)
    bm25 = bm25 or BM25Params()
    tokenizer = make_tokenizer(settings)

    tmp = new_dir_beside(out_dir)  # readable by all: an index is meant to be shared
    try:
        hasher = hashlib.sha256()
        offsets = array("q", [0])
        shards = ShardBuilder(tmp, Path(tempfile.mkdtemp(prefix="work-", dir=tmp)), shard_size)
        bar = _progress(st.st_size, show_progress, corpus.name)

        def on_bytes(raw: bytes) -> None:
            hasher.update(raw)
            if bar is not None:
                bar.update(len(raw))

        try:
            with open(tmp / DOCS_NAME, "wb") as docs:
                batch: list[Passage] = []
                for passage in iter_passages(corpus, on_bytes=on_bytes):
                    batch.append(passage)
                    if len(batch) >= batch_size:
                        _consume(batch, tokenizer, docs, shards, offsets)
                        batch = []
                if batch:
                    _consume(batch, tokenizer, docs, shards, offsets)
        finally:
            if bar is not None:
                bar.close()
        n = len(offsets) - 1
        if n == 0:
            raise InputError("the corpus has no passages", file=str(corpus))
        vocab = tokenizer.get_vocab_dict()
        stats = shards.finish(len(vocab), k1=bm25.k1, b=bm25.b)
        n_tokens = shards.n_tokens
        np.save(tmp / OFFSETS_NAME, np.frombuffer(offsets, dtype=np.int64))
        (tmp / VOCAB_NAME).write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), "utf-8")

        corpus_sha = hasher.hexdigest()
        fingerprint = _fingerprint(corpus_sha, n, settings, bm25)
        meta = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "fingerprint": fingerprint,
            "corpus": {
                "path": str(corpus.resolve()),
                "size": st.st_size,
                "mtime": st.st_mtime,
                "sha256": corpus_sha,
            },
            "n_passages": n,
            "n_tokens": n_tokens,
            "vocab_size": len(vocab),
            "tokenizer": asdict(settings),
            "bm25": asdict(bm25),
            "shard_size": shard_size,
            **stats,
            "matbench_version": __version__,
            "bm25s_version": _bm25s_version(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - t0, 3),
        }
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _install(tmp, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return IndexInfo(
        path=out_dir,
        n_passages=n,
        n_tokens=n_tokens,
        vocab_size=len(vocab),
        seconds=time.perf_counter() - t0,
        size_bytes=dir_size(out_dir),
        fingerprint=fingerprint,
        shards=len(stats["shards"]),
    )


def _consume(
    batch: list[Passage], tokenizer: Any, docs: IO[bytes], shards: ShardBuilder, offsets: array
) -> None:
    """Tokenize one batch (growing the vocabulary), hand it to the shards, append it to the doc store."""
    pos = offsets[-1]
    for passage in batch:
        line = (
            json.dumps([passage.id, passage.title, passage.text], ensure_ascii=False).encode("utf-8") + b"\n"
        )
        docs.write(line)
        pos += len(line)
        offsets.append(pos)
    shards.add(tokenizer.streaming_tokenize([p.contents for p in batch], update_vocab=True, allow_empty=True))


def _install(tmp: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Move a finished build into place (atomic rename); an existing index is replaced only if ``overwrite``
    and only if matbench made it as an index (its marker)."""
    if not overwrite:
        mark_dir(tmp, INDEX_KIND)
        try:
            os.rename(tmp, out_dir)
            return
        except OSError:  # another builder installed it in the meantime
            raise ConfigError(f"{out_dir} already exists") from None
    install_dir(tmp, out_dir, INDEX_KIND)


def _fingerprint(corpus_sha: str, n: int, settings: TokenizerSettings, bm25: BM25Params) -> str:
    ident = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_FORMAT_VERSION,
        "corpus_sha256": corpus_sha,
        "n": n,
        "tokenizer": asdict(settings),
        "bm25": asdict(bm25),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _progress(total: int, enabled: bool, name: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"indexing {name}")


def _bm25s_version() -> str:
    try:
        from importlib.metadata import version

        return version("bm25s")
    except Exception:  # noqa: BLE001 - metadata missing in odd installs; informational only
        return "unknown"


def dir_size(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def read_meta(index_dir: str | Path) -> dict[str, Any]:
    index_dir = Path(index_dir)
    meta_path = index_dir / META_NAME
    if not meta_path.is_file():
        raise ConfigError(
            f"{index_dir} is not a matbench search index (no {META_NAME}); "
            f"build one with: matbench index build CORPUS.jsonl --out {index_dir}"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {meta_path}: {exc}") from None
    if meta.get("format") != INDEX_FORMAT or meta.get("format_version") not in READABLE_VERSIONS:
        raise ConfigError(
            f"{index_dir} has index format {meta.get('format')!r} v{meta.get('format_version')}, "
            f"this matbench reads {INDEX_FORMAT!r} v{INDEX_FORMAT_VERSION}; rebuild it with matbench index build"
        )
    return meta


# --------------------------------------------------------------------------------------------------
# the backend


_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()


def ensure_corpus_index(
    corpus: str | Path, *, cache_dir: str | Path | None = None, show_progress: bool = False
) -> Path:
    """The index of a corpus file, built once and cached under ``cache_dir/indexes``.

    Keyed by the corpus's absolute path, size and mtime, so editing the corpus triggers a rebuild.
    """
    corpus = Path(corpus).expanduser().resolve()
    try:
        st = corpus.stat()
    except OSError as exc:
        raise InputError(f"cannot read corpus: {exc.strerror}", file=str(corpus)) from None
    ident = f"{corpus}|{st.st_size}|{st.st_mtime_ns}"
    key = hashlib.sha256(ident.encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / "indexes" / f"{corpus.stem[:40]}-{key}"
    with _build_locks_guard:
        lock = _build_locks.setdefault(str(out), threading.Lock())
    with lock:
        if not (out / META_NAME).is_file():
            from matbench.caches.location import usable_cache_dir

            usable_cache_dir(root)  # one line naming it, and how to move it, if it cannot be written
            try:  # never replace: another process may be searching the index it just installed
                build_index(corpus, out, show_progress=show_progress, overwrite=False)
            except ConfigError:
                if not (out / META_NAME).is_file():
                    raise
    return out


class LocalSearch(SearchBackend):
    """BM25 over a built index directory; safe to share between threads."""

    name = "local"
    #: answers from a local file, the same every time: a search cache only adds its lookup cost
    local_deterministic = True

    def __init__(self, index_dir: str | Path, *, mmap: bool = True):
        import numpy as np

        self.index_dir = Path(index_dir)
        self.meta = read_meta(self.index_dir)
        settings = TokenizerSettings(**self.meta["tokenizer"])
        self._tokenizer = make_tokenizer(settings)
        n = int(self.meta["n_passages"])
        if self.meta["format_version"] == 1:  # one bm25s matrix, as BM25.save wrote it
            vocab_path = self.index_dir / "vocab.index.json"
            names = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")
            self.shards = [Shard(self.index_dir, 0, n, mmap=mmap, names=names)]
        else:
            vocab_path = self.index_dir / VOCAB_NAME
            self.shards = [
                Shard(self.index_dir / s["dir"], int(s["start"]), int(s["n"]), mmap=mmap)
                for s in self.meta["shards"]
            ]
        with open(vocab_path, encoding="utf-8") as fh:
            self.vocab: dict[str, int] = json.load(fh)
        # queries map words straight onto the index vocabulary (stems when a stemmer was used)
        if settings.stemmer is None:
            self._tokenizer.word_to_id = self.vocab
        else:
            self._tokenizer.stem_to_sid = self.vocab
        self._tok_lock = threading.Lock()
        self._offsets = np.asarray(np.load(self.index_dir / OFFSETS_NAME, mmap_mode="r" if mmap else None))
        self._fd = os.open(self.index_dir / DOCS_NAME, os.O_RDONLY)
        self.n_passages = int(self.meta["n_passages"])

    @classmethod
    def from_spec(
        cls,
        arg: str | None,
        *,
        cache_dir: str | Path | None = None,
        mmap: bool = True,
        show_progress: bool = False,
    ) -> LocalSearch:
        target = arg or os.environ.get("MATBENCH_LOCAL_INDEX", "")
        if not target:
            raise ConfigError(
                "no local search index: build one with 'matbench index build CORPUS.jsonl --out DIR' and use "
                "--search local:DIR (or set MATBENCH_LOCAL_INDEX=DIR); --search local:CORPUS.jsonl also works"
            )
        path = Path(target).expanduser()
        if path.is_dir():
            return cls(path, mmap=mmap)
        if path.is_file():
            return cls(ensure_corpus_index(path, cache_dir=cache_dir, show_progress=show_progress), mmap=mmap)
        raise ConfigError(f"local search index or corpus not found: {path}")

    def params(self) -> dict[str, Any]:
        return {"index": self.meta["fingerprint"]}

    def setting(self) -> dict[str, Any]:
        """The index by name (its corpus file), passage count and corpus sha256, and its fingerprint."""
        corpus = self.meta.get("corpus") or {}
        name = Path(str(corpus.get("path") or self.index_dir)).name
        return {
            "backend": "local",
            "name": name,
            "passages": self.n_passages,
            "corpus_sha256": corpus.get("sha256"),
            "index": self.meta["fingerprint"],
        }

    def describe(self) -> str:
        return f"local(bm25 over {self.n_passages} passages, {self.index_dir})"

    def query_ids(self, query: str) -> list[int]:
        """Token ids of ``query`` in the index vocabulary (unknown words and stopwords dropped)."""
        with self._tok_lock:  # the bm25s tokenizer caches stems in dicts
            return next(self._tokenizer.streaming_tokenize([query], update_vocab=False, allow_empty=False))

    def search(self, query: str, k: int) -> list[SearchHit]:
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: list[str], k: int) -> list[list[SearchHit]]:
        check_k(k)
        return [[self.passage(d) for d, _ in self.top_k(self.query_ids(q), k)] for q in queries]

    def top_k(self, ids: list[int], k: int) -> list[tuple[int, float]]:
        """(passage number, score) of the ``k`` best passages with a positive score, best first.

        Each shard scores its passages as bm25s's ``get_scores_from_ids`` does and selects its best; the
        merge keeps the overall best. The selection is ours: numpy's argpartition, which bm25s's
        ``retrieve`` uses, degrades badly on a score vector that is mostly zeros (57 ms on 1M passages
        instead of 3 ms), and ties must break the same way every run (by passage number) for replays to
        be identical.
        """
        return merged_top_k(self.shards, ids, k)

    def passage(self, i: int) -> SearchHit:
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        doc_id, title, text = json.loads(os.pread(self._fd, end - start, start))
        return SearchHit(title=title, url=f"local://{doc_id}", snippet=text)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
