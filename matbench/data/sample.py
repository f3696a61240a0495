"""The one record every task's loader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Sample:
    """A question with its gold answers, optional image and split (slots: a task holds 12,576 of them).

    ``input_error`` is set instead of dropping a bad row: the runner records such a sample with status
    ``input_error`` so that it stays visible (and in the denominator) rather than silently vanishing.
    """

    id: str
    question: str
    answers: list[str]
    image: Path | None = None
    split: str | None = None
    metadata: dict = field(default_factory=dict)
    input_error: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "image": str(self.image) if self.image else None,
            "split": self.split,
            "metadata": self.metadata,
            "input_error": self.input_error,
        }
