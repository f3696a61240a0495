"""What ``matbench view`` shows, as plain data: a compact index row per sample (for the list and its filters) and
a detail record per sample (rendered by the page only when the sample is opened).

Everything here is data for the page's script, which puts it into the page with ``textContent``: no HTML is
built from model or data text. Image references go through :func:`resolve_run_file`; only safe ones get a
thumbnail and a link.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from matbench.records.files import resolve_run_file
from matbench.report.thumbs import Thumbnailer
from matbench.scoring.table import Scored
from matbench.tools.base import turn_calls

#: characters of the question and prediction kept in the index (the full text is in the detail)
EXCERPT = 140
_DIGITS = re.compile(r"([0-9]+)")


def outcome(rec: dict, score: Scored | None = None) -> str:
    """``correct`` = EM 1, ``error`` = status error or input_error, ``wrong`` = everything else."""
    if rec.get("status", "ok") != "ok":
        return "error"
    em = score.em if score is not None else _num(rec.get("em"))
    return "correct" if em >= 1 else "wrong"


def badge(rec: dict, score: Scored | None = None) -> str:
    """The one status word a sample shows: its outcome, or which kind of error it ended in."""
    status = str(rec.get("status") or "ok")
    if status == "ok":
        return outcome(rec, score)
    return status.replace("_", " ")


def tools_used(rec: dict) -> list[str]:
    used = [str(name) for name, count in _dict(rec.get("tool_calls")).items() if count]
    return sorted(used) or ["none"]


def types_of(rec: dict) -> list[str]:
    t = _dict(rec.get("metadata")).get("type") or []
    return [str(x) for x in (t if isinstance(t, list) else [t])]


def id_order(sample_id: str) -> tuple:
    """Natural order: runs of digits compare by value (``dev_1, dev_2, dev_10, dev_100``; ``1, 2, 10, a, b``);
    the id itself breaks ties (``01`` and ``1``)."""
    parts = tuple((0, int(p), "") if _DIGITS.fullmatch(p) else (1, 0, p) for p in _DIGITS.split(sample_id) if p)
    return parts, sample_id


def _num(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _dict(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _text(x: object) -> str | None:
    if x is None:
        return None
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


def _excerpt(x: object) -> str:
    text = " ".join((_text(x) or "").split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


class ImageLinker:
    """Image references -> ``{ref, caption, thumb, full}`` (relative to the page) or ``{ref, caption, why}``."""

    def __init__(self, run_dir: Path, page_dir: Path, resolve: Callable[[Path, str], Any] = resolve_run_file):
        self.run_dir = run_dir
        self.page_dir = page_dir.resolve()
        self.thumbs = Thumbnailer(run_dir)
        self.resolve = resolve
        self._done: dict[str, dict] = {}

    def href(self, path: Path) -> str:
        return quote(Path(os.path.relpath(path.resolve(), self.page_dir)).as_posix())

    def __call__(self, ref: object, caption: str) -> dict:
        ref = str(ref)
        known = self._done.get(ref)
        if known is None:
            found = self.resolve(self.run_dir, ref)
            thumb = self.thumbs.thumb(found.path, ref) if found.path is not None else None
            if thumb is not None:
                known = {"full": self.href(found.path), "thumb": self.href(self.run_dir / thumb)}
            else:
                known = {"why": found.why or "unreadable image"}
            self._done[ref] = known
        return {"ref": ref, "caption": caption, **known}


def _tool(tool: object) -> dict | None:
    if not isinstance(tool, dict):
        return None
    out = dict(tool)
    if tool.get("name") == "search":
        results = []
        for r in tool.get("results") or []:
            r = _dict(r)
            url = str(r.get("url") or "")
            item = {"title": _text(r.get("title")), "url": url, "snippet": _text(r.get("snippet"))}
            if url[:8].lower().startswith(("http://", "https://")):
                item["href"] = url
            results.append(item)
        out["results"] = results
    out.pop("output_image", None)
    return out


def _calls(turn: dict) -> list[dict]:
    """A turn's tool calls, both protocols and every record shape (matbench/tools/base.py), dicts only."""
    return turn_calls(turn)


def sample_images(traj: list[dict]) -> list[tuple[str, str]]:
    """The input image and each image the code produced, in order, each once: shown side by side."""
    seen: dict[str, str] = {}
    for t in traj:
        if t.get("image") and str(t["image"]) not in seen:
            seen[str(t["image"])] = "input" if not seen else f"turn {t.get('turn')} input"
        for call in _calls(t):
            out = call.get("output_image")
            if out and str(out) not in seen:
                seen[str(out)] = f"turn {t.get('turn')} code output"
    return list(seen.items())


def detail(rec: dict, images: ImageLinker) -> dict:
    """Everything the page shows when the sample is opened."""
    traj = [t for t in rec.get("trajectory") or [] if isinstance(t, dict)]
    turns = []
    for t in traj:
        imgs = []
        if t.get("image"):
            imgs.append(images(t["image"], "input" if t.get("turn") == 1 else f"turn {t.get('turn')} input"))
        for call in _calls(t):
            if call.get("output_image"):
                imgs.append(images(call["output_image"], f"turn {t.get('turn')} code output"))
        tokens = _dict(t.get("tokens"))
        turns.append(
            {
                "turn": t.get("turn"),
                "action": _text(t.get("action")),
                "tokens": [tokens.get("input"), tokens.get("output")] if tokens else None,
                "latency": t.get("latency") if isinstance(t.get("latency"), (int, float)) else None,
                "cached": bool(t.get("cached")),
                "think": _text(t.get("think")),
                "answer": _text(t.get("answer")),
                # every call as its tool shows it; a native call with its function, arguments and result
                "tool_calls": [
                    {
                        **(_tool(c) or {}),
                        "function": _text(c.get("function")),
                        "arguments": _text(c.get("arguments")),
                        "result": _text(c.get("result")),
                    }
                    for c in _calls(t)
                ]
                or None,
                "error": _text(t.get("error")),
                "output": _text(t.get("output")),
                "images": imgs,
            }
        )
    return {
        "id": str(rec.get("id")),
        "question": _text(rec.get("question")),
        "gold": [_text(g) for g in rec.get("gold") or []],
        "prediction": _text(rec.get("prediction")),
        "error": _text(rec.get("error")),
        "images": [images(ref, cap) for ref, cap in sample_images(traj)],
        "turns": turns,
    }


def index_row(rec: dict, score: Scored | None = None) -> dict:
    """The compact line the list, its filters and the summary need; ``score`` is the record rescored by the
    run's scorer (:class:`matbench.scoring.reader.RunScorer`), else the record's own numbers are shown."""
    calls = ", ".join(f"{k}×{v}" for k, v in _dict(rec.get("tool_calls")).items())
    return {
        "id": str(rec.get("id")),
        "badge": badge(rec, score),
        "outcome": outcome(rec, score),
        "split": str((score.split if score is not None else None) or rec.get("split") or ""),
        "types": types_of(rec),
        "tools": tools_used(rec),
        "calls": calls or "no tool calls",
        "f1": score.f1 if score is not None else _num(rec.get("f1")),
        "em": score.em if score is not None else _num(rec.get("em")),
        "missing": rec.get("prediction") is None,
        "turns": rec.get("turns") if isinstance(rec.get("turns"), int) else 0,
        "q": _excerpt(rec.get("question")),
        "p": _excerpt(rec.get("prediction")) if rec.get("prediction") is not None else None,
    }
