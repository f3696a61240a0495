"""The Scorer seam: what a scorer is, and how one is built from its name and the task's parameters.

A scorer turns one prediction and the gold answers into a :class:`Score` (two numbers in [0, 1]). Scorers are
named in :data:`matbench.registry.SCORERS` (``visual-arft``, ``squad``, ``anls``; plug-ins through the
``matbench.scorers`` entry points), so a new one is one file plus one registry line or one entry point.
Per-task parameters come from the task spec: in ``scoring: {default: visual-arft, cjk: true}`` every key but
``default`` is a parameter, and a key named after a scorer holds parameters for that scorer alone
(``anls: {threshold: 0.6}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from matbench.errors import ConfigError


@dataclass(frozen=True)
class Score:
    """A sample's score: ``f1`` is the scorer's main number (F1, or ANLS), ``em`` its exact match."""

    f1: float
    em: float


#: what an episode is scored with: a Scorer, or a RunScorer (the scorer of a run)
ScoreFn = Callable[[str | None, Sequence[str]], Score]


class Scorer:
    """Base of every scorer: ``__call__(prediction, golds) -> Score``; ``None`` (no prediction) scores 0.

    ``labels`` name the two numbers in tables (``F1``/``EM`` unless the scorer measures something else);
    ``params`` are the task-spec keys it reads (anything else in the spec's ``scoring`` block is ignored).
    """

    name: ClassVar[str] = ""
    labels: ClassVar[tuple[str, str]] = ("F1", "EM")
    params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Scorer:
        """Build from the task's parameters (only the keys in ``params`` are passed)."""
        return cls(**{k: params[k] for k in cls.params if k in params})

    def __call__(self, prediction: str | None, golds: Sequence[str]) -> Score:
        raise NotImplementedError


def scorer_names() -> list[str]:
    """Every scorer name (built-ins, then plug-ins): what ``--scoring`` accepts."""
    from matbench.registry import SCORERS

    return SCORERS.names()


def scorer_class(name: str) -> type[Scorer]:
    """The class registered as ``name``; an unknown name is one ConfigError listing the choices."""
    from matbench.registry import SCORERS

    cls = SCORERS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, Scorer)):
        raise ConfigError(f"scorer {name!r} ({SCORERS.target(name)}) is not a matbench.scoring.base.Scorer class")
    return cls


def labels_of(name: str) -> tuple[str, str]:
    """What a scorer's two numbers are called in tables (``F1``/``EM`` for a name this matbench cannot load)."""
    try:
        return scorer_class(name).labels
    except ConfigError:
        return ("F1", "EM")


def task_params(scoring_block: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The parameters a task spec's ``scoring:`` block gives scorer ``name``: the shared keys, then its own."""
    shared = {k: v for k, v in scoring_block.items() if k != "default" and not isinstance(v, Mapping)}
    own = scoring_block.get(name)
    return {**shared, **(dict(own) if isinstance(own, Mapping) else {})}


def make_scorer(name: str, scoring_block: Mapping[str, Any] | None = None) -> Scorer:
    """The scorer ``name`` with the task's parameters (``scoring_block`` is the task spec's ``scoring:``)."""
    cls = scorer_class(name)
    try:
        return cls.from_params(task_params(scoring_block or {}, name))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scorer {name!r}: bad parameters in the task spec ({exc})") from exc
