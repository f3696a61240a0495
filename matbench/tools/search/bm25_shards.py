"""A BM25 index in shards: built in bounded memory at any corpus size, queried by merging per-shard top-k.

Why: one in-memory BM25 matrix needs ~2.6 GB per million passages to build, so wiki-18 (21 M passages) did not
fit a 24 GB machine. Here the corpus is read once; each shard of ``shard_size`` passages is tokenized and its
sorted (token, doc, tf) triples are spilled to disk; the global document frequencies and average length are
summed as it goes. Then each shard's matrix is scored with the *global* statistics, so every (passage, term)
weight is exactly the one a single index would hold, and a query's top-k merged over the shards (ties broken
by passage number) is the single index's top-k. Peak memory is one shard's worth, whatever the corpus size.

Layout: ``shard-NNNNN/{data,indices,indptr}.npy`` (a doc x term CSC matrix, bm25s's layout: per term, the
shard-local doc numbers and their float32 weights); memory-mapped at query time.
"""

from __future__ import annotations

import shutil
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: passages per shard: bounds the build's memory (about 2 GB per million passages of ~100 words)
DEFAULT_SHARD_SIZE = 1_000_000
#: rows of the (token, doc) table scored at once; bounds the float64 temporaries (~8 bytes x 5 x chunk)
_SCORE_CHUNK = 4_000_000


def sorted_pairs(tokens: Any, lengths: Any) -> tuple[Any, Any, Any]:
    """(token, doc, tf) for each distinct (token, doc) of the documents, token-major then doc order.

    ``tokens`` is every document's token ids concatenated, ``lengths`` the per-document counts.
    """
    n = int(len(lengths))
    lengths = np.asarray(lengths, dtype=np.int64)
    key = np.asarray(tokens, dtype=np.int64) * n  # token-major: the sort yields CSC order directly
    key += np.repeat(np.arange(n, dtype=np.int64), lengths)
    key.sort()
    if key.size:
        change = np.empty(key.size, dtype=bool)
        change[0] = True
        np.not_equal(key[1:], key[:-1], out=change[1:])
        starts = np.flatnonzero(change)
        del change
    else:
        starts = np.zeros(0, dtype=np.int64)
    tf = np.diff(np.append(starts, key.size)).astype(np.int32)
    pairs = key[starts]
    del key, starts
    tok = (pairs // max(n, 1)).astype(np.int32)
    doc = (pairs - tok.astype(np.int64) * n).astype(np.int32)
    return tok, doc, tf


def idf(df: Any, n_docs: int) -> Any:
    """Lucene's idf, the one bm25s uses: log(1 + (N - df + 0.5) / (df + 0.5))."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def weights(tok: Any, doc: Any, tf: Any, lengths: Any, idf_: Any, avgdl: float, k1: float, b: float) -> Any:
    """float32 BM25 weight of each (token, doc) pair: idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))."""
    lengths = np.asarray(lengths, dtype=np.int64)
    data = np.empty(len(tok), dtype=np.float32)
    for s in range(0, len(tok), _SCORE_CHUNK):
        e = s + _SCORE_CHUNK
        tf_c = tf[s:e].astype(np.float64)
        norm = k1 * ((1.0 - b) + b * lengths[doc[s:e]] / avgdl)
        data[s:e] = idf_[tok[s:e]] * (tf_c / (norm + tf_c))
    return data


def bm25_matrix(tokens: Any, lengths: Any, n_vocab: int, *, k1: float = 1.5, b: float = 0.75) -> tuple:
    """One index's Lucene BM25 matrix (doc x token CSC: ``data`` float32, ``indices`` int32, ``indptr`` int64)."""
    tok, doc, tf = sorted_pairs(tokens, lengths)
    lengths = np.asarray(lengths, dtype=np.int64)
    df = np.bincount(tok, minlength=n_vocab)
    data = weights(tok, doc, tf, lengths, idf(df, len(lengths)), float(lengths.mean()), k1, b)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return data, doc, indptr


def max_weights(data: Any, indptr: Any) -> Any:
    """Each term's largest weight (0 for a term the shard lacks): bounds what the term can add to a score."""
    out = np.zeros(len(indptr) - 1, dtype=np.float32)
    starts = np.asarray(indptr[:-1])
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if nonempty.size:
        out[nonempty] = np.maximum.reduceat(np.asarray(data), starts[nonempty])
    return out


@dataclass
class ShardSpec:
    name: str
    start: int
    n: int
    pairs: int = 0


