"""What an OpenAI-compatible endpoint serves: ``GET {base_url}/models``, asked once before a run starts.

A dead server, a rejected key or a model name the server does not know should end the command in one
line before any sample runs (and before a run directory exists), not as N per-sample errors. The served
entry (id, and vLLM's ``root``: the checkpoint behind the name) also keys the response cache, so that
answers from one server are never replayed for another.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from matbench.errors import ConfigError

DEFAULT_TIMEOUT = 30.0
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class EndpointError(ConfigError):
    """The endpoint cannot serve this run (unreachable, key refused, model not served)."""


@dataclass(frozen=True)
class ServedModel:
    """One entry of ``/models``: ``id`` is the name to send; ``root`` (vLLM) the checkpoint it serves."""

    id: str
    root: str | None = None
    owned_by: str | None = None
    max_model_len: int | None = None

    def identity(self) -> dict[str, Any]:
        """What distinguishes this model from another of the same name on another server."""
        return {"id": self.id, "root": self.root, "max_model_len": self.max_model_len}


def _url(base_url: str) -> str:
    return base_url.rstrip("/") + "/models"


def _get(url: str, api_key: str | None, timeout: float) -> Any:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, headers=headers, method="GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _reason(exc: BaseException) -> str:
    root = getattr(exc, "reason", exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(root, socket.gaierror):
        return f"unknown host ({root.strerror or root})"
    return str(root) or type(root).__name__


def served_models(
    base_url: str,
    api_key: str | None = None,
    *,
    key_hint: str = "OPENAI_API_KEY",
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = 3,
) -> list[ServedModel]:
    """The models an endpoint serves, in its order. Raises ``EndpointError`` (one line) when it cannot
    be asked: refused/unreachable, 401/403, not an OpenAI-compatible ``/models`` answer. 429/5xx are
    retried a few times (a server that is still starting)."""
    url = _url(base_url)
    data: Any = None
    for attempt in range(max(1, attempts)):
        try:
            data = _get(url, api_key, timeout)
            break
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise EndpointError(
                    f"{base_url} refused the API key (HTTP {exc.code} on GET /models): "
                    f"set {key_hint} to a key this server accepts (or --api-key-env NAME)"
                ) from None
            if exc.code in _RETRY_STATUS and attempt + 1 < attempts:
                time.sleep(0.5 * 2**attempt)
                continue
            raise EndpointError(
                f"{base_url} answered HTTP {exc.code} on GET /models: is --base-url the /v1 root of an "
                "OpenAI-compatible server?"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointError(
                f"cannot reach {base_url} (GET /models: {_reason(exc)}): is the server running? check --base-url"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EndpointError(
                f"{base_url}: GET /models did not answer JSON: is --base-url the /v1 root of an "
                "OpenAI-compatible server?"
            ) from None
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise EndpointError(
            f"{base_url}: GET /models answered without a 'data' list: not an OpenAI-compatible server?"
        )
    out = []
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            mml = row.get("max_model_len")
            out.append(
                ServedModel(
                    id=row["id"],
                    root=row.get("root") if isinstance(row.get("root"), str) else None,
                    owned_by=row.get("owned_by") if isinstance(row.get("owned_by"), str) else None,
                    max_model_len=mml if isinstance(mml, int) else None,
                )
            )
    return out


def served_model_ids(base_url: str, api_key: str | None = None, **kwargs: Any) -> list[str]:
    """Just the names an endpoint serves (for routing several endpoints)."""
    return [m.id for m in served_models(base_url, api_key, **kwargs)]


def check_served_model(
    base_url: str,
    model_id: str,
    api_key: str | None = None,
    *,
    key_hint: str = "OPENAI_API_KEY",
    timeout: float = DEFAULT_TIMEOUT,
) -> ServedModel:
    """The served entry for ``model_id``, or ``EndpointError`` naming what the server does serve."""
    models = served_models(base_url, api_key, key_hint=key_hint, timeout=timeout)
    for m in models:
        if m.id == model_id:
            return m
    if not models:
        raise EndpointError(f"{base_url} serves no model (GET /models is empty)")
    names = [m.id for m in models]
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    raise EndpointError(
        f"{base_url} does not serve model {model_id!r}; it serves: {shown} "
        f"(pick one with --model openai:{names[0]})"
    )
