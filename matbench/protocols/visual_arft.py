"""The Visual-ARFT protocol (the authors' evaluation scripts): tags and text, no HTTP, no tools.

Every turn is ONE user message: the current image plus the whole text so far. The protocol builds that
text and parses each model output into an ``Action``; the runner executes tools and hands results back.

One documented deviation (``--compat fixed``, the default): the authors' answer and search regexes had no
DOTALL, so a multi-line answer was recorded as None (or the previous sample's answer). Here they match across
lines; ``dotall=False`` (``--compat strict``) matches as theirs did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from matbench.protocols.templates import Templates, fill

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_SEARCH = re.compile(r"<search>\s*(.*?)\s*</search>", re.DOTALL)
_ANSWER_LINE = re.compile(r"<answer>\s*(.*?)\s*</answer>")  # the authors' regexes, without DOTALL
_SEARCH_LINE = re.compile(r"<search>\s*(.*?)\s*</search>")
_THINK = re.compile(r"<think>\s*(.*?)\s*</think>", re.DOTALL)
_PROBLEM = re.compile(r"<problem>\s*\{(.*?)\}\s*</problem>", re.DOTALL)
_QUOTED = re.compile(r"'([^']+)'")
_CODE = re.compile(r"<code>\s*```python(.*?)```.*?</code>", re.DOTALL)
_BOX = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
# A 2-D slice ``[a:b, c:d]`` whose bounds may hold one level of brackets (``img.shape[0]``).
_BOUND = r"((?:[^\[\]:]|(?:\[[^\[\]]*\]))+?)"
_SLICE = re.compile(rf"\[\s*{_BOUND}\s*:\s*{_BOUND}\s*,\s*{_BOUND}\s*:\s*{_BOUND}\s*\]")

PROBLEM_LABELS = ("rotation90", "rotation180", "dark", "overexposure", "blur", "noise", "crop", "none")


@dataclass
class Action:
    """What one model output asks for. ``steps`` lists the tags found, in the order the harness acts on them."""

    output: str
    steps: list[str] = field(default_factory=list)  # subset of answer / search / problem / code, or invalid
    think: str | None = None
    answer: str | None = None
    query: str | None = None
    problems: list[str] | None = None
    code: str | None = None

    @property
    def kind(self) -> str:
        return "+".join(self.steps) if self.steps else "invalid"

    @property
    def final(self) -> bool:
        return "answer" in self.steps


def extract_answer(output: str, dotall: bool = True) -> str | None:
    m = (_ANSWER if dotall else _ANSWER_LINE).search(output)
    return m.group(1).strip() if m else None


def _think(output: str) -> str | None:
    m = _THINK.search(output)
    return m.group(1).strip() if m else None


def parse_search(output: str, dotall: bool = True) -> Action:
    """``<answer>`` wins over ``<search>``, as in the authors' script; anything else is ``invalid``.

    A ``<search>`` whose query cannot be matched (the tag is never closed) keeps ``query`` None: the authors'
    loop then searched again with the last query it had.
    """
    act = Action(output=output, think=_think(output))
    if "<answer>" in output:
        act.steps = ["answer"]
        act.answer = extract_answer(output, dotall)  # None when the tag is never closed: scores 0, as theirs
    elif "<search>" in output:
        act.steps = ["search"]
        m = (_SEARCH if dotall else _SEARCH_LINE).search(output)
        act.query = m.group(1).strip() if m else None
    return act


def parse_problems(output: str) -> list[str] | None:
    """Sorted quoted labels inside ``<problem> {...} </problem>`` (the authors' rule), None if absent."""
    m = _PROBLEM.search(output)
    if not m:
        return None
    return sorted(_QUOTED.findall(m.group(1)))


def parse_coding(output: str, dotall: bool = True) -> Action:
    """Like the authors' script: ``<answer>`` ends the episode; else ``<problem>`` then ``<code>``, both if both."""
    act = Action(output=output, think=_think(output))
    if "<answer>" in output:
        act.steps = ["answer"]
        act.answer = extract_answer(output, dotall)
        return act
    if "<problem>" in output:
        act.steps.append("problem")
        act.problems = parse_problems(output) or []
    if "<code>" in output:
        act.steps.append("code")
        m = _CODE.search(output)
        act.code = m.group(1) if m else None  # None: "code is not extracted", a failed code step
    return act


def tips_for(templates: Templates, problems: list[str]) -> str:
    """The first sorted label decides: crop, none, or the generic tip naming every label."""
    tips = templates["tips"]
    first = problems[0] if problems else None
    if first == "crop":
        return fill(tips["crop"], problems=str(problems))
    if first == "none":
        return fill(tips["none"], problems=str(problems))
    return fill(tips["other"], problems=str(problems))


def information_block(templates: Templates, snippets: list[str] | None, error: str | None = None) -> str:
    """``<information> 1. Content:...2. Content:... </information> `` (no separator between items)."""
    info = templates["information"]
    if error is not None:
        body = error
    else:
        body = info.get("separator", "").join(
            fill(info["item"], i=i, snippet=snippet) for i, snippet in enumerate(snippets or [], 1)
        )
    return info["header"] + body + info["footer"]


def first_box(question: str) -> tuple[int, int, int, int] | None:
    m = _BOX.search(question)
    return tuple(int(g) for g in m.groups()) if m else None  # type: ignore[return-value]


def crop_rewrite(
    code: str, question: str, width: int, height: int
) -> tuple[str, tuple[int, int, int, int] | None]:
    """The authors' crop assist: every ``[a:b, c:d]`` slice becomes the question's 0-1000 box in pixels.

    Returns the rewritten code and the pixel box ``(x_min, y_min, x_max, y_max)`` (None: nothing to do).
    """
    box = first_box(question)
    if box is None:
        return code, None
    x_min = int(box[0] / 1000 * width)
    y_min = int(box[1] / 1000 * height)
    x_max = int(box[2] / 1000 * width)
    y_max = int(box[3] / 1000 * height)
    return _SLICE.sub(f"[{y_min}:{y_max}, {x_min}:{x_max}]", code), (x_min, y_min, x_max, y_max)
