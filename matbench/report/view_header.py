"""The viewer's run header as human text: the configuration line and ``summary.json``'s run block.

A run directory may come from anyone and from any matbench version, so every value is checked for its type
and turned into short phrases (``$0.0123 ($0.0001/sample)``, ``127.0.0.1:8000 — 40 calls, 0 failed,
healthy``); an absent value (None, an empty block) is left out, never printed as ``None``, a dict or a list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from matbench.models.cost import UNKNOWN

# summary.json's run keys that are identity, not numbers to read (the config line says model and task)
_SKIP = frozenset({"model", "run_dir", "fingerprint", "no_tool_hint"})  # the hint: with no_tool_calls


def _num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _count(x: object) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)


def _seconds(x: float) -> str:
    if x >= 3600:
        return f"{int(x // 3600)} h {int(x % 3600 // 60)} min"
    if x >= 60:
        return f"{int(x // 60)} min {round(x % 60)} s"
    return f"{x:.3g} s" if x < 10 else f"{x:.1f} s"


def _usd(x: object) -> str | None:
    return f"${x:.4f}" if _num(x) else None


def _pct(x: object) -> str | None:
    return f"{100 * x:.0f}%" if _num(x) else None


def _label(key: object) -> str:
    return re.sub(r"(_s|_seconds|_usd)$", "", str(key)).replace("_", " ")


def _value(key: str, v: object) -> str | None:
    """One scalar as text; None for what is absent or not a scalar (those are left out)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "yes" if v else "no"
    if _num(v) and re.search(r"(_s|seconds)$", key):
        return _seconds(float(v))
    if _num(v) and key.endswith("_usd"):
        return _usd(v)
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, (int, str)):
        return _count(v)
    return None


def _phrase(key: str, v: object) -> str | None:
    """Any value as ``label text``: scalars as they are, blocks flattened one level, lists of scalars joined;
    what is left holds nothing readable (nested blocks of an unknown shape) and is left out."""
    if isinstance(v, dict):
        parts = [f"{_label(k)} {text}" for k, x in v.items() if (text := _value(str(k), x)) is not None]
        return f"{_label(key)} {', '.join(parts)}" if parts else None
    if isinstance(v, list):
        parts = [text for x in v if (text := _value(key, x)) is not None]
        return f"{_label(key)} {', '.join(parts)}" if parts else None
    text = _value(key, v)
    return None if text is None else f"{_label(key)} {text}"


# --- the blocks matbench writes, each in its own words ----------------------------------------------------


def cost_phrase(cost: object) -> str | None:
    """``cost $1.2345 ($0.0123/sample)``, ``cost unknown price``; what was billed when less (cache hits)."""
    if not isinstance(cost, dict):
        return None
    if not _num(cost.get("usd")):
        return f"cost {UNKNOWN}"
    text = f"cost {_usd(cost['usd'])}"
    if _num(cost.get("per_sample_usd")):
        text += f" ({_usd(cost['per_sample_usd'])}/sample)"
    if isinstance(cost.get("status"), str) and cost["status"] != "ok":
        text = f"cost >= {text[5:]} ({cost['status']})"
    spent = cost.get("spent_usd")
    if _num(spent) and round(spent, 4) < round(cost["usd"], 4):
        text += f", {_usd(spent)} billed (the rest from the response cache)"
    return text


def _host(url: object) -> str:
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    return parts.netloc or text


def endpoint_text(ep: object) -> str | None:
    """``host:port — 40 calls, 2 failed, healthy`` (``drained: REASON`` when taken out of routing)."""
    if not isinstance(ep, dict) or not ep.get("url"):
        return None
    parts = []
    if _num(ep.get("calls")):
        parts.append(f"{_count(ep['calls'])} calls")
    if _num(ep.get("failed")):
        parts.append(f"{_count(ep['failed'])} failed")
    if _num(ep.get("moved")) and ep["moved"]:
        parts.append(f"{_count(ep['moved'])} moved to another endpoint")
    if _num(ep.get("calls_per_s")):
        parts.append(f"{ep['calls_per_s']:g} calls/s")
    if isinstance(ep.get("healthy"), bool):
        state = "healthy" if ep["healthy"] else "unhealthy"
        if isinstance(ep.get("reason"), str) and ep["reason"]:
            state += f" ({ep['reason']})"
        parts.append(state)
    return f"{_host(ep['url'])} — {', '.join(parts)}" if parts else _host(ep["url"])


def endpoints_phrase(eps: object) -> str | None:
    items = [t for ep in eps if (t := endpoint_text(ep))] if isinstance(eps, list) else []
    if not items:
        return None
    return ("endpoint " if len(items) == 1 else "endpoints ") + "; ".join(items)


def tool_calls_phrase(calls: object) -> str | None:
    """``tool calls search 12, code 3`` or ``tool calls none``."""
    if not isinstance(calls, dict):
        return None
    parts = [f"{k} {_count(v)}" for k, v in calls.items() if _num(v) and v]
    return f"tool calls {', '.join(parts) if parts else 'none'}"


