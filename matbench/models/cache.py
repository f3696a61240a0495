"""A persistent response cache in front of any Model, for deterministic decoding only.

Re-running an evaluation (a crash, a new metric, a changed tool) should not pay for the same
completions twice. Only requests whose answer is a function of the input are cached: temperature 0,
or a fixed seed (or, when the request leaves temperature unset, a backend whose effective default
temperature is 0). Errors are never stored, so a retry later can still succeed.

The key is what produced the answer: the model's ``identity()`` (its backend owns it: for a server of your
own, the checkpoint ``GET /models`` reports; for a hosted API, the provider and model id; the one list of
config fields that do not change answers lives in models/base.py), and every field of the request (images
by content). A model without an identity (a server that reports no checkpoint: a restart on the same port
could serve another model under the same name) is never answered from the cache. A row that does not read
back as an answer is dropped and recomputed, never replayed or failed on.

Reuse across runs is opt-in (``eval --response-cache``): by default the runner sets :data:`CACHE_SCOPE` to
the run's own identity while its episodes run, so a resumed or interrupted run replays its own calls but a
new run never silently replays an earlier one.

SQLite in WAL mode (:mod:`matbench.caches.db`: one connection per process, batched writes off the event loop):
several processes (parallel runs) can share one cache file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import time
from contextvars import ContextVar
from dataclasses import asdict
from pathlib import Path
from typing import Any

from matbench.caches.db import CacheDB
from matbench.models.base import ChatRequest, Model, ModelOutput, split_config
from matbench.models.images import image_digest

log = logging.getLogger("matbench.models.cache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    output TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def is_deterministic(model: Model | dict[str, Any], request: ChatRequest) -> bool:
    """True when the same request must give the same answer: temperature 0 or a fixed seed."""
    if request.seed is not None:
        return True
    temperature = request.temperature
    if temperature is None:
        cfg = model if isinstance(model, dict) else model.config()
        temperature = cfg.get("default_temperature")
    return temperature is not None and float(temperature) == 0.0


def semantic_config(config: dict[str, Any]) -> dict[str, Any]:
    return split_config(config)[0]


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(ChatRequest) if f.name != "tag")


def request_fields(request: ChatRequest) -> dict[str, Any]:
    """Every field of the request except the log tag; images by content digest, not path."""
    fields = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    fields["images"] = [image_digest(p) for p in request.images]
    if request.messages is not None:  # the native tool protocol: its conversation, images by content too
        fields["messages"] = [
            {**asdict(m), "images": [image_digest(p) for p in m.images]} for m in request.messages
        ]
    fields["tools"] = [asdict(t) for t in request.tools] if request.tools else []
    return fields


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def config_prefix(config: dict[str, Any]) -> bytes:
    """The start of every key's payload for one model config; computed once per model, not per call."""
    return ('{"config":' + _dumps(semantic_config(config)) + ',"request":').encode("utf-8")


#: Whose answers a lookup may replay: "" shares them across runs (``--response-cache``, the judge); the
#: runner sets a run's identity while that run's episodes call the model (asyncio tasks inherit it).
CACHE_SCOPE: ContextVar[str] = ContextVar("matbench_cache_scope", default="")


def cache_key(config: dict[str, Any], request: ChatRequest, prefix: bytes | None = None) -> str:
    """sha256 over what determines the answer: endpoint, served model, decoding config, the request.

    The payload is ``{"config": ..., "request": ...}`` as sorted compact JSON; ``prefix`` (from
    :func:`config_prefix`) saves re-encoding the config on every call and gives the same bytes.
    """
    return _key_hash(config, request, prefix).hexdigest()


def _key_hash(config: dict[str, Any], request: ChatRequest, prefix: bytes | None) -> Any:
    h = hashlib.sha256(prefix if prefix is not None else config_prefix(config))
    h.update(_dumps(request_fields(request)).encode("utf-8"))
    h.update(b"}")
    return h


def scoped_keys(config: dict[str, Any], request: ChatRequest, prefix: bytes | None, scope: str) -> tuple[str, str]:
    """(the shared key, the key a scoped lookup uses): the same key when ``scope`` is empty."""
    h = _key_hash(config, request, prefix)
    shared = h.hexdigest()
    if not scope:
        return shared, shared
    h.update(b"\0scope:" + scope.encode("utf-8"))
    return shared, h.hexdigest()


