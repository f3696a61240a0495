"""SenseNova-MARS's validation judge, read at run time from their ``compute_score_llm`` and checked by sha256.

matbench ships none of their sentences: the two system messages (vision judge / text-only judge) and the two
prompt templates their loop fills (``candidate_answers_str`` is always empty there, so only the templates
without candidate answers are ever used) are read with ``ast`` from ``verl/verl/utils/reward_score/tool.py``
of OpenSenseNova/SenseNova-MARS at a pinned commit, from a local copy (``--judge-repo DIR`` /
``$MATBENCH_SENSENOVA_REPO``), the cache, or one download. The whole file's sha256 and each string's are
checked; a changed file is refused in one line.

What their loop does with the strings (reproduced in :mod:`matbench.judge.prompts`): EM short-circuit with
their own normalisation, no call without an answer, one call per gold answer with ``template.format(question=,
ground_truth_answer=, model_response=)``, the image (JPEG, quality 85, RGB) after the text for a vision judge,
``<judge>Yes|No</judge>`` searched case-insensitively anywhere in the reply, the max over the gold answers.
"""

from __future__ import annotations

import ast
import hashlib
import re
import string
from dataclasses import dataclass
from pathlib import Path

from matbench.errors import ConfigError
from matbench.protocols.authors_source import ScriptFile, Upstream, fetch_script

SCRIPT = "verl/verl/utils/reward_score/tool.py"
FILE_SHA256 = "bc47d8d8aa2a0ffffbd92dd7de130b90c9553b618a988ee3d74bf18ba8bd2f74"
SENSENOVA = Upstream(
    repo="OpenSenseNova/SenseNova-MARS",
    commit="c26a3e00c883bcdd2515633ec45a2b188ce2815e",
    top="verl",
    env="MATBENCH_SENSENOVA_REPO",
    flag="--judge-repo",
    instead="use --judge-prompt matbench for matbench's own wording",
    pinned=((SCRIPT, FILE_SHA256),),
)
FUNCTION = "compute_score_llm"
STRINGS_SHA256 = {
    "system.vision": "81db28959260ddb77455b78165203f0cc3bb6223e5e4ab8ced5d2d8f4b67cb1a",
    "system.text": "481981f9428b09d514de4b50bde9f4a2b841c65a982e3d38ebe8ad903d4b6f8c",
    "prompt.vision": "b0f43524c31da9d26e439cc4a455306357e0eec689dff2362e669de1182c49fd",
    "prompt.text": "63e4b7353408b2a9a60ed541632928a46e1d9fe656173dc4e3d36c05f3f1f5ec",
}
# The names their templates are formatted with (``prompt.format(question=..., ...)``).
FIELDS = ("question", "ground_truth_answer", "model_response")


@dataclass(frozen=True)
class SenseNovaStrings:
    """Their system messages and templates, and where they came from (recorded in the judge's config)."""

    system: dict[str, str]  # "vision" | "text" -> system message
    prompt: dict[str, str]  # "vision" | "text" -> template: {question} {ground_truth_answer} {model_response}
    source: dict


