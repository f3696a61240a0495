"""The judge's two prompts: what one sample's judging sends, and how a reply is read.

``matbench`` is matbench's own wording (one call with every gold answer; EM=1 by the run's own scorer is
correct without a call). ``sensenova-mars`` is SenseNova-MARS's validation judge as their loop runs it, with
their strings read at run time (:mod:`matbench.judge.sensenova`). A prompt turns a :class:`JudgeItem` into a
:class:`JudgePlan` (a verdict decided without a call, or the calls to make) and reads each reply as
yes / no / unparsed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from matbench.errors import ConfigError
from matbench.models.base import ChatRequest, Message

PROMPTS = ("matbench", "sensenova-mars")
DEFAULT_PROMPT = "matbench"
MAX_NEW_TOKENS = 1024
TEMPERATURE = 0.0  # greedy: the same request gives the same verdict, and reruns come from the response cache


@dataclass
class JudgeItem:
    """What the judge sees of one finished sample."""

    id: str
    split: str | None
    question: str
    gold: list[str]
    prediction: str | None
    em: float
    image: Path | None = None  # the image the evaluated model got in its first turn


@dataclass
class JudgeCall:
    gold: str | None  # the gold answer this call asks about (sensenova-mars: one call per gold answer)
    request: ChatRequest


@dataclass
class JudgePlan:
    method: str  # "em_match" | "no_answer" | "llm_judge"
    verdict: str | None = None  # decided without a call
    calls: list[JudgeCall] = field(default_factory=list)


def _request(system: str, text: str, images: list[Path], tag: str, *, text_first: bool) -> ChatRequest:
    return ChatRequest(
        text="",
        messages=[Message("system", system), Message("user", text, images=images, text_first=text_first)],
        max_new_tokens=MAX_NEW_TOKENS,
        temperature=TEMPERATURE,
        tag=tag,
    )


# --- matbench's own wording -----------------------------------------------------------------------------------
MATBENCH_SYSTEM = (
    "You grade the answer a model gave to a question{about}. You get the question, the reference answers "
    "(any one of them is right) and the model's answer. The model's answer is correct when it means the same "
    "as at least one reference answer: a paraphrase, another spelling or format of the same name, number, "
    "date or unit, or extra words that do not change the answer all count as correct. It is incorrect when it "
    "names something else, leaves out a required part, hedges between several candidates, or contradicts the "
    "references. Grade only the final answer, not how it was found.\n"
    "Write one short sentence of reason, then the verdict alone on the last line, exactly like this:\n"
    "REASON: <one sentence>\n"
    "VERDICT: CORRECT\n"
    "(or VERDICT: INCORRECT)"
)
MATBENCH_USER = "Question: {question}\nReference answers: {gold}\nModel's answer: {prediction}"
_MB_VERDICT = re.compile(r"^[ \t*]*VERDICT[ \t*]*:[ \t*]*(CORRECT|INCORRECT)\b", re.IGNORECASE | re.MULTILINE)
_MB_REASON = re.compile(r"^[ \t*]*REASON[ \t*]*:[ \t*]*(.+)$", re.IGNORECASE | re.MULTILINE)


class MatbenchPrompt:
    name = "matbench"

    def __init__(self) -> None:
        text = MATBENCH_SYSTEM + "\n" + MATBENCH_USER
        self.source = {"wording": "matbench", "sha256": hashlib.sha256(text.encode()).hexdigest()}
        self.deviations: list[str] = []

    def plan(self, item: JudgeItem, vision: bool) -> JudgePlan:
        if item.prediction is None:
            return JudgePlan("no_answer", "incorrect")
        if item.em >= 1.0:
            return JudgePlan("em_match", "correct")
        images = [item.image] if vision and item.image is not None else []
        system = MATBENCH_SYSTEM.format(about=" about an image" if images else "")
        gold = " | ".join(item.gold) if item.gold else "(none)"
        text = MATBENCH_USER.format(question=item.question, gold=gold, prediction=item.prediction)
        return JudgePlan(
            "llm_judge",
            calls=[JudgeCall(None, _request(system, text, images, f"judge/{item.id}", text_first=False))],
        )

    @staticmethod
    def parse(reply: str) -> bool | None:
        found = _MB_VERDICT.findall(reply)
        return None if not found else found[-1].upper() == "CORRECT"

    @staticmethod
    def reason(reply: str) -> str | None:
        m = _MB_REASON.search(reply)
        return m.group(1).strip() if m else None


# --- SenseNova-MARS ------------------------------------------------------------------------------------------
SENSENOVA_DEVIATIONS = [
    "question: the sample's question, not the first text of the first user message of their own agent prompt "
    "(their instructions are not matbench's)",
    "model_response: matbench's extracted prediction (the run's protocol), not their last <answer>...</answer> "
    "of the raw reply",
    "image: the image the evaluated model got in its first turn, re-encoded as JPEG quality 85 (RGB) as their "
    "convert_hf_messages_to_openai does; their data pipeline may have resized it before",
    f"decoding: temperature {TEMPERATURE:g} (unset for a reasoning model), max_tokens {MAX_NEW_TOKENS} (their "
    "llm_config values are not in tool.py)",
    "a reply without <judge>Yes|No</judge> is 'unparsed' (counted apart, never correct); their loop scores it 0",
    "an API failure is 'error' (rerun by the same command); their loop raises",
]


class SenseNovaPrompt:
    name = "sensenova-mars"

    def __init__(self, *, judge_repo: str | Path | None, cache_dir: Path, image_dir: Path) -> None:
        from matbench.judge import sensenova

        self._s = sensenova
        self.strings = sensenova.load_strings(judge_repo=judge_repo, cache_dir=cache_dir)
        self.source = self.strings.source
        self.deviations = list(SENSENOVA_DEVIATIONS)
        self.image_dir = image_dir

    def plan(self, item: JudgeItem, vision: bool) -> JudgePlan:
        if item.prediction is None:  # their extract_solution found no answer: score 0, no call
            return JudgePlan("no_answer", "incorrect")
        if self._s.exact_match(item.prediction, item.gold):
            return JudgePlan("em_match", "correct")
        kind = "vision" if vision else "text"
        system, template = self.strings.system[kind], self.strings.prompt[kind]
        images = [jpeg_copy(item.image, self.image_dir)] if vision and item.image is not None else []
        calls = []
        for i, gt in enumerate(item.gold):
            text = template.format(
                question=item.question, ground_truth_answer=gt, model_response=item.prediction
            )
            calls.append(
                JudgeCall(gt, _request(system, text, images, f"judge/{item.id}#{i + 1}", text_first=True))
            )
        return JudgePlan("llm_judge", calls=calls)

    def parse(self, reply: str) -> bool | None:
        return self._s.parse_verdict(reply)

    def reason(self, reply: str) -> str | None:
        return self._s.parse_reason(reply)


def jpeg_copy(src: Path, image_dir: Path) -> Path:
    """``src`` as JPEG quality 85, RGB (their judge's encoding), written once per content under ``image_dir``."""
    from PIL import Image

    data = src.read_bytes()
    out = image_dir / (hashlib.sha256(data).hexdigest()[:32] + ".jpg")
    if out.is_file():
        return out
    with Image.open(src) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGB")
        tmp = out.with_suffix(".part")
        img.save(tmp, format="JPEG", quality=85)
    tmp.replace(out)
    return out


def make_prompt(name: str, *, judge_repo: str | Path | None, cache_dir: Path, image_dir: Path):
    if name == "matbench":
        return MatbenchPrompt()
    if name == "sensenova-mars":
        return SenseNovaPrompt(judge_repo=judge_repo, cache_dir=cache_dir, image_dir=image_dir)
    raise ConfigError(f"unknown --judge-prompt {name!r}: use one of {', '.join(PROMPTS)}")
