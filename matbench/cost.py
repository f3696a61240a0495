"""Token usage and what it costs: per-call usage records, the price table, a run's cost, the spend meter.

Usage per model call is ``{"input", "output"}`` plus ``cached_input`` and ``reasoning`` when the API reports
them, and ``unreported: 1`` for a call that came back without usage (its cost is then not known, and a run's
cost is marked as a lower bound). Prices come from the model table ``matbench/data/models.yaml`` (model -> $ per 1M input /
cached input / output tokens, with the date they were checked), overridable with ``--prices FILE``; a model
not in the table has an unknown price, never an estimate.

Two sums: ``usd`` prices every token the run's samples consumed (what running the model costs, also when a
rerun answered from the response cache), ``spent_usd`` only the calls that really went to the API (what
``--max-cost`` limits).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError, InputError
from matbench.models.base import ModelOutput

PRICES_FILE = Path(__file__).resolve().parent / "data" / "models.yaml"  # the model table carries the prices
UNKNOWN = "unknown price"
_FIELDS = ("input", "cached_input", "output")


def usage_of(out: ModelOutput) -> dict[str, int]:
    """One call's token usage; keys for details only when reported."""
    usage = {"input": out.input_tokens or 0, "output": out.output_tokens or 0}
    if out.cached_input_tokens is not None:
        usage["cached_input"] = out.cached_input_tokens
    if out.reasoning_tokens is not None:
        usage["reasoning"] = out.reasoning_tokens
    if out.error is None and (out.input_tokens is None or out.output_tokens is None):
        usage["unreported"] = 1
    return usage


def add_usage(total: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + int(value or 0)


@dataclass(frozen=True)
class Price:
    """$ per 1M tokens."""

    model: str
    input: float
    cached_input: float
    output: float
    checked: str
    source: str

    def cost(self, tokens: dict[str, int]) -> float:
        cached = min(int(tokens.get("cached_input", 0)), int(tokens.get("input", 0)))
        fresh = int(tokens.get("input", 0)) - cached
        return (
            fresh * self.input + cached * self.cached_input + int(tokens.get("output", 0)) * self.output
        ) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_table(path: Path) -> dict[str, Price]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read price table: {exc}") from exc
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(
            f"{path}: a price table needs a `models:` mapping (model -> input/cached_input/output)"
        )
    prices = {}
    for model, row in models.items():
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: model {model}: expected input, cached_input, output, checked, source")
        values = []
        for name in _FIELDS:
            value = row.get(name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value < 0
                or math.isnan(value)
            ):
                raise ConfigError(f"{path}: model {model}: `{name}` must be a number of $ per 1M tokens")
            values.append(float(value))
        if not row.get("checked"):
            raise ConfigError(f"{path}: model {model}: `checked` (the date the price was read) is required")
        prices[str(model)] = Price(str(model), *values, str(row["checked"]), str(row.get("source") or ""))
    return prices


def load_prices(override: str | Path | None = None) -> dict[str, Price]:
    """The shipped table, with the rows of ``override`` added or replacing."""
    from matbench.models.capabilities import table

    prices = {
        row.id: Price(row.id, *row.price, row.checked, row.source) for row in table().rows.values() if row.price
    }
    if override:
        prices.update(_read_table(Path(override)))
    return prices


def find_price(prices: dict[str, Price], model: dict[str, Any]) -> Price | None:
    """The row for a run's model (config ``model``: the API model id, else the spec as typed)."""
    for key in (model.get("model"), model.get("spec"), model.get("alias")):
        if key and str(key) in prices:
            return prices[str(key)]
    return None


def price_of_run(config: dict, summary: dict | None, prices: dict[str, Price] | None = None) -> Price | None:
    """The price a finished run was costed at (its summary.json), else the table's row for its model."""
    recorded = (((summary or {}).get("run") or {}).get("cost") or {}).get("price")
    if isinstance(recorded, dict):
        try:
            return Price(**recorded)
        except TypeError:
            raise InputError("summary.json: malformed run.cost.price") from None
    return find_price(prices if prices is not None else load_prices(), config.get("model") or {})


def record_usage(record: dict) -> dict[str, int]:
    """A record's tokens (all its calls)."""
    return {k: int(v) for k, v in (record.get("tokens") or {}).items() if isinstance(v, (int, float))}


def billed_usage(record: dict) -> dict[str, int]:
    """A record's tokens of the calls that went to the API (response-cache hits cost nothing)."""
    total: dict[str, int] = {}
    for turn in record.get("trajectory") or []:
        if not turn.get("cached"):
            add_usage(
                total, {k: v for k, v in (turn.get("tokens") or {}).items() if isinstance(v, (int, float))}
            )
    return total


def cost_block(usage: dict[str, int], billed: dict[str, int], n: int, price: Price | None) -> dict[str, Any]:
    """The ``cost`` block of summary.json: totals in $ or ``unknown price``, and the price used."""
    if price is None:
        return {"usd": None, "per_sample_usd": None, "spent_usd": None, "status": UNKNOWN, "price": None}
    usd = price.cost(usage)
    unreported = usage.get("unreported", 0)
    return {
        "usd": round(usd, 6),
        "per_sample_usd": round(usd / n, 6) if n else None,
        "spent_usd": round(price.cost(billed), 6),
        "status": f"lower bound: {unreported} call(s) reported no usage" if unreported else "ok",
        "price": price.to_dict(),
    }


class CostTally:
    """Adds up records as they stream past (one pass, no record kept)."""

    def __init__(self) -> None:
        self.usage: dict[str, int] = {}
        self.billed: dict[str, int] = {}
        self.n = 0

    def add(self, record: dict) -> None:
        add_usage(self.usage, record_usage(record))
        add_usage(self.billed, billed_usage(record))
        self.n += 1

    def watch(self, records: Iterable[dict]) -> Iterator[dict]:
        for record in records:
            self.add(record)
            yield record

    def block(self, price: Price | None) -> dict[str, Any]:
        return cost_block(self.usage, self.billed, self.n, price)


def run_cost(records: Iterable[dict], price: Price | None) -> dict[str, Any]:
    tally = CostTally()
    for record in records:
        tally.add(record)
    return tally.block(price)


def cost_text(cost: dict[str, Any] | None) -> str:
    """``$1.2345 ($0.0123/sample)``, or ``unknown price``."""
    if not cost or cost.get("usd") is None:
        return UNKNOWN
    text = f"${cost['usd']:.4f}"
    if cost.get("per_sample_usd") is not None:
        text += f" (${cost['per_sample_usd']:.4f}/sample)"
    if cost.get("status", "ok") != "ok":
        text = ">= " + text
    return text


class SpendMeter:
    """``--max-cost``: adds up what each API call costs; no new sample starts once the limit is reached."""

    def __init__(self, limit: float, price: Price, already: float = 0.0) -> None:
        self.limit = float(limit)
        self.price = price
        self.spent = float(already)
        self.skipped = 0

    def add(self, out: ModelOutput) -> None:
        if not out.cached:
            self.spent += self.price.cost(usage_of(out))

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit
