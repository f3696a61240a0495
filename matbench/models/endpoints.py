"""What an OpenAI-compatible endpoint serves: ``GET {base_url}/models``, asked once before a run starts.

A dead server, a rejected key or a model name the server does not know should end the command in one
line before any sample runs (and before a run directory exists), not as N per-sample errors. The served
entry (id, and vLLM's ``root``: the checkpoint behind the name) also keys the response cache, so that
answers from one server are never replayed for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matbench.errors import ConfigError
from matbench.net.retry import RetryPolicy
from matbench.net.service import GaveUp, JsonService

DEFAULT_TIMEOUT = 30.0


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


def _reason(exc: GaveUp) -> str:
    text = exc.last.error
    if exc.last.refused:
        return "connection refused"
    if text.startswith("timed out"):
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text


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
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    service = JsonService(
        _url(base_url),
        what="GET /models",
        timeout=timeout,
        retry=RetryPolicy(
            max_attempts=max(1, attempts), base_delay=0.5, max_delay=4.0, max_retry_after=10.0, network=False
        ),
        secret_headers=headers,  # to this server's origin only, never along a redirect elsewhere
    )
    try:
        data = service.request("GET", headers={"Accept": "application/json"})
    except GaveUp as exc:
        if exc.status in (401, 403):
            raise EndpointError(
                f"{base_url} refused the API key (HTTP {exc.status} on GET /models): "
                f"set {key_hint} to a key this server accepts (or --api-key-env NAME)"
            ) from None
        if exc.status is not None and 300 <= exc.status < 400:
            raise EndpointError(f"{base_url}: GET /models: {exc.last.error}") from None
        if exc.status is not None and exc.status != 200:
            raise EndpointError(
                f"{base_url} answered HTTP {exc.status} on GET /models: is --base-url the /v1 root of an "
                "OpenAI-compatible server?"
            ) from None
        if exc.status == 200:
            raise EndpointError(
                f"{base_url}: GET /models did not answer JSON: is --base-url the /v1 root of an "
                "OpenAI-compatible server?"
            ) from None
        raise EndpointError(
            f"cannot reach {base_url} (GET /models: {_reason(exc)}): is the server running? check --base-url"
        ) from None
    finally:
        service.close()
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
