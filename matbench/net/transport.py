"""The transport: every network call of matbench goes through ``Transport.call``.

One call = pick an endpoint (the least busy healthy replica), take a slot of its rate limiter, run ``send``
under ONE deadline (connect, upload, the whole reply: a server that trickles a byte a second cannot hold it),
then decide: an answer is returned; a failure of the endpoint moves the call to another replica at once (and
enough of them drain it); a retryable failure waits (exponential backoff with jitter, never less than the
server's Retry-After) and tries again, up to ``retry.max_attempts``; anything else gives up at once.

Waiting is visible: each endpoint that starts failing, fails differently or answers again is one WARNING line
("... HTTP 503 on URL: attempt 1/7, next try in 1.0 s"), and every wait is told to the ``listening``
callbacks (the progress bar), so a user never stares at a silent run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from matbench.net.failure import Failure, GaveUp
from matbench.net.limiter import AdaptiveLimiter
from matbench.net.loop import run_sync
from matbench.net.origin import scrub
from matbench.net.pool import Endpoint, EndpointPool
from matbench.net.retry import RetryPolicy

log = logging.getLogger("matbench.net")
T = TypeVar("T")


@dataclass(frozen=True)
class Notice:
    """A wait the user should see: ``kind`` is "retry" (``delay`` s until attempt ``attempt + 1``) or "back"."""

    what: str
    url: str
    kind: str
    error: str = ""
    attempt: int = 0
    max_attempts: int = 0
    delay: float = 0.0

    def text(self) -> str:
        if self.kind == "back":
            return f"{self.what}: {self.url} answers again"
        return (
            f"{self.what}: {self.error} on {self.url}: attempt {self.attempt}/{self.max_attempts}, "
            f"next try in {self.delay:.1f} s"
        )


_listeners: list[Callable[[Notice], None]] = []
_listeners_lock = threading.Lock()


@contextmanager
def listening(callback: Callable[[Notice], None]) -> Iterator[None]:
    """Call ``callback(notice)`` for every wait and recovery while the block runs (from any thread)."""
    with _listeners_lock:
        _listeners.append(callback)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(callback)


def _tell(notice: Notice) -> None:
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        try:
            callback(notice)
        except Exception:  # noqa: BLE001 - a display problem must not fail a call
            log.debug("notice listener failed", exc_info=True)


class Transport:
    """Calls to one service served by ``urls`` (replicas of it).

    ``client_factory(url)`` makes each endpoint's client on the loop that uses it (clients and limiters are
    loop-bound); ``max_concurrency`` gives each endpoint an adaptive limiter (None: no limit); ``probe(url)`` is
    the pool's blocking health check; ``secrets`` are scrubbed from every error it reports."""

    def __init__(
        self,
        urls: list[str],
        *,
        what: str,
        retry: RetryPolicy,
        timeout: float,
        max_concurrency: int | None = None,
        client_factory: Callable[[str], Any] | None = None,
        probe: Callable[[str], bool] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.what = what
        self.retry = retry
        self.timeout = float(timeout)
        self.max_concurrency = max_concurrency
        self.client_factory = client_factory
        self.pool = EndpointPool.of(urls, probe=probe)
        self._secrets = secrets
        self._loop: asyncio.AbstractEventLoop | None = None
        for ep in self.pool.endpoints:
            ep.limiter = AdaptiveLimiter(max_concurrency) if max_concurrency else None

    def __repr__(self) -> str:  # never the secrets
        return f"Transport({self.what!r}, {[e.url for e in self.pool.endpoints]!r}, timeout={self.timeout:g})"

    def start(self) -> None:
        """Clients and limiters for the running loop (again when a new loop runs the next task)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        for ep in self.pool.endpoints:
            ep.client = self.client_factory(ep.url) if self.client_factory is not None else None
            ep.limiter = AdaptiveLimiter(self.max_concurrency) if self.max_concurrency else None
        self._loop = loop
        self.pool.start_health_checks()

    async def call(self, send: Callable[[Endpoint], Awaitable[T]], *, tag: str = "") -> tuple[T, int]:
        """``send(endpoint)``'s answer and the number of retries it took; ``send`` raises ``Failure`` for an
        attempt without a usable answer. Raises ``GaveUp`` when the call fails for good."""
        self.start()
        pool, policy = self.pool, self.retry
        attempt = moves = 0  # attempt: retries so far
        avoid: Endpoint | None = None
        while True:
            ep = pool.pick(avoid)
            if ep is None:  # every endpoint drained: wait for a health check to bring one back
                if attempt + 1 >= policy.max_attempts:
                    error = "no endpoint left: " + "; ".join(f"{e.url}: {e.reason}" for e in pool.endpoints)
                    raise GaveUp(Failure(error, retryable=True), attempt + 1, error)
                attempt += 1
                await pool.wait_for_one(policy.delay(attempt))
                continue
            limiter = ep.limiter
            pool.begin(ep)
            try:
                if limiter is not None:
                    await limiter.acquire()
            except BaseException:
                pool.released(ep)
                raise
            try:
                try:
                    async with asyncio.timeout(self.timeout):
                        result = await send(ep)
                except TimeoutError:
                    raise Failure(f"timed out after {self.timeout:g}s", retryable=True, fault=True) from None
            except Failure as exc:
                failure = exc
            except BaseException:
                pool.released(ep)
                raise
            else:
                if limiter is not None:
                    limiter.on_success()
                pool.succeeded(ep)
                if ep.trouble is not None:
                    ep.trouble = None
                    self._notify(Notice(self.what, ep.url, "back"))
                return result, attempt
            finally:
                if limiter is not None:
                    limiter.release()
            error = failure.error = scrub(failure.error, self._secrets)  # nothing below sees a secret
            if failure.rate_limited and limiter is not None:
                limiter.on_rate_limit(
                    failure.retry_after if failure.retry_after is not None else policy.delay(attempt + 1)
                )
            if failure.fault:
                pool.failed(ep, error, fatal=failure.refused)
            else:
                pool.released(ep)
            if failure.fault and moves < 2 * len(pool) and pool.pick(avoid=ep) not in (None, ep):
                # the endpoint failed, not the request: send it to another endpoint at once
                ep.moved += 1
                moves += 1
                avoid = ep
                log.info("%s %s: %s on %s; moved to another endpoint", self.what, tag or "-", error, ep.url)
                continue
            if failure.status is None and not policy.network:
                failure.retryable = False
            if not failure.retryable or attempt + 1 >= policy.max_attempts:
                raise GaveUp(
                    failure,
                    attempt + 1,
                    f"{error} (gave up after {attempt + 1} attempts)" if failure.retryable else error,
                )
            attempt += 1
            delay = policy.delay(attempt, failure.retry_after)
            log.info(
                "%s %s: %s; retry %d/%d in %.2f s", self.what, tag or "-", error, attempt,
                policy.max_attempts - 1, delay,
            )  # fmt: skip
            notice = Notice(self.what, ep.url, "retry", error, attempt, policy.max_attempts, delay)
            kind = str(failure.status) if failure.status is not None else error.split(" (")[0]
            if ep.trouble != kind:  # one line per endpoint change, not per call
                ep.trouble = kind
                log.warning("%s", notice.text())
            _tell(notice)
            await asyncio.sleep(delay)

    def _notify(self, notice: Notice) -> None:
        log.warning("%s", notice.text())
        _tell(notice)

    def call_sync(self, send: Callable[[Endpoint], Awaitable[T]], *, tag: str = "") -> tuple[T, int]:
        """``call`` from blocking code (a search thread, the preflight): on the transport's background loop."""
        return run_sync(self.call(send, tag=tag))

    async def aclose(self) -> None:
        await self.pool.stop()
        loop, self._loop = self._loop, None
        for ep in self.pool.endpoints:
            client, ep.client = ep.client, None
            if client is None or loop is not asyncio.get_running_loop():
                continue
            closer = getattr(client, "aclose", None) or getattr(client, "close", None)
            if closer is not None:
                await closer()

    def close_sync(self) -> None:
        if self._loop is not None:
            run_sync(self.aclose())

    def stats(self) -> list[dict[str, Any]]:
        return self.pool.stats()