@dataclass
class ShardBuilder:
    """Collects tokenized passages shard by shard (spilling each shard's pairs to ``work``), then writes
    every shard's matrix into ``out`` with the corpus-wide statistics."""

    out: Path
    work: Path
    shard_size: int = DEFAULT_SHARD_SIZE
    shards: list[ShardSpec] = field(default_factory=list)
    n_docs: int = 0
    n_tokens: int = 0
    total_length: int = 0

    def __post_init__(self) -> None:
        self._tokens = array("i")
        self._lengths = array("i")
        self._all_lengths: list[Any] = []
        self._df = np.zeros(0, dtype=np.int64)

    def add(self, token_ids: list[list[int]] | Any) -> None:
        """Tokenized passages, in corpus order."""
        for ids in token_ids:
            if isinstance(ids, np.ndarray):
                self._tokens.frombytes(ids.astype(np.int32, copy=False).tobytes())
            else:
                self._tokens.extend(ids)
            self._lengths.append(len(ids))
            if len(self._lengths) >= self.shard_size:
                self._spill()

    def _spill(self) -> None:
        n = len(self._lengths)
        if n == 0:
            return
        lengths = np.frombuffer(self._lengths, dtype=np.int32).copy()
        tok, doc, tf = sorted_pairs(np.frombuffer(self._tokens, dtype=np.int32), lengths)
        self.n_tokens += len(self._tokens)
        self._tokens, self._lengths = array("i"), array("i")
        spec = ShardSpec(f"shard-{len(self.shards):05d}", self.n_docs, n, len(tok))
        counts = np.bincount(tok, minlength=len(self._df))
        counts[: len(self._df)] += self._df
        self._df = counts
        for name, arr in (("tok", tok), ("doc", doc), ("tf", tf)):
            np.save(self.work / f"{spec.name}.{name}.npy", arr)
        self._all_lengths.append(lengths)
        self.total_length += int(lengths.sum(dtype=np.int64))
        self.n_docs += n
        self.shards.append(spec)

    def finish(self, n_vocab: int, *, k1: float, b: float) -> dict[str, Any]:
        """Write the shards' matrices; returns the statistics meta.json records."""
        self._spill()
        df = np.zeros(n_vocab, dtype=np.int64)
        df[: len(self._df)] = self._df
        avgdl = self.total_length / max(self.n_docs, 1)
        idf_ = idf(df, self.n_docs)
        for spec, lengths in zip(self.shards, self._all_lengths, strict=True):
            tok, doc, tf = (np.load(self.work / f"{spec.name}.{x}.npy") for x in ("tok", "doc", "tf"))
            data = weights(tok, doc, tf, lengths, idf_, avgdl, k1, b)
            indptr = np.zeros(n_vocab + 1, dtype=np.int64)
            np.cumsum(np.bincount(tok, minlength=n_vocab), out=indptr[1:])
            del tok, tf
            target = self.out / spec.name
            target.mkdir()
            np.save(target / "data.npy", data)
            np.save(target / "indices.npy", doc)
            np.save(target / "indptr.npy", indptr)
            np.save(target / "maxw.npy", max_weights(data, indptr))
            for x in ("tok", "doc", "tf"):
                (self.work / f"{spec.name}.{x}.npy").unlink()
        shutil.rmtree(self.work, ignore_errors=True)
        return {
            "avgdl": avgdl,
            "shards": [{"dir": s.name, "start": s.start, "n": s.n, "pairs": s.pairs} for s in self.shards],
        }


