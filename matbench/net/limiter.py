"""Client-side rate limiting per endpoint: a concurrency limit that halves on 429 and slowly grows back,
and a shared cool-down after a Retry-After, so a rate-limited run slows down instead of hammering the API."""

from __future__ import annotations

import asyncio
import time
from collections import deque


class AdaptiveLimiter:
    """A semaphore whose size halves on 429 and grows back by ~1 per window of successes, plus a
    shared cool-down: after a 429 with Retry-After nobody sends until that moment."""

    def __init__(self, max_limit: int) -> None:
        self.max_limit = max(1, int(max_limit))
        self.limit = float(self.max_limit)
        self.in_flight = 0
        self.cooldown_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self.release()  # the slot was handed over just as we were cancelled
                else:
                    self._waiters.remove(fut)
                raise
        while True:  # holding a slot, wait out a shared cool-down (set by another request's 429)
            wait = self.cooldown_until - time.monotonic()
            if wait <= 0:
                return
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                self.release()
                raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        if self.limit < self.max_limit:
            self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limit(self, cooldown: float) -> None:
        self.limit = max(1.0, self.limit / 2.0)
        self.cooldown_until = max(self.cooldown_until, time.monotonic() + cooldown)
