"""Answer scoring: pure functions, no I/O.

Two named variants, never mixed:

* ``visual-arft`` — the rules of the Visual-ARFT authors' evaluation notebooks, reproduced exactly (SET-based
  token overlap, CJK handling for MAT-Coding, max over gold answers, EM=1 forces F1=1). This is the default,
  so that numbers line up with the paper.
* ``squad`` — the standard SQuAD / HotpotQA official F1 (token COUNT overlap) and EM, reported beside it.

A missing prediction (``None``) scores 0 and stays in the denominator.
"""

from __future__ import annotations

import re
import string
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

SCORINGS = ("visual-arft", "squad")

_ASCII_PUNCT = frozenset(string.punctuation)
# The full-width / CJK punctuation that the authors' MAT-Coding notebook strips besides ASCII punctuation
# (their exact set: no ellipsis, no em dash; with "…" added the 3B file would score 28.4191 on hard, not 28.4185).
_CJK_PUNCT = frozenset("！？｡＂＃＄％＆＇（）＊＋，－．／：；＜＝＞＠［＼］＾＿｀｛｜｝～“”‘’、。：《》【】")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def normalize_answer(text: str, *, cjk: bool = False) -> str:
    """Lower-case, strip punctuation, then drop articles and collapse spaces (or, for CJK text, drop spaces).

    ``cjk=True`` selects the MAT-Coding notebook: full-width punctuation is stripped too and text containing
    CJK characters loses its spaces but keeps its articles.
    """
    text = text.lower()
    punct = _ASCII_PUNCT | _CJK_PUNCT if cjk else _ASCII_PUNCT
    text = "".join(ch for ch in text if ch not in punct)
    if cjk and has_cjk(text):
        return text.replace(
            " ", ""
        )  # only ASCII spaces: the notebook keeps newlines, which count as characters
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def _tokens(normalized: str, *, by_char: bool) -> list[str]:
    return list(normalized) if by_char else normalized.split()


def _f1(pred_tokens: Sequence[str], gold_tokens: Sequence[str], *, set_overlap: bool) -> float:
    if set_overlap:
        overlap = len(set(pred_tokens) & set(gold_tokens))
    else:
        overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Score:
    f1: float
    em: float


def score_visual_arft(prediction: str | None, golds: Sequence[str], *, cjk: bool = False) -> Score:
    """The authors' rule. ``cjk=True`` for MAT-Coding (character-level comparison when either side has CJK)."""
    if prediction is None:
        return Score(0.0, 0.0)
    pred_norm = normalize_answer(prediction, cjk=cjk)
    best_f1 = best_em = 0.0
    for gold in golds:
        gold_norm = normalize_answer(gold, cjk=cjk)
        em = float(pred_norm == gold_norm)
        by_char = cjk and (has_cjk(pred_norm) or has_cjk(gold_norm))
        f1 = _f1(_tokens(pred_norm, by_char=by_char), _tokens(gold_norm, by_char=by_char), set_overlap=True)
        best_f1 = max(best_f1, f1)
        best_em = max(best_em, em)
    if best_em == 1.0:
        best_f1 = 1.0
    return Score(best_f1, best_em)


def score_squad(prediction: str | None, golds: Sequence[str]) -> Score:
    """Official SQuAD v1.1 / HotpotQA: COUNT overlap, max over gold answers, yes/no/noanswer mismatch scores 0."""
    if prediction is None:
        return Score(0.0, 0.0)
    pred_norm = normalize_answer(prediction)
    best_f1 = best_em = 0.0
    for gold in golds:
        gold_norm = normalize_answer(gold)
        em = float(pred_norm == gold_norm)
        special = {"yes", "no", "noanswer"}
        if (pred_norm in special or gold_norm in special) and pred_norm != gold_norm:
            f1 = 0.0
        else:
            f1 = _f1(pred_norm.split(), gold_norm.split(), set_overlap=False)
        best_f1 = max(best_f1, f1)
        best_em = max(best_em, em)
    return Score(best_f1, best_em)


Scorer = Callable[[str | None, Sequence[str]], Score]


def get_scorer(scoring: str, *, cjk: bool = False) -> Scorer:
    """The scorer for a task: ``cjk`` comes from the task spec (MAT-Coding's notebook)."""
    if scoring == "visual-arft":
        return lambda pred, golds: score_visual_arft(pred, golds, cjk=cjk)
    if scoring == "squad":
        return score_squad
    raise ValueError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")


@dataclass(frozen=True)
class Scored:
    """One scored sample as the aggregator needs it."""

    id: str
    split: str | None
    f1: float
    em: float
    missing: bool = False
    error: bool = False  # an API error: not a score (counted apart, rerun with --retry-errors)


def aggregate(rows: Iterable[Scored], split_order: Sequence[str] = ()) -> dict:
    """Means over the scored rows and per split (by each row's split field), with n per split. Fractions in [0, 1].

    A row that ended in an API error is not a score: it is counted in ``errors`` and left out of n, F1 and EM
    (a failed call is not a wrong answer). One pass with running sums (rows may be a generator: nothing is
    held per row, at any number of samples).
    """
    n = missing = errors = 0
    f1 = em = 0.0
    parts: dict[str, list] = {}  # split -> [n, f1 sum, em sum]
    for r in rows:
        if r.error:
            errors += 1
            continue
        n += 1
        missing += r.missing
        f1 += r.f1
        em += r.em
        if r.split is not None:
            part = parts.get(r.split)
            if part is None:
                part = parts[r.split] = [0, 0.0, 0.0]
            part[0] += 1
            part[1] += r.f1
            part[2] += r.em
    out: dict = {
        "n": n,
        "missing": missing,
        "errors": errors,
        "f1": f1 / n if n else 0.0,
        "em": em / n if n else 0.0,
        "splits": {},
    }
    names = [s for s in split_order if s in parts]
    names += sorted(s for s in parts if s not in names)
    for name in names:
        k, f, e = parts[name]
        out["splits"][name] = {"n": k, "f1": f / k, "em": e / k}
    return out


class ScoreTable:
    """Per-sample scores packed by row, in first-seen id order: ~100 bytes a sample at any size.

    A later score for the same id replaces the earlier one in place (the latest line of a predictions file wins
    and keeps its first place), so a streamed file aggregates exactly as its deduplicated rows would.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}  # id -> row
        self.f1 = array("d")
        self.em = array("d")
        self.missing = bytearray()
        self.error = bytearray()
        self.split = array("H")  # into self.splits; 0 is no split
        self.splits: list[str | None] = [None]

    def __len__(self) -> int:
        return len(self.f1)

    def put(
        self, sample_id: str, split: str | None, f1: float, em: float, missing: bool, error: bool = False
    ) -> int:
        """Store a sample's scores; its row (new, or the one it already had)."""
        row = self.index.get(sample_id)
        if row is None:
            row = self.index[sample_id] = len(self.f1)
            self.f1.append(f1)
            self.em.append(em)
            self.missing.append(missing)
            self.error.append(error)
            self.split.append(0)
        else:
            self.f1[row], self.em[row], self.missing[row], self.error[row] = f1, em, missing, error
        if split not in self.splits:
            self.splits.append(split)
        self.split[row] = self.splits.index(split)
        return row

    def rows(self) -> Iterator[Scored]:
        for sample_id, i in self.index.items():
            yield Scored(
                sample_id, self.splits[self.split[i]], self.f1[i], self.em[i], bool(self.missing[i]),
                bool(self.error[i]),
            )

    def aggregate(self, split_order: Sequence[str] = ()) -> dict:
        return aggregate(self.rows(), split_order)