class Shard:
    """One shard's matrix, memory-mapped; scores and selects passages ``start .. start + n - 1``."""

    def __init__(self, path: Path, start: int, n: int, *, mmap: bool = True, names: tuple[str, ...] = ()):
        mode = "r" if mmap else None
        files = names or ("data.npy", "indices.npy", "indptr.npy")
        # plain ndarray views of the maps: no np.memmap overhead on every posting-list slice
        self.data, self.indices, self.indptr = (np.asarray(np.load(path / f, mmap_mode=mode)) for f in files)
        self.maxw = (
            np.asarray(np.load(path / "maxw.npy", mmap_mode=mode))
            if (path / "maxw.npy").is_file()
            else max_weights(self.data, self.indptr)  # format 1: computed once at load
        )
        self.start = start
        self.n = n

    def scores(self, ids: list[int]) -> Any:
        """float32 score of every passage of the shard: per query token, in query order, its weights added
        (the sums bm25s's ``get_scores_from_ids`` computes; a term has each doc once in its list)."""
        scores = np.zeros(self.n, dtype=np.float32)
        indptr = self.indptr
        for t in ids:
            lo, hi = int(indptr[t]), int(indptr[t + 1])
            if hi > lo:
                scores[self.indices[lo:hi]] += self.data[lo:hi]
        return scores

    def scores_of(self, ids: list[int], docs: Any) -> Any:
        """The scores of some passages (sorted shard-local numbers), summed exactly as :meth:`scores` does:
        the same float32 additions in the same order (adding 0.0 for a missing term changes nothing)."""
        out = np.zeros(docs.size, dtype=np.float32)
        for t in ids:
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            if hi == lo:
                continue
            posting = self.indices[lo:hi]
            at = np.searchsorted(posting, docs)
            at[at == posting.size] = 0
            found = posting[at] == docs
            w = np.zeros(docs.size, dtype=np.float32)
            w[found] = self.data[lo:hi][at[found]]
            out += w
        return out

    def top_k(self, ids: list[int], k: int, floor: float = 0.0) -> list[tuple[int, float]]:
        """(global passage number, score) of the ``k`` best passages scoring at least ``floor`` (and above 0),
        best first, ties by passage number.

        Max-score pruning, exact: a lower bound of the k-th best score comes from ``k`` passages of the
        shortest posting lists (or ``floor``, the merge's running k-th best); the terms whose largest
        weights together stay below it cannot lift a passage into the top k on their own, so only passages
        holding one of the other terms are scored. Frequent terms (low idf) usually drop out, and a query
        costs the rare terms' posting lists instead of a pass over the whole shard.
        """
        if not ids:
            return []
        indptr = self.indptr
        uniq, mult = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
        lens = indptr[uniq + 1] - indptr[uniq]
        keep = lens > 0
        uniq, mult, lens = uniq[keep], mult[keep], lens[keep]
        if uniq.size == 0:
            return []
        threshold = floor
        if threshold <= 0:
            docs, sample = self.sample(ids, k)
            if docs.size >= k:
                threshold = float(np.partition(sample, docs.size - k)[docs.size - k])
        bound = self.maxw[uniq].astype(np.float64) * mult
        order = np.argsort(bound, kind="stable")
        below = np.cumsum(bound[order]) < threshold * (1 - 1e-6)  # margin: float32 sums vs float64 bounds
        essential = uniq[order[~below]]
        if essential.size == 0:  # even all terms together stay below the floor: nothing here can enter
            return []
        work = int((indptr[essential + 1] - indptr[essential]).sum())
        if threshold <= 0 or work > self.n // 4:  # nothing to prune with: one dense pass is cheaper
            scores = self.scores(ids)
            cand = np.flatnonzero(scores >= threshold) if threshold > 0 else np.flatnonzero(scores > 0)
            cand_scores = scores[cand]
        else:
            cand = _union([self.indices[indptr[t] : indptr[t + 1]] for t in essential])
            cand_scores = self.scores_of(ids, cand)
            keep = cand_scores >= threshold
            cand, cand_scores = cand[keep], cand_scores[keep]
        best = np.lexsort((cand, -cand_scores))[:k]
        return [(self.start + int(cand[i]), float(cand_scores[i])) for i in best]

    def sample(self, ids: list[int], k: int) -> tuple[Any, Any]:
        """At least ``k`` passages (when the query's terms have that many) taken from the shortest posting
        lists, with their exact scores: their k-th best bounds the shard's k-th best from below."""
        indptr = self.indptr
        uniq = np.unique(np.asarray(ids, dtype=np.int64))
        lens = indptr[uniq + 1] - indptr[uniq]
        found: list[Any] = []
        n_found = 0
        docs = np.zeros(0, dtype=np.int32)
        for t in uniq[np.argsort(lens, kind="stable")]:
            lo, hi = int(indptr[t]), int(indptr[t + 1])
            if hi == lo:
                continue
            found.append(self.indices[lo:hi])
            n_found += hi - lo
            if n_found >= k:
                docs = _union(found)
                if docs.size >= k:
                    break
        else:
            docs = _union(found) if found else docs
        return docs, self.scores_of(ids, docs)

    def top_k_dense(self, ids: list[int], k: int) -> list[tuple[int, float]]:
        """The reference: score every passage, sort. Tests check :meth:`top_k` against it."""
        scores = self.scores(ids)
        cand = np.flatnonzero(scores > 0)
        best = np.lexsort((cand, -scores[cand]))[:k]
        return [(self.start + int(cand[i]), float(scores[cand][i])) for i in best]


def _union(lists: list[Any]) -> Any:
    """Sorted distinct doc numbers of several posting lists (a sort beats numpy's hashing unique here)."""
    docs = np.sort(np.concatenate(lists)) if len(lists) > 1 else np.asarray(lists[0])
    if len(lists) > 1 and docs.size:
        keep = np.empty(docs.size, dtype=bool)
        keep[0] = True
        np.not_equal(docs[1:], docs[:-1], out=keep[1:])
        docs = docs[keep]
    return docs


def merged_top_k(shards: list[Shard], ids: list[int], k: int) -> list[tuple[int, float]]:
    """The top ``k`` over all shards; each shard only returns passages that can still enter the top k.

    With several shards, a first cheap pass scores a few passages of the rarest terms in every shard: their
    k-th best is a floor for all shards from the start (the first shard is pruned as well as the last)."""
    if not ids:
        return []
    floor = 0.0
    if len(shards) > 1:
        sampled = np.concatenate([shard.sample(ids, k)[1] for shard in shards])
        if sampled.size >= k:
            floor = float(np.partition(sampled, sampled.size - k)[sampled.size - k])
    best: list[tuple[int, float]] = []
    for shard in shards:
        if len(best) >= k:
            floor = max(floor, best[-1][1])
        best = sorted(best + shard.top_k(ids, k, floor), key=lambda p: (-p[1], p[0]))[:k]
    return best
