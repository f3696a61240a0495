"""``--shard I/N``: a deterministic 1/N slice of a task's samples, by a hash of each sample's id.

A sample's shard depends on its id alone, so it never moves when samples are added to the task, and N processes
(a SLURM array, several machines) that run shards 0/N ... N-1/N together cover every sample exactly once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from matbench.errors import ConfigError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based, as SLURM_ARRAY_TASK_ID with --array=0-(N-1)
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """For directory names: ``shard0of4``."""
        return f"shard{self.index}of{self.count}"

    def holds(self, sample_id: str) -> bool:
        return shard_of(sample_id, self.count) == self.index

    def select(self, samples: Iterable[T], key=lambda s: s.id) -> list[T]:
        return [s for s in samples if self.holds(key(s))]


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with 0 <= I < N; anything else is a one-line error."""
    m = _SPEC.match(text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4 (I counts from 0)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text}: I must be in 0..N-1 and N at least 1")
    return Shard(index, count)


def shard_of(sample_id: str, count: int) -> int:
    """The shard (0..count-1) of a sample id: the first 8 bytes of its sha256, modulo count."""
    digest = hashlib.sha256(str(sample_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count
