"""Several endpoints serving one model (``--base-url`` given several times): least-in-flight routing, draining.

Each call goes to the healthy endpoint with the fewest calls in flight, so a fast replica takes more of the load
than a slow one without any weights to tune. An endpoint is drained (taken out of routing) when it refuses
connections, after ``max_failures`` consecutive failures (timeouts, 5xx), or when a periodic health check
(``GET /models``) fails or no longer lists the run's model; the call that failed on it is retried on another
endpoint at once. Health checks keep probing a drained endpoint and bring it back when it answers again.
Rate limits (429) are not failures of the endpoint: its own adaptive limiter slows down instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matbench.errors import ConfigError

log = logging.getLogger("matbench.net.pool")

MAX_FAILURES = 3
HEALTH_INTERVAL = 5.0


@dataclass
class Endpoint:
    """One replica: its URL, the adapter's client and limiter for it, and what routing needs to know."""

    url: str
    client: Any = None
    limiter: Any = None
    in_flight: int = 0
    calls: int = 0  # answered (any HTTP answer that is not a failure of the endpoint)
    failures: int = 0  # consecutive failures of the endpoint itself
    failed_total: int = 0
    moved: int = 0  # calls that failed here and were sent to another endpoint
    healthy: bool = True
    drained: int = 0  # times it was taken out of routing
    reason: str | None = None
    first_call: float | None = None
    last_call: float | None = None
    served: Any = None  # what its preflight reported (ServedModel)
    trouble: str | None = None  # the kind of failure it is retrying through now (shown once, not per call)

    def stats(self) -> dict[str, Any]:
        span = (self.last_call - self.first_call) if self.first_call and self.last_call else 0.0
        return {
            "url": self.url,
            "calls": self.calls,
            "failed": self.failed_total,
            "moved": self.moved,
            "healthy": self.healthy,
            "drained": self.drained,
            "reason": self.reason,
            "calls_per_s": round(self.calls / span, 2) if span > 0 else None,
        }