class _Shape(Exception):
    """The file does not have the shape matbench reads."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _function(tree: ast.Module) -> ast.FunctionDef:
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == FUNCTION]
    if len(found) != 1:
        raise _Shape(f"expected one `def {FUNCTION}`, found {len(found)}")
    return found[0]


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _branches(fn: ast.FunctionDef, flag: str) -> list[ast.If]:
    """Every ``if <flag>:`` with an else branch, in source order."""
    return sorted(
        (n for n in ast.walk(fn) if isinstance(n, ast.If) and _is_name(n.test, flag) and n.orelse),
        key=lambda n: n.lineno,
    )


def _assigned_string(body: list[ast.stmt], target: str) -> str:
    found = [
        s.value.value
        for s in body
        if isinstance(s, ast.Assign)
        and any(_is_name(t, target) for t in s.targets)
        and isinstance(s.value, ast.Constant)
        and isinstance(s.value.value, str)
    ]
    if len(found) != 1:
        raise _Shape(f"expected one `{target} = '...'` in a branch, found {len(found)}")
    return found[0]


def _template_without_candidates(body: list[ast.stmt]) -> str:
    """The else branch of ``if has_candidate_answers:`` (their loop always takes it: the string is empty)."""
    inner = [s for s in body if isinstance(s, ast.If) and _is_name(s.test, "has_candidate_answers")]
    if len(inner) != 1 or not inner[0].orelse:
        raise _Shape("expected `if has_candidate_answers: ... else: ...` in a branch")
    return _assigned_string(inner[0].orelse, "prompt")


def _candidates_always_empty(fn: ast.FunctionDef) -> None:
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and any(_is_name(t, "candidate_answers_str") for t in node.targets):
            if not (isinstance(node.value, ast.Constant) and node.value.value == ""):
                raise _Shape("`candidate_answers_str` is not the empty string")
            return
    raise _Shape("no `candidate_answers_str = ''`")


def extract(script: ScriptFile) -> dict[str, str]:
    """The four strings of their loop, each checked against its recorded sha256."""
    where = f"{script.relpath} (from {script.local})" if script.local else f"{script.relpath} (downloaded)"
    digest = hashlib.sha256(script.data).hexdigest()
    try:
        tree = ast.parse(script.data.decode("utf-8"), filename=script.relpath)
        fn = _function(tree)
        _candidates_always_empty(fn)
        systems = [
            b
            for b in _branches(fn, "is_vision_model")
            if any(
                isinstance(s, ast.Assign) and any(_is_name(t, "system_message") for t in s.targets)
                for s in b.body
            )
        ]
        prompts = [
            b
            for b in _branches(fn, "is_vision_model")
            if any(isinstance(s, ast.If) and _is_name(s.test, "has_candidate_answers") for s in b.body)
        ]
        if len(systems) != 1 or len(prompts) != 1:
            raise _Shape("expected one `if is_vision_model:` for the system message and one for the prompt")
        strings = {
            "system.vision": _assigned_string(systems[0].body, "system_message"),
            "system.text": _assigned_string(systems[0].orelse, "system_message"),
            "prompt.vision": _template_without_candidates(prompts[0].body),
            "prompt.text": _template_without_candidates(prompts[0].orelse),
        }
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: their script does not parse ({exc})") from None
    except _Shape as exc:
        raise ConfigError(
            f"{where}: not the script matbench reads at {SENSENOVA.repo}@{SENSENOVA.commit[:12]} ({exc})"
        ) from None
    for key, text in strings.items():
        if _sha(text) != STRINGS_SHA256[key]:
            raise ConfigError(
                f"{where}: their string {key} differs from the one matbench checked at "
                f"{SENSENOVA.repo}@{SENSENOVA.commit[:12]} (sha256 {_sha(text)[:16]}...); use a copy at that commit"
            )
    if digest != FILE_SHA256:
        raise ConfigError(
            f"{where}: the file's sha256 is {digest[:16]}..., not the one of {SENSENOVA.repo}@"
            f"{SENSENOVA.commit[:12]} ({FILE_SHA256[:16]}...); use a copy at that commit"
        )
    return strings


def load_strings(*, judge_repo: str | Path | None, cache_dir: Path) -> SenseNovaStrings:
    script, strings = fetch_script(
        SCRIPT, authors_repo=judge_repo, cache_dir=cache_dir, check=extract, upstream=SENSENOVA
    )
    assert isinstance(strings, dict)
    for key in ("prompt.vision", "prompt.text"):
        missing = [f for f in FIELDS if "{" + f + "}" not in strings[key]]
        if missing:  # their template would not carry the sample into the request
            raise ConfigError(f"{SCRIPT}: their template {key} lacks {{{missing[0]}}}")
    source = {
        "repo": SENSENOVA.repo,
        "commit": SENSENOVA.commit,
        "file": SCRIPT,
        "function": FUNCTION,
        "file_sha256": hashlib.sha256(script.data).hexdigest(),
        "strings_sha256": {k: _sha(v) for k, v in sorted(strings.items())},
        "via": script.via,
        "path": str(script.local) if script.local else None,
    }
    return SenseNovaStrings(
        system={"vision": strings["system.vision"], "text": strings["system.text"]},
        prompt={"vision": strings["prompt.vision"], "text": strings["prompt.text"]},
        source=source,
    )


# --- their rules, as matbench's code (read from their script, not copied) -------------------------------------
_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_VERDICT = re.compile(r"<judge>\s*(yes|no)\s*</judge>", re.IGNORECASE | re.DOTALL)
_REASON = re.compile(r"<reason>(.*?)</reason>", re.IGNORECASE | re.DOTALL)


def normalize(text: str) -> str:
    """Lower case, ASCII punctuation dropped, articles dropped (a text that is just "a" keeps it), spaces
    collapsed: the order their EM check applies them in."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    if text.strip().lower() != "a":
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: list[str]) -> bool:
    pred = normalize(prediction)
    return any(normalize(g) == pred for g in golds)


def parse_verdict(reply: str) -> bool | None:
    """True for Yes, False for No, None when no ``<judge>`` tag holds either (their loop counts that as No;
    matbench counts it apart as unparsed, never correct)."""
    m = _VERDICT.search(reply.strip())
    return None if m is None else m.group(1).lower() == "yes"


def parse_reason(reply: str) -> str | None:
    m = _REASON.search(reply)
    return m.group(1).strip() if m else None
