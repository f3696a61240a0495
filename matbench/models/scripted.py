"""``scripted:FILE``: an in-process model that replays a script of replies, for dry runs and tests.

A dry run checks a task setup (data, protocol, tools, search, sandbox, scoring, the run directory) end to
end without an endpoint, a key or a GPU. The script (YAML or JSON) gives each sample's replies in turn
order; a sample it does not name gets the ``default`` replies::

    samples:                     # sample id (or TASK/ID) -> its replies, turn by turn
      dev_0:
        - "<think>...</think>\\n<search>Scott Derrickson nationality</search>"
        - "<think>...</think>\\n<answer>yes</answer>"
    default:                     # every other sample (optional)
      - "<answer>unknown</answer>"

A reply is the model's text, or a mapping for ``--protocol tools`` and failure cases:
``{text, tool_calls: [{name, arguments, id?}], error, finish_reason, reasoning, input_tokens,
output_tokens}``; ``arguments`` is a mapping (sent as JSON) or a string (sent as written, e.g. malformed).
A top-level list is the ``default`` for every sample. A turn past a sample's last reply is an error output
that names the script, the sample and the turn.

``FILE`` is a path, or the name of a script shipped in ``matbench/data/scripts`` (``scripted:quickstart``).
The model's identity is the script's sha256: the run fingerprint and the response cache tell scripts apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import ChatRequest, Model, ModelOutput, ToolCall
from matbench.models.registry import register_model

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "data" / "scripts"
SCRIPT_SUFFIXES = (".yaml", ".yml", ".json")
REPLY_FIELDS = frozenset(
    {"text", "tool_calls", "error", "finish_reason", "reasoning", "input_tokens", "output_tokens"}
)
CALL_FIELDS = frozenset({"name", "arguments", "id"})


@dataclass(frozen=True)
class Reply:
    """One scripted model output, checked when the script is read."""

    text: str | None
    tool_calls: tuple[tuple[str | None, str, str], ...] = ()  # (id or None, name, arguments as JSON text)
    error: str | None = None
    finish_reason: str | None = "stop"
    reasoning: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def output(self, turn: int) -> ModelOutput:
        calls = [
            ToolCall(id=call_id or f"call_{turn}_{i + 1}", name=name, arguments=arguments)
            for i, (call_id, name, arguments) in enumerate(self.tool_calls)
        ]
        if self.error is not None:
            return ModelOutput(text=None, error=self.error, finish_reason=None)
        return ModelOutput(
            text=self.text,
            tool_calls=calls,
            finish_reason=self.finish_reason if not calls or self.finish_reason != "stop" else "tool_calls",
            reasoning=self.reasoning,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
        )


@dataclass
class Script:
    """A parsed script: replies per sample key (``ID`` or ``TASK/ID``) and the default replies."""

    path: Path
    sha256: str
    samples: dict[str, list[Reply]] = field(default_factory=dict)
    default: list[Reply] | None = None

    def replies_for(self, task: str, sample_id: str) -> list[Reply] | None:
        for key in (f"{task}/{sample_id}", sample_id):
            if key in self.samples:
                return self.samples[key]
        return self.default


def shipped_scripts() -> dict[str, Path]:
    """The scripts shipped with matbench, by name (``quickstart`` -> .../data/scripts/quickstart.yaml)."""
    if not SCRIPTS_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SCRIPTS_DIR.iterdir()) if p.suffix in SCRIPT_SUFFIXES}


def find_script(name: str) -> Path:
    """A path that exists, else a shipped script's name; anything else is one line naming both."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = shipped_scripts()
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"scripted model: no script file {name!r} and no shipped script of that name "
        f"(shipped: {', '.join(shipped) or 'none'})"
    )