@dataclass
class EndpointPool:
    """Routing state over ``endpoints``; ``probe(url)`` is a blocking health check (True = serves the model)."""

    endpoints: list[Endpoint]
    probe: Callable[[str], bool] | None = None
    max_failures: int = MAX_FAILURES
    health_interval: float = HEALTH_INTERVAL
    _health_task: asyncio.Task | None = field(default=None, repr=False)
    _revived: asyncio.Event | None = field(default=None, repr=False)

    @classmethod
    def of(cls, urls: list[str], **kwargs: Any) -> EndpointPool:
        return cls([Endpoint(u.rstrip("/")) for u in urls], **kwargs)

    def __len__(self) -> int:
        return len(self.endpoints)

    def healthy(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.healthy]

    def pick(self, avoid: Endpoint | None = None) -> Endpoint | None:
        """The healthy endpoint with the fewest calls in flight (``avoid`` only if it is the only one)."""
        live = self.healthy()
        if avoid is not None and len(live) > 1:
            live = [e for e in live if e is not avoid]
        if not live:
            return None
        return min(live, key=lambda e: (e.in_flight, e.calls))

    def begin(self, ep: Endpoint) -> None:
        ep.in_flight += 1
        now = time.monotonic()
        ep.first_call = ep.first_call or now

    def succeeded(self, ep: Endpoint) -> None:
        ep.in_flight -= 1
        ep.calls += 1
        ep.failures = 0
        ep.last_call = time.monotonic()

    def failed(self, ep: Endpoint, reason: str, *, fatal: bool = False) -> bool:
        """A failure of the endpoint (not of the request); True when it is drained now.

        ``fatal`` (connection refused: nothing listens) drains at once; otherwise after ``max_failures`` in a row.
        A single endpoint is never drained: its calls keep their retries and backoff, as without a pool.
        """
        ep.in_flight -= 1
        ep.failures += 1
        ep.failed_total += 1
        ep.last_call = time.monotonic()
        if len(self.endpoints) > 1 and ep.healthy and (fatal or ep.failures >= self.max_failures):
            self.drain(ep, reason)
            return True
        return False

    def released(self, ep: Endpoint) -> None:
        """A call that ended without telling anything about the endpoint (a 4xx, a cancelled call)."""
        ep.in_flight -= 1

    def drain(self, ep: Endpoint, reason: str) -> None:
        if not ep.healthy:
            return
        ep.healthy, ep.reason = False, reason
        ep.drained += 1
        others = len(self.healthy())
        log.warning("endpoint %s drained (%s); %d other endpoint(s) take its calls", ep.url, reason, others)

    def revive(self, ep: Endpoint) -> None:
        if ep.healthy:
            return
        ep.healthy, ep.failures, ep.reason = True, 0, None
        log.warning("endpoint %s is back", ep.url)
        if self._revived is not None:
            self._revived.set()

    # --- health checks -------------------------------------------------------------------------------------
    def start_health_checks(self) -> None:
        """Probe every endpoint every ``health_interval`` seconds (on the running loop; several endpoints only)."""
        if self.probe is None or len(self.endpoints) < 2 or self._health_task is not None:
            return
        self._revived = asyncio.Event()
        self._health_task = asyncio.get_running_loop().create_task(self._health_loop())

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            await self.check_all()

    async def check_all(self) -> None:
        assert self.probe is not None
        results = await asyncio.gather(
            *(asyncio.to_thread(self.probe, e.url) for e in self.endpoints), return_exceptions=True
        )
        for ep, ok in zip(self.endpoints, results, strict=True):
            if ok is True:
                self.revive(ep)
            else:
                self.drain(
                    ep,
                    f"health check failed: {ok}" if isinstance(ok, BaseException) else "health check failed",
                )

    async def wait_for_one(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for a drained endpoint to come back; True if one is healthy."""
        if self.healthy():
            return True
        if self._revived is None:
            await asyncio.sleep(timeout)
            return bool(self.healthy())
        self._revived.clear()
        try:
            await asyncio.wait_for(self._revived.wait(), timeout)
        except TimeoutError:
            pass
        return bool(self.healthy())

    async def stop(self) -> None:
        task, self._health_task = self._health_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping; nothing to report
                pass

    def stats(self) -> list[dict[str, Any]]:
        return [e.stats() for e in self.endpoints]

    # --- preflight -----------------------------------------------------------------------------------------
    def preflight(self, check: Callable[[str], Any]) -> Any:
        """Ask every endpoint what it serves (``check(url)`` -> ServedModel, raising ``ConfigError``).

        One endpoint that cannot serve ends the run before it starts, as without a pool; of several, those that
        cannot are drained (health checks may bring them back) as long as one can. The endpoints that answer
        must serve the same model (the same ``identity()``: name, checkpoint, context length).
        """
        from concurrent.futures import ThreadPoolExecutor

        def ask(ep: Endpoint) -> ConfigError | None:
            try:
                ep.served = check(ep.url)
            except ConfigError as exc:
                return exc
            return None

        with ThreadPoolExecutor(max_workers=min(16, len(self.endpoints))) as ex:
            errors = list(ex.map(ask, self.endpoints))
        if len(self.endpoints) == 1 and errors[0] is not None:
            raise errors[0]
        live = [e for e in self.endpoints if e.served is not None]
        if not live:
            raise ConfigError("no endpoint can serve this run: " + "; ".join(str(e) for e in errors))
        identities = {repr(sorted(e.served.identity().items())) for e in live}
        if len(identities) > 1:
            shown = "; ".join(f"{e.url} serves {e.served.identity()}" for e in live)
            raise ConfigError(f"the endpoints serve different models ({shown}): give replicas of one model")
        for ep, err in zip(self.endpoints, errors, strict=True):
            if err is not None:
                self.drain(ep, str(err))
        return live[0].served
