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

PRICES_FILE = Path(__file__).resolve().parents[1] / "data" / "models.yaml"  # the model table carries the prices
UNKNOWN = "unknown price"
_FIELDS = ("input", "cached_input", "output")


#: no model reads or writes this many tokens in one call: a count above it is a server's error, not usage
ABSURD_TOKENS = 10_000_000


def usage_problem(out: ModelOutput, max_new_tokens: int | None = None) -> str | None:
    """Why ``out``'s token counts cannot be priced (not reported, not a count, negative, absurd), or None.
    A failed call or a response-cache hit has nothing to price."""
    if out.error is not None or out.cached:
        return None
    return _count_problem(out, max_new_tokens)


def _count_problem(out: ModelOutput, max_new_tokens: int | None = None) -> str | None:
    counts = {"input": out.input_tokens, "output": out.output_tokens}
    for name, extra in (("cached_input", out.cached_input_tokens), ("reasoning", out.reasoning_tokens)):
        if extra is not None:
            counts[name] = extra
    for name, value in counts.items():
        if value is None:
            return f"the endpoint reported no {name} token count"
        if not isinstance(value, int) or isinstance(value, bool):
            return f"the endpoint reported {name} tokens as {value!r}, not a count"
        if value < 0:
            return f"the endpoint reported {value} {name} tokens"
        if value > ABSURD_TOKENS:
            return f"the endpoint reported {value} {name} tokens (more than any model handles in one call)"
    # output (reasoning included) is bounded by the request's limit; a little slack for servers counting EOS
    if max_new_tokens and counts["output"] > 2 * max_new_tokens + 100:
        return f"the endpoint reported {counts['output']} output tokens for a limit of {max_new_tokens}"
    return None


def usage_of(out: ModelOutput) -> dict[str, int]:
    """One call's token usage; keys for details only when reported. Counts that cannot be priced (missing,
    negative, absurd) are ``unreported`` (the run's cost becomes a lower bound), never $0 or a refund."""
    if out.error is None and _count_problem(out) is not None:
        return {"input": 0, "output": 0, "unreported": 1}
    usage = {"input": out.input_tokens or 0, "output": out.output_tokens or 0}
    if out.cached_input_tokens is not None:
        usage["cached_input"] = out.cached_input_tokens
    if out.reasoning_tokens is not None:
        usage["reasoning"] = out.reasoning_tokens
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


@dataclass
class Ticket:
    """One admitted model call: the spend reserved for it until it settles."""

    reserved: float


class SpendMeter:
    """``--max-cost``, checked before EVERY model call, not only when a sample starts.

    A call is admitted only while what was spent plus what the calls in flight may still cost stays under the
    limit: each call in flight reserves the dearest call seen so far (the first call runs alone, to learn
    it). So 32 samples in flight cannot spend 32 calls past the limit: at most one call's worth. Once the
    limit is reached no call is admitted: new samples are not started (``skipped``) and samples in flight
    stop where they are (``stopped``: not recorded, a resume redoes them). A call whose usage cannot be
    priced (not reported, negative, absurd) halts the run at once: a capped run never counts it as $0."""

    def __init__(self, limit: float, price: Price, already: float = 0.0) -> None:
        self.limit = float(limit)
        self.price = price
        self.spent = float(already)
        self.skipped = 0
        self.stopped = 0
        self.halted: str | None = None
        self.reserved = 0.0
        self.in_flight = 0
        self.dearest: float | None = None
        self._changed: Any = None

    @property
    def exhausted(self) -> bool:
        return self.halted is not None or self.spent >= self.limit

    async def admit(self) -> Ticket | None:
        """A ticket for one call, waiting while the calls in flight might reach the limit; None: stop (the
        limit is reached, or the run halted)."""
        import asyncio

        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while True:
                if self.exhausted:
                    return None
                guess = self.dearest
                if self.in_flight == 0 or (
                    guess is not None and self.spent + self.reserved + guess < self.limit
                ):
                    self.in_flight += 1
                    self.reserved += guess or 0.0
                    return Ticket(guess or 0.0)
                await self._changed.wait()

    async def settle(
        self, ticket: Ticket, out: ModelOutput | None, max_new_tokens: int | None = None
    ) -> None:
        """The call is over: count what it cost (or halt on usage that cannot be priced)."""
        async with self._changed:
            self.in_flight -= 1
            self.reserved -= ticket.reserved
            if out is not None and not out.cached:
                problem = usage_problem(out, max_new_tokens)
                if problem is not None:
                    self.halted = f"{problem}: --max-cost cannot count this call, so the run stopped"
                else:
                    cost = self.price.cost(usage_of(out))
                    self.spent += cost
                    self.dearest = max(self.dearest or 0.0, cost)
            self._changed.notify_all()

    def block(self) -> dict[str, Any]:
        """summary.json's ``run.max_cost``."""
        return {
            "limit_usd": self.limit,
            "spent_usd": round(self.spent, 6),
            "not_started": self.skipped,
            "stopped_in_flight": self.stopped,
            "halted": self.halted,
        }