class CachedModel(Model):
    """Wraps ``model``; deterministic requests are answered from ``path`` when seen before."""

    def __init__(self, model: Model, path: str | Path) -> None:
        self.model = model
        self.path = Path(path)
        self.name = model.name
        self.lockstep = model.lockstep
        self.max_concurrency = model.max_concurrency
        self.native_tool_calls = model.native_tool_calls
        self.runtime_keys = model.runtime_keys
        self._config = model.config()
        self._identity = model.identity()
        self._prefix = config_prefix(self._identity) if self._identity is not None else None
        # one connection per process and file; stores are committed in batches by a background thread
        self._db: CacheDB | None = CacheDB.open(self.path, _SCHEMA)
        self.hits = 0
        self.misses = 0
        self.bypassed = 0
        self.corrupt = 0  # rows that did not read back as an answer: dropped, recomputed

    def _get(self, key: str) -> ModelOutput | None:
        assert self._db is not None, "the response cache is closed"
        try:
            row = self._db.get("responses", key, "output")
        except sqlite3.Error as exc:  # a damaged page: answer from the model, never fail the sample
            log.warning("response cache %s: unreadable row (%s); asking the model", self.path, exc)
            self.corrupt += 1
            return None
        if row is None:
            return None
        raw = row[0]
        ref = _ref_of(raw)
        if ref is not None:  # a run's own entry points at the shared row holding the answer
            try:
                row = self._db.get("responses", ref, "output")
            except sqlite3.Error:
                row = None
            if row is None:
                return None
            raw = row[0]
        out = _read_output(raw)
        if out is None:
            log.warning("response cache %s: a corrupt row was dropped and its answer recomputed", self.path)
            self.corrupt += 1
            return None  # the fresh answer replaces the row (_put replaces)
        out.cached = True
        out.latency = 0.0
        out.retries = 0
        return out

    def _put(self, key: str, output: ModelOutput) -> None:
        # the fields as ModelOutput.to_dict gives them, without dataclasses.asdict's deep copy (a fifth of a
        # cold cache's cost per call): only the tool calls are dataclasses, the rest is JSON already
        record = {name: getattr(output, name) for name in output.__dataclass_fields__ if name != "cached"}
        record["tool_calls"] = [dataclasses.asdict(c) for c in output.tool_calls]
        row = {"key": key, "model": self.name, "output": json.dumps(record), "created": time.time()}
        assert self._db is not None, "the response cache is closed"
        self._db.put("responses", key, row, replace=True)

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        results: list[ModelOutput | None] = [None] * len(requests)
        keys: list[str | None] = [None] * len(requests)
        refs: list[str | None] = [None] * len(requests)  # the shared keys, where answers are stored
        pending: list[int] = []
        for i, request in enumerate(requests):
            if self._identity is None or not is_deterministic(self._config, request):
                self.bypassed += 1
                pending.append(i)
                continue
            try:
                shared, key = scoped_keys(self._identity, request, self._prefix, CACHE_SCOPE.get())
            except OSError:  # unreadable image: let the backend report it as the sample's error
                pending.append(i)
                continue
            keys[i] = key
            refs[i] = shared
            hit = self._get(key)
            if hit is not None:
                self.hits += 1
                results[i] = hit
            else:
                self.misses += 1
                pending.append(i)
        if pending:  # one call for all misses keeps lockstep backends batched
            fresh = await self.model.generate([requests[i] for i in pending])
            for i, out in zip(pending, fresh, strict=True):
                results[i] = out
                key, shared = keys[i], refs[i]
                if key is not None and shared is not None and out.error is None and out.text is not None:
                    self._put(shared, out)  # every answer is reusable by --response-cache runs
                    if key != shared:  # and this run's own entry refers to it
                        assert self._db is not None, "the response cache is closed"
                        row = {"key": key, "model": self.name, "output": json.dumps({"ref": shared}),
                               "created": time.time()}
                        self._db.put("responses", key, row, replace=True)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def preflight(self) -> None:
        self.model.preflight()
        self._config = self.model.config()  # the served model is part of every key from now on
        self._identity = self.model.identity()
        self._prefix = config_prefix(self._identity) if self._identity is not None else None


    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def decoding_defaults(self) -> dict[str, Any]:
        return self.model.decoding_defaults()

    def decoding_record(self, request: ChatRequest) -> dict[str, Any]:
        return self.model.decoding_record(request)

    def stats(self) -> dict[str, int]:
        stats = {"hits": self.hits, "misses": self.misses, "bypassed": self.bypassed}
        if self.corrupt:
            stats["corrupt"] = self.corrupt
        if self._identity is None:
            stats["no_identity"] = True
        return stats

    def notice(self) -> str | None:
        notes = [self.model.notice()]
        if self._identity is None:
            notes.append(
                f"{self.model.name}: the server reports no checkpoint identity (no `root` in GET /models), so its "
                "answers are neither stored in nor replayed from the response cache"
            )
        return "; ".join(n for n in notes if n) or None

    def identity(self) -> dict[str, Any] | None:
        return self._identity

    async def aclose(self) -> None:
        try:
            await self.model.aclose()
        finally:
            db, self._db = self._db, None
            if db is not None:
                db.close()


def _ref_of(raw: Any) -> str | None:
    """The shared key a run's own row refers to (``{"ref": KEY}``), else None."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if isinstance(data, dict) and set(data) == {"ref"} and isinstance(data["ref"], str):
        return data["ref"]
    return None


def _read_output(raw: Any) -> ModelOutput | None:
    """A stored row back as an answer, or None when it is not one (torn, edited, another schema)."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or data.get("error") is not None:
            return None
        out = ModelOutput.from_dict(data)
        for name in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"):
            value = getattr(out, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return None
        if not all(isinstance(c.arguments, str) and isinstance(c.name, str) for c in out.tool_calls):
            return None
        return out
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
