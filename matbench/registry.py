"""One registry idiom for every kind of plug-in: lazy ``module:attr`` entries, open to entry points.

Each kind (models, tools, scorers, search, tasks, loaders, commands) is a :class:`Registry` holding
``name -> "package.module:attr"`` strings; nothing is imported until a name is asked for, so listing
choices for the command line never imports openai, vllm or bm25s. Third parties add entries through the
entry-point group ``matbench.<kind>`` (``[project.entry-points."matbench.tools"] zoom = "pkg.zoom:Zoom"``);
code can also add one with :meth:`Registry.register` (a decorator or a plain call).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, TypeVar

from matbench.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: entry-point groups read for third-party plug-ins, one per kind
ENTRY_POINT_PREFIX = "matbench."


class Registry:
    """Names of one kind mapped to lazily imported objects.

    ``builtins`` are matbench's own entries; entry points in ``matbench.<kind>`` come after them and may
    not shadow a built-in name (a plug-in that tries is reported once and ignored, so a package on the
    path cannot silently replace the scorer an official run uses).
    """

    def __init__(self, kind: str, builtins: dict[str, str] | None = None, *, noun: str | None = None):
        self.kind = kind
        self.noun = noun or kind.rstrip("s")
        self._targets: dict[str, str] = dict(builtins or {})
        self._builtin = frozenset(self._targets)
        self._loaded: dict[str, Any] = {}
        self._entry_points_read = False
        self._origin: dict[str, str] = {name: "matbench" for name in self._targets}

    @property
    def group(self) -> str:
        return ENTRY_POINT_PREFIX + self.kind

    # -- adding ------------------------------------------------------------------------------------
    def register(self, name: str, obj: Any = None) -> Any:
        """Add ``name``: ``register("x", obj)`` or ``@registry.register("x")`` on a class or function.

        ``obj`` may also be a ``"module:attr"`` string (loaded on first use).
        """

        def add(target: T) -> T:
            if isinstance(target, str):
                self._targets[name] = target
                self._loaded.pop(name, None)
            else:
                existing = self._loaded.get(name)
                if existing is not None and existing is not target and name not in self._targets:
                    raise ValueError(f"{self.noun} {name!r} is already registered")
                self._loaded[name] = target
                self._targets.setdefault(name, f"{getattr(target, '__module__', '?')}:"
                                                f"{getattr(target, '__qualname__', '?')}")
            self._origin.setdefault(name, "code")
            return target

        if obj is None:
            return add
        return add(obj)

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        try:
            eps = _group(self.group)
        except Exception as exc:  # a broken distribution on the path must not break matbench
            log.warning("could not read entry points %s: %s", self.group, exc)
            return
        for ep in eps:
            if ep.name in self._builtin:
                log.warning("plug-in %s (%s) tries to replace matbench's %s %r: ignored",
                            ep.value, _dist_name(ep), self.noun, ep.name)
                continue
            if ep.name in self._targets and self._origin.get(ep.name) != "matbench":
                continue  # registered in code, which wins
            self._targets[ep.name] = ep.value
            self._origin[ep.name] = _dist_name(ep)

    def rescan(self) -> None:
        """Forget the plug-ins read so far and read the entry points again on next use (a plug-in installed
        into a running process, a test that puts one on ``sys.path``); built-ins and code entries stay."""
        for name in [n for n, origin in self._origin.items() if origin not in ("matbench", "code")]:
            self._targets.pop(name, None)
            self._loaded.pop(name, None)
            self._origin.pop(name, None)
        self._entry_points_read = False
        _all_entry_points.cache_clear()

    # -- reading -----------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name, built-ins first in declaration order, then plug-ins sorted."""
        self._read_entry_points()
        builtin = [n for n in self._targets if n in self._builtin]
        extra = sorted(n for n in self._targets if n not in self._builtin)
        return builtin + extra

    def __contains__(self, name: object) -> bool:
        self._read_entry_points()
        return name in self._targets or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def origin(self, name: str) -> str:
        """``matbench`` for a built-in, the distribution's name for a plug-in, ``code`` otherwise."""
        self._read_entry_points()
        return self._origin.get(name, "code")

    def target(self, name: str) -> str:
        self._read_entry_points()
        if name not in self._targets:
            raise self.unknown(name)
        return self._targets[name]

    def load(self, name: str) -> Any:
        """The object behind ``name``, imported on first use; an unknown name is one clear line."""
        if name in self._loaded:
            return self._loaded[name]
        target = self.target(name)
        module_name, _, attr = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            if self._origin.get(name) in ("matbench", "code") and isinstance(exc, ImportError) and (
                getattr(exc, "name", "") or ""
            ).startswith("matbench"):
                raise
            raise ConfigError(f"{self.noun} {name!r} ({target}, from {self.origin(name)}) "
                              f"could not be loaded: {exc}") from exc
        self._loaded[name] = obj
        return obj

    def unknown(self, name: str) -> ConfigError:
        return ConfigError(f"unknown {self.noun} {name!r}; choose one of: {', '.join(self.names())}")


@functools.cache
def _all_entry_points() -> Any:
    """Every installed entry point from ONE scan of the distributions (a scan per kind cost seven)."""
    return metadata.entry_points()


def _group(group: str) -> list[metadata.EntryPoint]:
    return list(_all_entry_points().select(group=group))


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "a plug-in"


# --------------------------------------------------------------------------------------------------
# The registries. Built-in entries are listed here, in one place, so a reader sees every kind at once;
# a new built-in is one file plus one line below, a third-party one is an entry point.

MODELS = Registry("models", {
    "openai": "matbench.models.openai_api:OpenAIModel",
    "vllm": "matbench.models.vllm_local:VLLMModel",
    "scripted": "matbench.models.scripted:ScriptedModel",
}, noun="model backend")

TOOLS = Registry("tools", {
    "search": "matbench.tools.search.tool:SearchTool",
    "code": "matbench.tools.code:CodeTool",
}, noun="tool")

SCORERS = Registry("scorers", {
    "visual-arft": "matbench.scoring.rules:VisualArft",
    "squad": "matbench.scoring.rules:Squad",
    "anls": "matbench.scoring.anls:Anls",
}, noun="scorer")

SEARCH = Registry("search", {
    "serper": "matbench.tools.search.serper:SerperSearch",
    "local": "matbench.tools.search.local:LocalSearch",
    "retriever": "matbench.tools.search.retriever:RetrieverSearch",
}, noun="search backend")

TASKS = Registry("tasks", {}, noun="task")

LOADERS = Registry("loaders", {
    "mat-search": "matbench.data.loaders:load_mat_search",
    "mat-coding": "matbench.data.loaders:load_mat_coding",
    "flashrag": "matbench.data.loaders:load_flashrag",
}, noun="data format")

COMMANDS = Registry("commands", {
    name: f"matbench.commands.{name}:register"
    for name in ("tasks", "score", "judge", "eval", "models", "sandbox", "search", "index", "submit", "leaderboard",
                 "compare", "view", "cache", "merge")
}, noun="command")

REGISTRIES: dict[str, Registry] = {
    r.kind: r for r in (MODELS, TOOLS, SCORERS, SEARCH, TASKS, LOADERS, COMMANDS)
}


def registry(kind: str) -> Registry:
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise ConfigError(f"unknown plug-in kind {kind!r}; known: {', '.join(REGISTRIES)}") from None


def choices(kind: str) -> Callable[[], list[str]]:
    """For argparse help text: the names of a kind, read when asked."""
    return lambda: registry(kind).names()
