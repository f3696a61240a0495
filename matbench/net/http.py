"""A small async HTTP client over ``httpx2`` for the transport's own calls (search backends, ``GET /models``,
downloads): redirects followed by hand so that a key never leaves its origin, the body read in full (capped)
inside the caller's deadline, and every failure mapped to a ``Failure``."""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from matbench.net.failure import Failure
from matbench.net.origin import origin_text, same_origin, scrub, secret_values
from matbench.net.retry import parse_retry_after

MAX_BODY = 64 * 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass
class HttpReply:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    url: str

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class HttpClient:
    """Requests to ``base_url`` (and paths under it). ``secret_headers`` (``Authorization``, ``X-API-KEY``) go
    only to ``base_url``'s origin; a redirect elsewhere is followed without them when the client has none, and
    refused when it has some (the key never travels, and the server's redirect is named in the error)."""

    base_url: str
    timeout: float = 30.0
    secret_headers: dict[str, str] = field(default_factory=dict, repr=False)
    max_body: int = MAX_BODY
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import httpx2  # lazy: keeps `matbench --help` fast

        self._httpx = httpx2
        # httpx2's own timeouts are per read; the transport's deadline bounds the whole request
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(self.timeout), follow_redirects=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return secret_values(self.secret_headers)

    def url(self, path: str) -> str:
        """``base_url`` itself for "", a path under it for "/x", else ``path`` as a full URL."""
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + path if path.startswith("/") else path

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """One request (redirects included); raises ``Failure`` for transport problems, never for a status."""
        httpx = self._httpx
        url = self.url(path)
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        for _hop in range(MAX_REDIRECTS + 1):
            send = dict(headers or {})
            if same_origin(self.base_url, url):
                send.update(self.secret_headers)
            try:
                request = self._client.build_request(method, url, content=content, headers=send)
                response = await self._client.send(request, stream=True)
                try:
                    body = await self._read(response)
                finally:
                    await response.aclose()
            except httpx.TimeoutException:
                raise Failure(f"timed out after {self.timeout:g}s", retryable=True, fault=True) from None
            except httpx.TransportError as exc:
                text = scrub(f"{type(exc).__name__}: {exc}", self.secrets)
                raise Failure(
                    f"network error ({text})", retryable=True, fault=True, refused=refused(exc)
                ) from None
            status = response.status_code
            location = response.headers.get("location")
            if status in _REDIRECTS and location:
                target = urljoin(url, location)
                if self.secret_headers and not same_origin(self.base_url, target):
                    raise Failure(
                        f"HTTP {status} redirect to {origin_text(target)} not followed: the API key is sent only "
                        f"to {origin_text(self.base_url)} (point the URL at the server that answers)",
                        status=status,
                    )
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, content = "GET", None
                    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
                url = target
                continue
            return HttpReply(status, response.reason_phrase, response.headers, body, url)
        raise Failure(f"more than {MAX_REDIRECTS} redirects", status=status)

    async def _read(self, response: Any) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise Failure(f"reply larger than {self.max_body >> 20} MiB", status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._client.aclose()


def refused(exc: BaseException) -> bool:
    """Nothing listens at the endpoint (connection refused), by the root cause of a client error."""
    root: BaseException | None = exc
    for _ in range(10):
        if isinstance(root, ConnectionRefusedError) or getattr(root, "errno", None) == errno.ECONNREFUSED:
            return True
        if root is None or (root.__cause__ or root.__context__) is None:
            break
        root = root.__cause__ or root.__context__
    return False


def raise_for_status(reply: HttpReply, secrets: tuple[str, ...] = ()) -> None:
    """A ``Failure`` for a reply that is not 2xx (its body excerpt scrubbed of ``secrets``)."""
    if not 200 <= reply.status < 300:
        text = excerpt(reply.text())
        error = f"HTTP {reply.status} {reply.reason}".rstrip() + (f": {text}" if text else "")
        raise Failure.of_status(reply.status, scrub(error, secrets), parse_retry_after(reply.headers))


def json_of(reply: HttpReply, secrets: tuple[str, ...] = ()) -> Any:
    """The JSON of a 2xx reply; a 2xx that is not JSON is a failure of the server (retried, moved)."""
    raise_for_status(reply, secrets)
    try:
        return reply.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise Failure.bad_answer(
            scrub(f"reply is not JSON ({exc}): {excerpt(reply.text())}", secrets), reply.status
        ) from None


def excerpt(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."
