"""When to try again: exponential backoff with jitter, a server's Retry-After honoured up to a cap."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

#: statuses worth another try (the server is busy, overloaded or restarting), not failures of the request
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all; the wait after failed attempt ``n`` (1-based) is
    ``base_delay * multiplier**(n-1)`` capped at ``max_delay``, with "equal jitter" (half fixed, half random,
    so that clients spread out but keep a floor), and never shorter than the server's Retry-After (which is
    honoured up to ``max_retry_after`` seconds: a hostile server cannot park a run for an hour)."""

    max_attempts: int = 4
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    max_retry_after: float = 60.0
    #: also retry timeouts and network errors (a preflight asks once: nothing listening is an answer)
    network: bool = True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        base = min(self.max_delay, self.base_delay * self.multiplier ** max(0, attempt - 1))
        wait = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), self.max_retry_after))
        return wait


def parse_retry_after(headers: Mapping[str, str] | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), or None.
    ``headers`` may be a header mapping (case-insensitive ones included) or the Retry-After value itself."""
    if not headers:
        return None
    if isinstance(headers, str):
        raw_ms, raw = None, headers
    else:
        raw_ms, raw = headers.get("retry-after-ms"), headers.get("retry-after")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
