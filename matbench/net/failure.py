"""How an attempt failed, in the terms the transport decides on: try again, move to another endpoint, give up."""

from __future__ import annotations

from matbench.net.retry import RETRYABLE_STATUS


class Failure(Exception):
    """One attempt without a usable answer.

    ``retryable``: another try may succeed (429, 5xx, timeouts, network errors, a garbled 200);
    ``fault``: the endpoint failed rather than the request (5xx, timeouts, network, a 200 that is not an
    answer), so the call may move to another replica and the endpoint may be drained; ``refused``: nothing
    listens there (drained at once); ``rate_limited``: a 429 (the limiter slows down, the endpoint stays).
    The message never holds a secret (the code that raises it scrubs what the server echoed)."""

    def __init__(
        self,
        error: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        fault: bool = False,
        refused: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retryable = retryable
        self.fault = fault
        self.refused = refused
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @classmethod
    def of_status(cls, status: int, error: str, retry_after: float | None = None) -> Failure:
        """An HTTP error status: 429/5xx/408/409 are retried; 5xx are the endpoint's fault; other 4xx final."""
        return cls(
            error,
            status=status,
            retryable=status in RETRYABLE_STATUS,
            fault=status >= 500,
            retry_after=retry_after,
        )

    @classmethod
    def bad_answer(cls, error: str, status: int | None = 200) -> Failure:
        """A 2xx that is not what the API answers (not JSON, HTML, fields missing): the replica is broken."""
        return cls(error, status=status, retryable=True, fault=True)


class GaveUp(Exception):
    """A call that failed for good: after its last attempt, or at once for a final failure."""

    def __init__(self, last: Failure, attempts: int, message: str) -> None:
        super().__init__(message)
        self.last = last
        self.attempts = attempts
        self.status = last.status
        self.retryable = last.retryable
