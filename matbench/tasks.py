"""Task specs: one declarative YAML file per task, read into :class:`TaskSpec`.

A spec names its data source and field mapping, the split rule, tools, prompt templates (files next to it),
turn and token limits, scoring rules and a version. matbench's own tasks are the YAML files in ``tasks/``
(the source of truth in the repository); a plug-in package adds tasks through the ``matbench.tasks`` entry
points (:data:`matbench.registry.TASKS`), each naming the path of its YAML file (prompt files beside it).
Adding a task is one YAML file (plus, for a new data format, one loader in :data:`matbench.registry.LOADERS`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from matbench.errors import ConfigError, MatbenchError
from matbench.registry import TASKS

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def tasks_dir() -> Path:
    """``$MATBENCH_TASKS_DIR``, else the repository's ``tasks/``, else the copy an installed wheel carries."""
    from matbench.data.shipped import shipped_path

    env = os.environ.get("MATBENCH_TASKS_DIR")
    return Path(env) if env else shipped_path("tasks")


@dataclass(frozen=True)
class SplitRule:
    """Split by a row field when present, else by inclusive integer id ranges (MAT-Search: 1-75, 76-150)."""

    field: str | None = None
    ranges: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)

    def split_of(self, sample_id: str | int, row: dict | None = None) -> str | None:
        if row is not None and self.field and row.get(self.field) not in (None, ""):
            return str(row[self.field])
        try:
            num = int(sample_id)
        except (TypeError, ValueError):
            return None
        for name, (lo, hi) in self.ranges.items():
            if lo <= num <= hi:
                return name
        return None

    @property
    def names(self) -> list[str]:
        return list(self.ranges)


@dataclass(frozen=True)
class ProtocolRef:
    """A task's protocol: matbench's own template file (``file``), or the authors' script to read the
    strings from (``authors``, a path in their repository; ``layout`` says which strings)."""

    name: str
    file: Path | None = None
    authors: str | None = None
    layout: str | None = None
    max_new_tokens: int | None = None  # this protocol's token limit, if it differs from the task's


def _protocol_ref(name: str, raw: object, base: Path) -> ProtocolRef:
    if isinstance(raw, str):
        return ProtocolRef(name, file=(base / raw).resolve())
    if not isinstance(raw, dict) or ("file" in raw) == ("authors" in raw):
        raise ValueError(f"protocol {name!r} needs a file name, or a mapping with `file:` or `authors:`")
    tokens = raw.get("max_new_tokens")
    return ProtocolRef(
        name,
        file=(base / raw["file"]).resolve() if raw.get("file") else None,
        authors=str(raw["authors"]) if raw.get("authors") else None,
        layout=str(raw["layout"]) if raw.get("layout") else None,
        max_new_tokens=int(tokens) if tokens is not None else None,
    )


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: str
    description: str
    path: Path
    data: dict
    splits: SplitRule
    size: int | None
    tools: tuple[str, ...]
    kind: str  # "search" | "coding": which layout of the protocol the task uses
    image: bool
    protocols: dict[str, ProtocolRef]
    default_protocol: str
    limits: dict
    scoring: dict
    options: dict

    @property
    def default_scoring(self) -> str:
        return self.scoring.get("default", "visual-arft")

    @property
    def cjk(self) -> bool:
        """MAT-Coding's notebook compares CJK text character by character."""
        return bool(self.scoring.get("cjk", False))

    def protocol(self, protocol: str) -> ProtocolRef:
        try:
            return self.protocols[protocol]
        except KeyError:
            raise ConfigError(
                f"task {self.name} has no protocol {protocol!r}; it has {', '.join(sorted(self.protocols))}"
            ) from None

    def source_label(self) -> str:
        d = self.data
        if d.get("hub_repo") and d.get("hub_file"):
            return f"hf://{d['hub_repo']}/{d['hub_file']}"
        if d.get("hub_dataset"):
            return f"hf://{d['hub_dataset']} ({d.get('config')}, {d.get('split')})"
        return str(d)


def _load_spec(path: Path) -> TaskSpec:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read task spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a task spec must be a mapping")
    try:
        splits = raw.get("splits") or {}
        protocols = {k: _protocol_ref(k, v, path.parent) for k, v in (raw.get("protocols") or {}).items()}
        spec = TaskSpec(
            name=str(raw["name"]),
            version=str(raw["version"]),
            description=str(raw.get("description", "")).strip(),
            path=path,
            data=dict(raw["data"]),
            splits=SplitRule(
                field=splits.get("field"),
                ranges={k: (int(v[0]), int(v[1])) for k, v in (splits.get("ranges") or {}).items()},
            ),
            size=raw.get("size"),
            tools=tuple(raw.get("tools") or ()),
            kind=str(raw.get("kind", "search")),
            image=bool(raw.get("image", False)),
            protocols=protocols,
            default_protocol=str(raw.get("default_protocol", "visual-arft")),
            limits=dict(raw.get("limits") or {}),
            scoring=dict(raw.get("scoring") or {}),
            options=dict(raw.get("options") or {}),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{path}: malformed task spec ({exc!r})") from exc
    for proto, ref in spec.protocols.items():
        if ref.file is not None and not ref.file.is_file():
            raise ConfigError(f"{path}: protocol {proto!r} names a missing prompt file {ref.file}")
    return spec


@lru_cache(maxsize=8)
def _directory_specs(directory: str) -> dict[str, TaskSpec]:
    """matbench's own tasks: every ``*.yaml`` in the task directory."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"task directory {root} not found (set MATBENCH_TASKS_DIR)")
    specs: dict[str, TaskSpec] = {}
    for path in sorted(root.glob("*.yaml")):
        spec = _load_spec(path)
        if spec.name in specs:
            raise ConfigError(f"{path}: task {spec.name!r} is already defined in {specs[spec.name].path}")
        specs[spec.name] = spec
    return specs


def _plugin_spec(name: str) -> TaskSpec:
    """A task from :data:`TASKS`: its entry names a YAML path (str or Path), a TaskSpec, or a function
    returning either; the spec's ``name`` must be the entry's name."""
    obj = TASKS.load(name)
    if callable(obj) and not isinstance(obj, TaskSpec):
        obj = obj()
    spec = obj if isinstance(obj, TaskSpec) else _load_spec(Path(obj)) if isinstance(obj, (str, Path)) else None
    if spec is None:
        raise ConfigError(f"task {name!r} ({TASKS.target(name)}) is not a YAML path or a TaskSpec")
    if spec.name != name:
        raise ConfigError(f"task {name!r} ({TASKS.target(name)}) is named {spec.name!r} in {spec.path}")
    return spec


def all_tasks() -> dict[str, TaskSpec]:
    """matbench's tasks, then plug-in tasks (one with a built-in task's name, or one that does not load, is
    reported once and left out: a package on the path cannot replace or break the tasks matbench ships)."""
    specs = dict(_directory_specs(str(tasks_dir())))
    for name in TASKS.names():
        if name in specs:
            _warn_once(name, f"plug-in task {name!r} ({TASKS.origin(name)}) has the name of a matbench task: ignored")
            continue
        try:
            specs[name] = _plugin_spec(name)
        except MatbenchError as exc:
            _warn_once(name, str(exc))
    return specs


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", " ".join(message.split()))  # one line, also for a YAML error's caret


def get_task(name: str) -> TaskSpec:
    specs = _directory_specs(str(tasks_dir()))
    if name in specs:
        return specs[name]
    if name in TASKS:
        return _plugin_spec(name)
    raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(all_tasks())}")
