"""Backend registry and model aliases (lm-eval ``Registry`` / inspect_ai ``@modelapi`` style).

Adding a backend = one file with ``@register_model("name")`` on its class + one line in
``BACKEND_MODULES``; the module is imported only when that backend is asked for, so listing
aliases or parsing the CLI never imports openai or vllm.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import Model

BACKEND_MODULES: dict[str, str] = {
    "openai": "matbench.models.openai_api",
    "vllm": "matbench.models.vllm_local",
    "scripted": "matbench.models.scripted",
}

_REGISTRY: dict[str, type[Model]] = {}


def register_model(backend: str) -> Callable[[type[Model]], type[Model]]:
    """Class decorator: make ``backend:NAME`` specs resolve to this adapter."""

    def deco(cls: type[Model]) -> type[Model]:
        existing = _REGISTRY.get(backend)
        if existing is not None and existing is not cls:
            raise ValueError(f"backend {backend!r} already registered by {existing.__qualname__}")
        _REGISTRY[backend] = cls
        cls.backend = backend  # type: ignore[attr-defined]
        return cls

    return deco


def backend_class(backend: str) -> type[Model]:
    """The adapter class for a backend name, importing its module on first use."""
    if backend not in _REGISTRY:
        module = BACKEND_MODULES.get(backend)
        if module is None:
            raise ConfigError(
                f"unknown model backend {backend!r}; known: {', '.join(sorted(BACKEND_MODULES))}"
            )
        importlib.import_module(module)
        if backend not in _REGISTRY:
            raise ConfigError(f"module {module} did not register backend {backend!r}")
    return _REGISTRY[backend]


@dataclass(frozen=True)
class ModelAlias:
    name: str
    backend: str  # "openai" or "vllm"
    model_id: str  # OpenAI model name or Hugging Face hub id
    notes: str = ""


def _alias_table() -> dict[str, ModelAlias]:
    gpu = "needs GPU or --base-url"
    key = "needs OPENAI_API_KEY"
    rows = [
        ModelAlias("qwen2.5-vl-3b", "vllm", "Qwen/Qwen2.5-VL-3B-Instruct", gpu),
        ModelAlias("qwen2.5-vl-7b", "vllm", "Qwen/Qwen2.5-VL-7B-Instruct", gpu),
        ModelAlias("qwen2.5-vl-32b", "vllm", "Qwen/Qwen2.5-VL-32B-Instruct", gpu),
        ModelAlias("qwen2.5-vl-72b", "vllm", "Qwen/Qwen2.5-VL-72B-Instruct", gpu + "; tensor parallel"),
        ModelAlias("visual-arft-search-7b", "vllm", "laolao77/Visual-ARFT-Search", gpu),
        ModelAlias("visual-arft-coding-7b", "vllm", "laolao77/Visual-ARFT-Coding", gpu),
        ModelAlias("gpt-4o", "openai", "gpt-4o", key),
        ModelAlias("gpt-4.1", "openai", "gpt-4.1", key),
        ModelAlias("o3", "openai", "o3", key + "; reasoning model"),
        ModelAlias("o4-mini", "openai", "o4-mini", key + "; reasoning model"),
    ]
    return {a.name: a for a in rows}


MODEL_ALIASES: dict[str, ModelAlias] = _alias_table()


@dataclass(frozen=True)
class ModelSpec:
    """A resolved spec: which adapter runs which model, and under what display name."""

    backend: str
    model_id: str
    display: str  # the alias or the spec as typed, for messages
    requested_backend: str  # what the alias/spec asked for before base_url routing


def resolve_spec(spec: str, base_url: str | None = None) -> ModelSpec:
    """Alias or ``backend:NAME`` -> adapter. A vllm model WITH a base_url is served by the openai
    adapter against that server (``vllm serve`` speaks the OpenAI protocol), the hub id as model name."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty model spec: use an alias (see `matbench models`) or BACKEND:NAME")
    alias = MODEL_ALIASES.get(spec.lower())
    if alias is not None:
        backend, model_id, display = alias.backend, alias.model_id, alias.name
    else:
        head, sep, rest = spec.partition(":")
        if not sep or head.lower() not in BACKEND_MODULES or not rest:
            raise ConfigError(
                f"unknown model {spec!r}: use an alias (see `matbench models`) or "
                f"BACKEND:NAME with BACKEND one of {', '.join(sorted(BACKEND_MODULES))}"
            )
        backend, model_id, display = head.lower(), rest, spec
    requested = backend
    if backend == "vllm" and base_url:
        backend = "openai"
    return ModelSpec(backend=backend, model_id=model_id, display=display, requested_backend=requested)


def get_model(spec: str, **options: Any) -> Model:
    """Build the adapter for ``spec`` (alias, ``openai:NAME`` or ``vllm:PATH_OR_HUB_ID``).

    Options left at None are dropped; options that belong to another backend (e.g.
    ``tensor_parallel_size`` when the model is served over HTTP) are ignored; unknown ones are an error.
    """
    options = {k: v for k, v in options.items() if v is not None}
    resolved = resolve_spec(spec, options.get("base_url"))
    cls = backend_class(resolved.backend)
    accepted: frozenset[str] = getattr(cls, "OPTIONS", frozenset())
    known: set[str] = set()
    for name in BACKEND_MODULES:
        known |= getattr(backend_class(name), "OPTIONS", frozenset())
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown model option(s) {', '.join(unknown)} for {resolved.display}")
    kwargs = {k: v for k, v in options.items() if k in accepted}
    return cls(
        resolved.model_id,
        display_name=resolved.display,
        requested_backend=resolved.requested_backend,
        **kwargs,
    )  # type: ignore[call-arg]
