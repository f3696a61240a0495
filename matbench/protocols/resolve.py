"""Which templates a task runs with: a ``--protocol-file``, the authors' strings, or matbench's wording.

The task spec names its protocols (``tasks/*.yaml``): ``visual-arft`` and ``direct`` read the authors' exact
strings from their scripts; ``matbench-wording`` and ``matbench-wording-direct`` are matbench's own files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matbench.errors import ConfigError
from matbench.protocols.authors_strings import authors_templates
from matbench.protocols.templates import Templates, load_templates
from matbench.tasks import ProtocolRef, TaskSpec


@dataclass(frozen=True)
class ResolvedProtocol:
    name: str
    templates: Templates
    max_new_tokens: int | None  # the protocol's own limit (direct: 2048), else None = the task's

    @property
    def wording(self) -> str:
        return "authors" if self.templates.source else "matbench"

    def config(self, custom: bool) -> dict:
        """The run config's ``protocol`` entry: what changes results only (no local paths)."""
        t = self.templates
        entry: dict = {
            "name": "custom" if custom else self.name,
            "layout": t.layout,
            "wording": "custom" if custom else self.wording,
            "sha256": t.sha256,
        }
        if t.source:
            entry["source"] = {k: v for k, v in t.source.items() if k not in ("via", "path")}
        else:
            entry["file"] = str(t.path)
        return entry


def resolve_protocol(
    spec: TaskSpec,
    protocol: str | None,
    protocol_file: str | None,
    *,
    authors_repo: str | None,
    cache_dir: Path,
    download_timeout: float = 30.0,
) -> ResolvedProtocol:
    name = protocol or spec.default_protocol
    ref: ProtocolRef = spec.protocol(name)
    if protocol_file:
        templates = load_templates(protocol_file)
    elif ref.authors:
        layout = ref.layout or spec.kind
        templates = authors_templates(
            layout, ref.authors, authors_repo=authors_repo, cache_dir=cache_dir, timeout=download_timeout
        )
    else:
        assert ref.file is not None  # checked when the spec was loaded
        templates = load_templates(ref.file)
    native = templates.layout == "tools" and templates["kind"] == spec.kind  # episode_tools.py
    if templates.layout not in (spec.kind, "direct") and not native:
        raise ConfigError(
            f"{templates.path}: layout {templates.layout!r} does not fit task {spec.name} (needs {spec.kind!r})"
        )
    return ResolvedProtocol(name, templates, ref.max_new_tokens)


def exec_scope_for(requested: str | None, templates: Templates) -> str:
    """How model code is exec'd: ``authors`` (their globals/locals split, the default with their strings)
    or ``fresh`` (one new namespace, the default with matbench's wording)."""
    has_imports = "imports" in templates.data
    scope = requested or ("authors" if has_imports else "fresh")
    if scope == "authors" and not has_imports:
        raise ConfigError(
            "--exec-scope authors needs the authors' coding script (protocol visual-arft), which lists their imports"
        )
    return scope
