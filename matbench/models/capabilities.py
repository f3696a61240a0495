"""The model table (``matbench/data/models.yaml``): what each model is and costs, as data.

Backends take their choices (API shape, reasoning parameters, the provider an alias goes to) from a model's
row, never from its name: ``openai:gpt-6-sol`` gets exactly what the table says, and a model the table does
not know runs with Chat Completions defaults and says so once. The same rows carry the prices that
:mod:`matbench.models.cost` charges.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError

MODELS_FILE = Path(__file__).resolve().parent.parent / "data" / "models.yaml"
API_SHAPES = ("chat", "responses")
PRICE_FIELDS = ("input", "cached_input", "output")


@dataclass(frozen=True)
class Provider:
    """A hosted API: where an alias of its models is sent and which environment variable holds its key."""

    name: str
    base_url: str
    api_key_env: str
    source: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """One row of the model table. ``price`` is $ per 1M tokens (input, cached_input, output) or None."""

    id: str
    backend: str
    api: str = "chat"
    reasoning: bool = False
    images: bool = True
    tools: bool = True
    max_output_tokens: int | None = None
    price: tuple[float, float, float] | None = None
    checked: str = ""
    source: str = ""
    alias: str | None = None
    provider: str | None = None
    architecture: str | None = None
    notes: str = ""
    known: bool = True  # False: not in the table, the defaults below

    def price_text(self) -> str:
        if self.price is None:
            return "unknown price"
        return " / ".join(f"${v:g}" for v in self.price)


def chat_defaults(model_id: str, backend: str = "openai") -> ModelInfo:
    """What a model the table does not know gets: Chat Completions, max_tokens and temperature, no price."""
    return ModelInfo(id=model_id, backend=backend, known=False, source="not in matbench's model table")


class Table:
    """The parsed table: rows by id, aliases, providers."""

    def __init__(self, rows: dict[str, ModelInfo], providers: dict[str, Provider]) -> None:
        self.rows = rows
        self.providers = providers
        self.aliases = {r.alias.lower(): r for r in rows.values() if r.alias}

    def find(self, model_id: str) -> ModelInfo | None:
        """The row for an id as sent to the API (exact; a dated snapshot is another model)."""
        return self.rows.get(model_id)

    def alias(self, name: str) -> ModelInfo | None:
        return self.aliases.get(name.lower())

    def provider_of(self, base_url: str | None) -> Provider | None:
        """The provider whose API root is ``base_url`` (None: a server of your own)."""
        if not base_url:
            return None
        url = base_url.rstrip("/")
        return next((p for p in self.providers.values() if p.base_url.rstrip("/") == url), None)


def _flag(path: Path, model: str, row: dict, name: str, default: bool) -> bool:
    value = row.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: model {model}: `{name}` must be true or false")
    return value


def _price(path: Path, model: str, raw: Any) -> tuple[float, float, float] | None:
    if raw is None or raw == "unknown":
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: model {model}: `price` must be `unknown` or {{input, cached_input, output}}")
    values = []
    for name in PRICE_FIELDS:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or math.isnan(value):
            raise ConfigError(f"{path}: model {model}: price `{name}` must be a number of $ per 1M tokens")
        values.append(float(value))
    return values[0], values[1], values[2]


def parse_table(path: Path) -> Table:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the model table: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ConfigError(f"{path}: the model table needs a `models:` mapping (model id -> row)")
    providers: dict[str, Provider] = {}
    for name, row in (raw.get("providers") or {}).items():
        if not isinstance(row, dict) or not row.get("base_url") or not row.get("api_key_env"):
            raise ConfigError(f"{path}: provider {name}: needs base_url and api_key_env")
        providers[str(name)] = Provider(str(name), str(row["base_url"]), str(row["api_key_env"]),
                                        str(row.get("source") or ""))
    rows: dict[str, ModelInfo] = {}
    for model, row in raw["models"].items():
        model = str(model)
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: model {model}: expected a mapping of its capabilities")
        api = row.get("api", "chat")
        if api not in API_SHAPES:
            raise ConfigError(f"{path}: model {model}: `api` must be one of {', '.join(API_SHAPES)}")
        if not row.get("backend"):
            raise ConfigError(f"{path}: model {model}: `backend` is required")
        provider = row.get("provider")
        if provider is not None and provider not in providers:
            raise ConfigError(f"{path}: model {model}: unknown provider {provider!r}")
        limit = row.get("max_output_tokens")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise ConfigError(f"{path}: model {model}: `max_output_tokens` must be a positive integer or null")
        if not row.get("checked") or not row.get("source"):
            raise ConfigError(f"{path}: model {model}: `checked` (a date) and `source` are required")
        rows[model] = ModelInfo(
            id=model,
            backend=str(row["backend"]),
            api=api,
            reasoning=_flag(path, model, row, "reasoning", False),
            images=_flag(path, model, row, "images", True),
            tools=_flag(path, model, row, "tools", True),
            max_output_tokens=limit,
            price=_price(path, model, row.get("price")),
            checked=str(row["checked"]),
            source=str(row["source"]),
            alias=str(row["alias"]) if row.get("alias") else None,
            provider=provider,
            architecture=row.get("architecture"),
            notes=str(row.get("notes") or ""),
        )
    table = Table(rows, providers)
    if len(table.aliases) != sum(1 for r in rows.values() if r.alias):
        raise ConfigError(f"{path}: two models share an alias")
    return table


@functools.lru_cache(maxsize=1)
def table() -> Table:
    """The shipped table (read once per process)."""
    return parse_table(MODELS_FILE)


def info(model_id: str, backend: str = "openai") -> ModelInfo:
    """The table's row for ``model_id``, else the chat defaults (``known`` False: the run says so once)."""
    row = table().find(model_id)
    return row if row is not None else chat_defaults(model_id, backend)


def unknown_model_note(model_id: str) -> str:
    """The one line a run prints when its model is not in the table."""
    return (
        f"{model_id} is not in matbench's model table (`matbench models`): Chat Completions defaults "
        "(max_tokens, temperature; no reasoning parameters), unknown price; --api responses for the Responses API"
    )
