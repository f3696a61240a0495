"""Prompt templates: every string a protocol sends, loaded from a YAML/JSON file.

The task's own files live in ``tasks/prompts/``; ``--protocol-file FILE`` replaces them all, e.g. with the
authors' exact strings. Substitution touches only the named ``{placeholders}``: instructions are full of
literal braces (``{'rotation90', ...}``) that ``str.format`` would choke on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from matbench.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

REQUIRED = {
    "search": ("instructions", "first", "after_search", "after_other", "information"),
    "coding": ("instructions", "first", "after_problem", "after_code", "after_other", "tips"),
    "direct": ("instructions", "first"),
    "tools": ("kind", "final", "instructions", "first", "functions", "arguments", "results"),
}


def fill(template: str, **values: object) -> str:
    """Replace ``{name}`` for the given names only; every other brace stays as written."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        return str(values[name]) if name in values else m.group(0)

    return _PLACEHOLDER.sub(sub, template)


@dataclass(frozen=True)
class Templates:
    layout: str
    data: dict
    path: Path
    sha256: str
    source: dict | None = None  # the authors' scripts: repo, commit, file, sha256 of every string used

    def __getitem__(self, key: str):
        return self.data[key]


def load_templates(path: str | Path) -> Templates:
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read protocol file: {exc}") from exc
    try:
        if path.suffix == ".json":
            data = json.loads(raw_bytes)
        else:
            import yaml

            data = yaml.safe_load(raw_bytes)
    except Exception as exc:  # noqa: BLE001 - JSON and YAML raise different types; both mean a bad file
        raise ConfigError(f"{path}: not a valid protocol file: {exc}") from exc
    if not isinstance(data, dict) or data.get("layout") not in REQUIRED:
        raise ConfigError(f"{path}: a protocol file needs `layout:` one of {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED[data["layout"]] if k not in data]
    if missing:
        raise ConfigError(f"{path}: protocol file misses {', '.join(missing)}")
    if data["layout"] == "coding":
        tips = data["tips"]
        if not isinstance(tips, dict) or not {"crop", "none", "other"} <= set(tips):
            raise ConfigError(f"{path}: `tips` needs the keys crop, none and other")
    if data["layout"] == "search":
        info = data["information"]
        if not isinstance(info, dict) or not {"header", "item", "footer"} <= set(info):
            raise ConfigError(f"{path}: `information` needs header, item and footer")
    return Templates(data["layout"], data, path, hashlib.sha256(raw_bytes).hexdigest())
