"""A JSON-over-HTTP service called from blocking code (search backends, ``GET /models``): one request =
one ``Transport.call`` (deadline, retries with Retry-After, key pinned to the service's origin), its reply
decoded as JSON. A 2xx that is not JSON is a failure of the server, retried like a 5xx."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matbench.net.failure import Failure, GaveUp
from matbench.net.http import HttpClient, HttpReply, json_of, raise_for_status
from matbench.net.origin import secret_values
from matbench.net.pool import Endpoint
from matbench.net.retry import RetryPolicy
from matbench.net.transport import Transport

__all__ = ["Failure", "GaveUp", "JsonService"]


class JsonService:
    """Requests to ``url`` from any thread; ``secret_headers`` go to its origin only and never into a message."""

    def __init__(
        self,
        url: str,
        *,
        what: str,
        timeout: float,
        retry: RetryPolicy,
        secret_headers: Mapping[str, str] | None = None,
        max_body: int | None = None,
    ) -> None:
        self.url = url
        self.what = what
        headers = dict(secret_headers or {})
        extra = {"max_body": max_body} if max_body else {}
        self.secrets = secret_values(headers)
        self.transport = Transport(
            [url],
            what=what,
            retry=retry,
            timeout=timeout,
            client_factory=lambda u: HttpClient(u, timeout, headers, **extra),
            secrets=self.secrets,
        )

    def __repr__(self) -> str:  # never the secrets
        return f"JsonService({self.what!r}, {self.url!r})"

    def request(
        self, method: str = "POST", body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """The decoded JSON reply; raises ``GaveUp`` (its message scrubbed) when the call fails for good."""

        async def send(ep: Endpoint) -> Any:
            return self.decode(await ep.client.request(method, "", json_body=body, headers=headers))

        return self.transport.call_sync(send)[0]

    def fetch(self, method: str = "GET", headers: Mapping[str, str] | None = None) -> HttpReply:
        """The raw 2xx reply (a download); non-2xx statuses fail as ``GaveUp``."""

        async def send(ep: Endpoint) -> HttpReply:
            reply = await ep.client.request(method, "", headers=headers)
            self.check(reply)
            return reply

        return self.transport.call_sync(send)[0]

    def check(self, reply: HttpReply) -> None:
        raise_for_status(reply, self.secrets)

    def decode(self, reply: HttpReply) -> Any:
        return json_of(reply, self.secrets)

    def close(self) -> None:
        self.transport.close_sync()
