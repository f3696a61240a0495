"""Rebuild every turn's request text of a recorded episode from a protocol's strings and the recorded outputs.

``matbench submit`` uses this to prove which protocol a run really used: a run made with ``--protocol-file``
whose config was edited to claim a stock protocol (fingerprint recomputed) sent other texts than the stock
strings build, and the per-turn ``request_sha256`` the episode recorded says so. The rebuild follows the tag
episode (``episode.py``) step by step, with the tool results the trajectory recorded (search snippets, errors,
problem labels). It stops where it cannot go on faithfully: an error turn, or a reply stored capped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from matbench.protocols import visual_arft as va
from matbench.protocols.templates import Templates, fill


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def messages_sha256(messages: list) -> str:
    """A native-tools request's texts in order: ``[[role, text], ...]`` as compact JSON."""
    rows = [[m.role, m.text] for m in messages]
    return text_sha256(json.dumps(rows, ensure_ascii=False, separators=(",", ":")))


def _complete(turn: dict) -> bool:
    """The reply is stored whole (not capped): the next text can be rebuilt from it."""
    out = turn.get("output")
    chars = turn.get("output_chars")
    return isinstance(out, str) and (chars is None or chars == len(out))


def _calls(turn: dict) -> list[dict]:
    """The turn's tool records: ``tool_calls`` (one per call), or a round-2 turn's single ``tool``."""
    calls = turn.get("tool_calls")
    if isinstance(calls, list):
        return [c for c in calls if isinstance(c, dict)]
    return [turn["tool"]] if isinstance(turn.get("tool"), dict) else []


def _other_tool(turn: dict) -> bool:
    """A call of a tool the layout's own parser does not know: its text is not recorded, the rebuild stops."""
    return any(c.get("name") not in ("search", "code", "problem") for c in _calls(turn))


def _search_next(t: Templates, text: str, out: str, turn: dict, strict: bool) -> str | None:
    act = va.parse_search(out, not strict)
    if act.final or (not act.steps and _other_tool(turn)):
        return None
    if "search" not in act.steps:
        return fill(t["after_other"], text=text, output=out)
    tool = next((c for c in _calls(turn) if c.get("name") == "search"), {})
    error = tool.get("error")
    if tool.get("input") is None and error:  # no query to search: theirs stopped, ours goes on
        return None if strict else fill(t["after_other"], text=text, output=out)
    if error:
        if strict:
            return None
        block = va.information_block(t, None, error=str(error))
    else:
        block = va.information_block(t, [str(r.get("snippet", "")) for r in tool.get("results") or []])
    return fill(t["after_search"], text=text, output=out, information=block)


def _coding_next(t: Templates, text: str, out: str, turn: dict, strict: bool) -> str | None:
    act = va.parse_coding(out, not strict)
    if act.final or (not act.steps and _other_tool(turn)):
        return None
    if not act.steps:
        return fill(t["after_other"], text=text, output=out)
    if "problem" in act.steps:
        if not act.problems and strict:
            return None
        text = fill(t["after_problem"], text=text, output=out, tips=va.tips_for(t, act.problems or []))
    if "code" in act.steps:
        text = fill(t["after_code"], text=text, output=out)
    return text


def request_digests(t: Templates, question: str, turns: list[dict], compat: str = "fixed") -> Iterator[str]:
    """The sha256 of each turn's request text as the protocol ``t`` builds it, turn by turn, as far as the
    record allows (fewer than ``len(turns)`` when a turn cannot be rebuilt)."""
    text = fill(t["first"], instructions=t["instructions"], question=question)
    if t.layout == "tools":
        yield from _tools_digests(t, text, turns)
        return
    strict = compat == "strict"
    for turn in turns:
        yield text_sha256(text)
        if t.layout == "direct" or turn.get("error") or not _complete(turn):
            return
        out = turn["output"]
        if t.layout == "search":
            nxt = _search_next(t, text, out, turn, strict)
        else:
            nxt = _coding_next(t, text, out, turn, strict)
        if nxt is None:
            return
        text = nxt


def _whole(record: dict, key: str) -> bool:
    """``record[key]`` is stored whole (a capped text cannot rebuild the next request)."""
    value, chars = record.get(key), record.get(f"{key}_chars")
    return value is None or chars is None or chars == len(value)


def _tools_digests(t: Templates, text: str, turns: list[dict]) -> Iterator[str]:
    """The native-tools conversation, message by message: the system message and the question, each
    assistant reply, each tool's text (a search's rebuilt from its recorded snippets with the claimed
    strings; other tools' as recorded), the image and need-an-answer messages from the claimed strings."""
    from matbench.protocols import native_tools as nt

    messages = [_Msg("system", t["instructions"]), _Msg("user", text)]
    for turn in turns:
        yield messages_sha256(messages)
        if turn.get("error") or not _whole(turn, "output") or turn.get("output") is None:
            return
        messages.append(_Msg("assistant", turn["output"] or None))
        if turn.get("action") == "message":
            messages.append(_Msg("user", nt.result(t, "need_answer")))
            continue
        if turn.get("action") != "tool_calls":
            return
        replies, images = [], []
        for call in turn.get("tool_calls") or []:
            if not _whole(call, "result"):
                return
            reply = call.get("result")
            if reply is None:
                continue
            if (
                call.get("name") == "search"
                and not call.get("error")
                and isinstance(call.get("results"), list)
            ):
                reply = nt.search_text(t, [str(r.get("snippet", "")) for r in call["results"]])
            replies.append(_Msg("tool", reply))
            if call.get("output_image"):
                images.append(_Msg("user", fill(nt.result(t, "image_message"), call_id=call.get("call_id"))))
        messages += replies + images


class _Msg:
    def __init__(self, role: str, text: str | None):
        self.role, self.text = role, text
