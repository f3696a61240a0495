"""The F1/EM rules: pure functions, no I/O.

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
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from matbench.scoring.base import Score, Scorer

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




class VisualArft(Scorer):
    """The authors' notebooks; the task spec's ``cjk: true`` selects MAT-Coding's character-level variant."""

    name = "visual-arft"
    params = ("cjk",)

    def __init__(self, *, cjk: bool = False) -> None:
        self.cjk = bool(cjk)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> VisualArft:
        return cls(cjk=bool(params.get("cjk", False)))

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        return score_visual_arft(prediction, golds, cjk=self.cjk)


class Squad(Scorer):
    """The official SQuAD v1.1 / HotpotQA F1 and EM (takes no parameters: CJK does not apply)."""

    name = "squad"

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        return score_squad(prediction, golds)