def load_script(path: Path) -> Script:
    """Read and check a script; every problem is one line naming the file and the place in it."""
    raw = path.read_bytes()
    where = str(path)
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{where}: not a valid script ({first})") from None
    script = Script(path=path, sha256=hashlib.sha256(raw).hexdigest())
    if isinstance(data, list):
        data = {"default": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a script is a mapping with `samples` and/or `default`, or a list of replies")
    unknown = sorted(set(data) - {"samples", "default", "description"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (use samples, default)")
    samples = data.get("samples") or {}
    if not isinstance(samples, dict):
        raise ConfigError(f"{where}: `samples` maps sample ids to lists of replies")
    for key, replies in samples.items():
        script.samples[str(key)] = _replies(replies, f"{where}: samples.{key}")
    if data.get("default") is not None:
        script.default = _replies(data["default"], f"{where}: default")
    if not script.samples and script.default is None:
        raise ConfigError(f"{where}: the script has no replies (give `samples` or `default`)")
    return script


def _replies(value: Any, where: str) -> list[Reply]:
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of replies")
    return [_reply(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _reply(item: Any, where: str) -> Reply:
    if isinstance(item, str):
        return Reply(text=item)
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a reply is a string or a mapping, not {type(item).__name__}")
    unknown = sorted(set(item) - REPLY_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
                          f"known: {', '.join(sorted(REPLY_FIELDS))}")
    calls = tuple(_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(item.get("tool_calls") or []))
    text = item.get("text")
    if text is None and item.get("error") is None:
        text = "" if calls else None
        if text is None:
            raise ConfigError(f"{where}: a reply needs text, tool_calls or error")
    for name in ("input_tokens", "output_tokens"):
        if item.get(name) is not None and not isinstance(item[name], int):
            raise ConfigError(f"{where}: {name} must be an integer")
    return Reply(
        text=None if text is None else str(text),
        tool_calls=calls,
        error=None if item.get("error") is None else str(item["error"]),
        finish_reason=str(item.get("finish_reason") or "stop"),
        reasoning=item.get("reasoning"),
        input_tokens=item.get("input_tokens"),
        output_tokens=item.get("output_tokens"),
    )


def _call(call: Any, where: str) -> tuple[str | None, str, str]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ConfigError(f"{where}: a tool call is a mapping with a `name` and `arguments`")
    unknown = sorted(set(call) - CALL_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(str, unknown))} (use name, arguments, id)")
    arguments = call.get("arguments", {})
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return (None if call.get("id") is None else str(call["id"]), call["name"], text)


def parse_tag(tag: str) -> tuple[str, str, int] | None:
    """``task/sample#turn`` (how both episode kinds tag their requests) -> its parts, or None."""
    task, sep, rest = tag.partition("/")
    sample_id, hash_, turn = rest.rpartition("#")
    if not sep or not hash_ or not turn.isdigit():
        return None
    return task, sample_id, int(turn)


@register_model("scripted")
class ScriptedModel(Model):
    """Replies come from a script, by sample and turn; nothing leaves the process."""

    OPTIONS = frozenset({"base_url", "max_concurrency"})
    lockstep = False
    native_tool_calls = True  # a script may hold tool calls for --protocol tools

    def __init__(
        self,
        model_id: str,
        *,
        display_name: str | None = None,
        requested_backend: str = "scripted",
        base_url: str | list[str] | None = None,
        max_concurrency: int = 32,
    ) -> None:
        if base_url:
            raise ConfigError("a scripted model answers in process: drop --base-url")
        self.model_id = model_id
        self.display_name = display_name or f"scripted:{model_id}"
        self.script = load_script(find_script(model_id))
        self.name = f"scripted:{model_id}"
        self.max_concurrency = max(1, int(max_concurrency))
        self.calls = 0

    def _answer(self, request: ChatRequest) -> ModelOutput:
        self.calls += 1
        parsed = parse_tag(request.tag)
        if parsed is None:
            return ModelOutput(text=None, error=f"scripted model: request tag {request.tag!r} names no sample")
        task, sample_id, turn = parsed
        replies = self.script.replies_for(task, sample_id)
        if replies is None:
            return ModelOutput(
                text=None, error=f"{self.script.path}: no replies for sample {sample_id} and no `default`"
            )
        if turn > len(replies):
            return ModelOutput(
                text=None,
                error=f"{self.script.path}: sample {sample_id} has {len(replies)} "
                f"repl{'y' if len(replies) == 1 else 'ies'}, turn {turn} asked for one more",
            )
        return replies[turn - 1].output(turn)

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        await asyncio.sleep(0)  # a real turn of the event loop, as any backend's call would be
        return [self._answer(r) for r in requests]

    def config(self) -> dict[str, Any]:
        return {
            "backend": "scripted",
            "model": self.model_id,
            "alias": self.display_name,
            "script_sha256": self.script.sha256,  # the identity: another script is another model
            "decoding": "none: replies come from the script",
            "max_concurrency": self.max_concurrency,
        }