def tokens_phrase(tokens: object) -> str | None:
    if not isinstance(tokens, dict) or not (_num(tokens.get("input")) and _num(tokens.get("output"))):
        return _phrase("tokens", tokens)
    text = f"tokens {_count(tokens['input'])} in / {_count(tokens['output'])} out"
    extra = [
        f"{_count(tokens[k])} {label}"
        for k, label in (("cached_input", "cached in"), ("reasoning", "reasoning"))
        if _num(tokens.get(k)) and tokens[k]
    ]
    if _num(tokens.get("unreported")) and tokens["unreported"]:
        extra.append(f"{_count(tokens['unreported'])} call(s) reported no usage")
    return text + (f" ({', '.join(extra)})" if extra else "")


def max_cost_phrase(mc: object) -> str | None:
    if not isinstance(mc, dict) or not _num(mc.get("limit_usd")):
        return None
    parts = [f"spent {_usd(mc['spent_usd'])}"] if _num(mc.get("spent_usd")) else []
    if _num(mc.get("not_started")) and mc["not_started"]:
        parts.append(f"{_count(mc['not_started'])} sample(s) not started")
    if _num(mc.get("stopped_in_flight")) and mc["stopped_in_flight"]:
        parts.append(f"{_count(mc['stopped_in_flight'])} stopped mid-sample")
    if isinstance(mc.get("halted"), str) and mc["halted"]:
        parts.append(f"halted: {mc['halted']}")
    return f"max cost ${mc['limit_usd']:g}" + (f": {', '.join(parts)}" if parts else "")


def time_split_phrase(ts: object) -> str | None:
    """Where the wall time went: lockstep as shares of the wall, concurrent as the model's share of episode
    time (episodes overlap, so their seconds do not add up to the wall)."""
    if not isinstance(ts, dict):
        return None
    if ts.get("mode") == "lockstep" and isinstance(ts.get("fractions"), dict):
        shares = [f"{k} {p}" for k, x in ts["fractions"].items() if (p := _pct(x)) is not None]
        rounds = ts.get("rounds")
        tail = f" over {len(rounds)} round(s)" if isinstance(rounds, list) and rounds else ""
        return f"time split (lockstep) {', '.join(shares)}{tail}" if shares else None
    if ts.get("mode") == "concurrent" and _num(ts.get("model_wait_share")):
        return f"time split (concurrent) waiting for the model {_pct(ts['model_wait_share'])} of episode time"
    return None


def no_tools_phrase(run: dict) -> str | None:
    """``no tool called by 6 samples`` (when some called none), or the run's hint, which says it already."""
    n, hint = run.get("no_tool_calls"), run.get("no_tool_hint")
    if isinstance(hint, str) and hint:
        return hint
    return f"no tool called by {_count(n)} sample(s)" if _num(n) and n else None


def no_answer_phrase(run: dict) -> str | None:
    n = run.get("no_answer")
    return f"no answer from {_count(n)} sample(s)" if _num(n) and n else None


_BLOCKS: dict[str, Callable[[object], str | None]] = {
    "cost": cost_phrase,
    "endpoints": endpoints_phrase,
    "tool_calls": tool_calls_phrase,
    "tokens": tokens_phrase,
    "max_cost": max_cost_phrase,
    "time_split": time_split_phrase,
}
_RUN_LEVEL: dict[str, Callable[[dict], str | None]] = {
    "no_tool_calls": no_tools_phrase,
    "no_answer": no_answer_phrase,
}


def stats_text(run: dict) -> list[str]:
    """``summary.json``'s run block as short phrases: numbers with units, no JSON, no ``None``."""
    out = []
    for key, v in run.items():
        key = str(key)
        if key in _SKIP:
            continue
        if key in _RUN_LEVEL:
            text = _RUN_LEVEL[key](run)
        elif key in _BLOCKS:
            text = _BLOCKS[key](v)
        else:
            text = _phrase(key, v)
        if text:
            out.append(text)
    return out


def _when(stamp: str | None) -> str | None:
    """``20261207T221124Z`` (config.json's ``created``) as ``2026-12-07 22:11 UTC``; other text as it is."""
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)\d\dZ", stamp or "")
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]} UTC" if m else stamp


def config_text(config: dict, source: str | None = None) -> list[tuple[str, str]]:
    """The configuration line as (label, text) pairs, each only when the run records it."""

    def block(name: str) -> dict:
        v = config.get(name)
        return v if isinstance(v, dict) else {}

    def text(x: object) -> str | None:
        return str(x) if isinstance(x, (str, int, float)) and not isinstance(x, bool) and str(x) else None

    task, model, proto, search = block("task"), block("model"), block("protocol"), block("search")
    pairs: list[tuple[str, str | None]] = []
    name, version = text(task.get("name")), text(task.get("version"))
    pairs.append(("task", f"{name} v{version}" if name and version else name))
    spec = text(model.get("spec"))
    inner = ", ".join(t for t in (text(model.get("model")), text(model.get("backend"))) if t and t != spec)
    pairs.append(("model", f"{spec} ({inner})" if spec and inner else spec or inner or None))
    pairs.append(("protocol", text(proto.get("name"))))
    pairs.append(("scoring", text(config.get("scoring"))))
    pairs.append(("search", text(search.get("backend"))))
    pairs.append(("file", source))
    pairs.append(("created", _when(text(config.get("created")))))
    return [(k, v) for k, v in pairs if v]
