"""Where a run's wall time went: the model, the tools, or waiting — written into every summary.json.

Lock-step (an in-process engine): each round is one batched ``generate`` over the live episodes, then
every episode runs its tool step concurrently and the next round waits for the slowest one. Per round:

* ``engine_s``: the batched generate call (the engine is busy);
* ``tool_s``: from the end of generate until the FIRST episode has finished its tool step (every episode
  is still in a tool: there is nothing the engine could be given);
* ``idle_s``: from then until the LAST episode has finished (episodes are ready for the engine but wait
  for the slowest of the round: the cost of lock-step that an async engine would recover);
* ``other_s``: the rest of the wall time (making episodes, recording and scoring samples).

Concurrent (HTTP): episodes overlap, so the split is in episode-seconds: ``model_wait_s`` sums the time
episodes spent waiting for model answers, ``tool_s`` the time they spent in tool steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("matbench.rounds")


@dataclass
class RoundTimes:
    episodes: int
    engine_s: float
    tool_s: float
    idle_s: float


@dataclass
class TimeSplit:
    """Accumulates timings while a scheduler runs; ``to_dict`` is what summary.json records."""

    mode: str  # "lockstep" or "concurrent"
    started: float = field(default_factory=time.monotonic)
    engine_s: float = 0.0
    tool_s: float = 0.0
    idle_s: float = 0.0
    model_wait_s: float = 0.0
    calls: int = 0
    rounds: list[RoundTimes] = field(default_factory=list)

    def add_round(self, episodes: int, engine_s: float, tool_times: list[float], phase_s: float) -> None:
        """One lock-step round: generate took ``engine_s``; its tool phase took ``phase_s`` in all, the
        episodes' own tool steps ``tool_times``."""
        first = min(tool_times) if tool_times else phase_s
        tool = min(first, phase_s)
        rnd = RoundTimes(episodes, engine_s, tool, max(0.0, phase_s - tool))
        self.rounds.append(rnd)
        self.engine_s += rnd.engine_s
        self.tool_s += rnd.tool_s
        self.idle_s += rnd.idle_s
        self.calls += episodes
        log.info(
            "round %d: %d episodes, engine %.3f s, tools %.3f s, waiting for the slowest %.3f s",
            len(self.rounds),
            episodes,
            rnd.engine_s,
            rnd.tool_s,
            rnd.idle_s,
        )

    def add_call(self, model_wait_s: float, tool_s: float) -> None:
        """One model call of a concurrent episode and the tool step that followed it."""
        self.calls += 1
        self.model_wait_s += model_wait_s
        self.tool_s += tool_s

    def to_dict(self, wall_s: float | None = None) -> dict[str, Any]:
        wall = time.monotonic() - self.started if wall_s is None else wall_s

        def share(x: float) -> float:
            return round(x / wall, 4) if wall > 0 else 0.0

        if self.mode == "lockstep":
            other = max(0.0, wall - self.engine_s - self.tool_s - self.idle_s)
            return {
                "mode": "lockstep",
                "wall_s": round(wall, 3),
                "engine_s": round(self.engine_s, 3),
                "tool_s": round(self.tool_s, 3),
                "idle_s": round(self.idle_s, 3),
                "other_s": round(other, 3),
                "fractions": {
                    "engine": share(self.engine_s),
                    "tool": share(self.tool_s),
                    "idle": share(self.idle_s),
                    "other": share(other),
                },
                "calls": self.calls,
                "rounds": [
                    {
                        "episodes": r.episodes,
                        "engine_s": round(r.engine_s, 4),
                        "tool_s": round(r.tool_s, 4),
                        "idle_s": round(r.idle_s, 4),
                    }
                    for r in self.rounds
                ],
            }
        return {
            "mode": "concurrent",
            "wall_s": round(wall, 3),
            "model_wait_s": round(self.model_wait_s, 3),
            "tool_s": round(self.tool_s, 3),
            "unit": "episode-seconds (episodes overlap)",
            "model_wait_share": round(self.model_wait_s / (self.model_wait_s + self.tool_s), 4)
            if self.model_wait_s + self.tool_s > 0
            else 0.0,
            "calls": self.calls,
        }
