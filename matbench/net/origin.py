"""API keys stay at their origin: a key goes only to the scheme, host and port it was configured for (an
https upgrade of the same host included), never along a redirect elsewhere, and never into a message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

_DEFAULT_PORT = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``; the port made explicit, the host lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORT.get(scheme, 0)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def same_origin(pinned: str, url: str) -> bool:
    """True when ``url`` may receive a key pinned to ``pinned``: the same origin, or the same host over https
    where the key was configured for plain http on its default port (an upgrade, never a downgrade)."""
    a, b = origin(pinned), origin(url)
    if a == b:
        return True
    return a[0] == "http" and b[0] == "https" and a[1] == b[1] and a[2] == 80 and b[2] == 443


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 4 characters or more) replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def secret_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets inside header values (a bearer token both with and without its ``Bearer `` prefix)."""
    values: list[str] = []
    for value in headers.values():
        values.append(value)
        if value.lower().startswith("bearer "):
            values.append(value[7:])
    return tuple(values)
