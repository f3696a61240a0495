"""``--search NAME[:ARG]`` -> a backend, named in :data:`matbench.registry.SEARCH`.

Adding a backend is one module plus one line there, or a ``matbench.search`` entry point in a plug-in.
Backends are imported lazily (by ``module:attr``) so that listing them, or parsing a spec, never imports
numpy/bm25s/httpx2. A backend class provides ``from_spec(arg: str | None, **options)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from matbench.errors import ConfigError
from matbench.registry import SEARCH
from matbench.tools.search.base import SearchBackend

#: options a caller may pass whatever the backend; a backend that has no use for one ignores it
#: (``offline=True``: the caller only replays from the cache, so a missing API key is not an error)
GENERIC_OPTIONS = frozenset({"timeout", "retry", "cache_dir", "show_progress", "offline"})

B = TypeVar("B", bound=type[SearchBackend])


def register_search(name: str) -> Callable[[B], B]:
    """Class decorator for backends defined in code (tests, scripts); plug-in packages use the
    ``matbench.search`` entry point instead."""

    def deco(cls: B) -> B:
        cls.name = name
        SEARCH.register(name, cls)
        return cls

    return deco


def available_backends() -> list[str]:
    return SEARCH.names()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"retriever:http://h:8000"`` -> ``("retriever", "http://h:8000")``; ``"serper"`` -> ``("serper", None)``."""
    name, sep, arg = spec.strip().partition(":")
    return name.strip().lower(), (arg if sep and arg else None)


def backend_class(name: str) -> type[SearchBackend]:
    if name not in SEARCH:
        raise ConfigError(
            f"unknown search backend {name!r}; choose one of: {', '.join(available_backends())}"
        )
    return SEARCH.load(name)


def get_search_backend(spec: str, **options: Any) -> SearchBackend:
    """Build the backend named by ``spec`` (``serper``, ``local[:DIR|:CORPUS.jsonl]``, ``retriever[:URL]``).

    ``options`` go to the backend's ``from_spec`` (e.g. ``timeout``, ``retry``, ``cache_dir``); an option the
    backend does not take is a ConfigError rather than silently ignored.
    """
    if not spec or not spec.strip():
        raise ConfigError(f"empty --search spec; choose one of: {', '.join(available_backends())}")
    name, arg = parse_spec(spec)
    cls = backend_class(name)
    factory = cls.from_spec  # type: ignore[attr-defined]
    accepted = _accepted_options(factory, cls)
    unknown = sorted(k for k in options if k not in accepted and k not in GENERIC_OPTIONS)
    if unknown:
        raise ConfigError(f"search backend {name!r} does not take option(s): {', '.join(unknown)}")
    return factory(arg, **{k: v for k, v in options.items() if k in accepted})


def _accepted_options(factory: Callable[..., Any], cls: type) -> set[str]:
    names: set[str] = set()
    forwards = False
    for p in list(inspect.signature(factory).parameters.values())[1:]:  # [0] is the spec argument
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            forwards = True
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
            names.add(p.name)
    if forwards:  # from_spec(arg, **options) -> cls(**options)
        init = list(inspect.signature(cls.__init__).parameters.values())[1:]  # [0] is self
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names |= {p.name for p in init if p.kind in kinds}
    return names
