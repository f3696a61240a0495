"""Model specs -> backends: aliases from the model table, backends from ``matbench.registry.MODELS``.

Adding a backend = one file with a :class:`~matbench.models.base.Model` subclass and one ``MODELS`` entry
(or a ``matbench.models`` entry point); the module is imported only when that backend is asked for, so
listing aliases or parsing the CLI never imports openai or vllm. Aliases are the model table's rows
(``matbench/data/models.yaml``): a row names its backend and, for hosted APIs, its provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import Model
from matbench.models.capabilities import ModelInfo, table
from matbench.registry import MODELS


def register_model(backend: str) -> Callable[[type[Model]], type[Model]]:
    """Class decorator: make ``backend:NAME`` specs resolve to this adapter (code-registered backends)."""

    def deco(cls: type[Model]) -> type[Model]:
        cls.backend = backend  # type: ignore[attr-defined]
        if backend not in MODELS or MODELS.origin(backend) == "code":
            MODELS.register(backend, cls)
        return cls

    return deco


def backend_class(backend: str) -> type[Model]:
    """The adapter class for a backend name, importing its module on first use."""
    if backend not in MODELS:
        raise ConfigError(f"unknown model backend {backend!r}; known: {', '.join(MODELS.names())}")
    cls = MODELS.load(backend)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ConfigError(f"model backend {backend!r} ({MODELS.target(backend)}) is not a Model class")
    cls.backend = backend  # type: ignore[attr-defined]
    return cls


@dataclass(frozen=True)
class ModelAlias:
    name: str
    backend: str  # "openai" or "vllm"
    model_id: str  # OpenAI model name or Hugging Face hub id
    notes: str = ""
    info: ModelInfo | None = None


def alias_notes(row: ModelInfo) -> str:
    """What a row needs to run (a GPU, a key variable), plus its own notes."""
    if row.backend == "vllm":
        extra = "needs GPU or --base-url"
    elif row.provider:
        extra = f"needs {table().providers[row.provider].api_key_env}"
    else:
        extra = "needs --base-url"
    return "; ".join(x for x in (extra, row.notes) if x)


def model_aliases() -> dict[str, ModelAlias]:
    """Every alias of the model table, in table order."""
    return {
        row.alias: ModelAlias(row.alias, row.backend, row.id, alias_notes(row), row)
        for row in table().rows.values()
        if row.alias
    }


def __getattr__(name: str) -> Any:  # MODEL_ALIASES reads the table when first asked for
    if name == "MODEL_ALIASES":
        return model_aliases()
    raise AttributeError(name)


@dataclass(frozen=True)
class ModelSpec:
    """A resolved spec: which adapter runs which model, and under what display name."""

    backend: str
    model_id: str
    display: str  # the alias or the spec as typed, for messages
    requested_backend: str  # what the alias/spec asked for before base_url routing
    provider: str | None = None  # the table's provider for an alias used without --base-url


def resolve_spec(spec: str, base_url: str | None = None) -> ModelSpec:
    """Alias or ``backend:NAME`` -> adapter. A vllm model WITH a base_url is served by the openai
    adapter against that server (``vllm serve`` speaks the OpenAI protocol), the hub id as model name."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty model spec: use an alias (see `matbench models`) or BACKEND:NAME")
    row = table().alias(spec)
    provider = None
    if row is not None:
        backend, model_id, display, provider = row.backend, row.id, row.alias or row.id, row.provider
    else:
        head, sep, rest = spec.partition(":")
        if not sep or head.lower() not in MODELS or not rest:
            raise ConfigError(
                f"unknown model {spec!r}: use an alias (see `matbench models`) or "
                f"BACKEND:NAME with BACKEND one of {', '.join(MODELS.names())}"
            )
        backend, model_id, display = head.lower(), rest, spec
        found = table().find(model_id)
        provider = found.provider if found is not None else None
    requested = backend
    if backend == "vllm" and base_url:
        backend = "openai"
    return ModelSpec(backend=backend, model_id=model_id, display=display, requested_backend=requested,
                     provider=None if base_url else provider)


def get_model(spec: str, **options: Any) -> Model:
    """Build the adapter for ``spec`` (alias, ``openai:NAME`` or ``vllm:PATH_OR_HUB_ID``).

    Options left at None are dropped; options that belong to another backend (e.g.
    ``tensor_parallel_size`` when the model is served over HTTP) are ignored; unknown ones are an error.
    """
    options = {k: v for k, v in options.items() if v is not None}
    resolved = resolve_spec(spec, options.get("base_url"))
    cls = backend_class(resolved.backend)
    accepted: frozenset[str] = getattr(cls, "OPTIONS", frozenset())
    known: set[str] = set(accepted)
    for name in MODELS.names():
        if set(options) <= known:
            break
        try:
            known |= getattr(backend_class(name), "OPTIONS", frozenset())
        except ConfigError:
            continue  # a broken plug-in must not make a built-in backend's options unknown
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown model option(s) {', '.join(unknown)} for {resolved.display}")
    kwargs = {k: v for k, v in options.items() if k in accepted}
    if resolved.provider:  # an alias of a hosted model: its provider's endpoint and key variable
        kwargs["provider"] = resolved.provider
    return cls(
        resolved.model_id,
        display_name=resolved.display,
        requested_backend=resolved.requested_backend,
        **kwargs,
    )  # type: ignore[call-arg]
