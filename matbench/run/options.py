"""Every `matbench eval` option, declared once.

The command line (argparse), the settings record the runner takes (:class:`EvalSettings`) and the model
options handed to the backend are all generated from :data:`EVAL_OPTIONS`, so adding an option is one
:class:`Option` entry here (plus whatever reads it). ``recorded`` names where ``config.json`` keeps the
resolved value; an option recorded under a fingerprinted key changes the run's identity (a resume with
another value is refused), one recorded elsewhere or nowhere does not.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, make_dataclass
from typing import Any

#: where an option's value goes: an EvalSettings field, a model option (``get_model(**options)``), or only
#: the command itself (how it prints)
Destination = str  # "settings" | "model" | "command"


@dataclass(frozen=True)
class Option:
    """One eval option: its flag, parsing, default, help and where its value goes and is recorded."""

    name: str  # the EvalSettings field, the model option key, or the command's own attribute
    help: str | None = None
    type: Callable[[str], Any] | None = None  # argparse ``type`` (None: the string as given)
    default: Any = None  # the setting's default (for a ``--no-X`` switch: the value when not given)
    flag: str | None = None  # default: ``--`` + name with dashes
    # "value" (one argument), "append" (repeatable), "switch" (store_true), "off" (``--no-X`` sets False),
    # "both" (``--X`` / ``--no-X``)
    action: str = "value"
    choices: Sequence[str] | str | Callable[[], Sequence[str]] | None = None  # a str: a registry kind
    required: bool = False
    metavar: str | None = None
    to: Destination = "settings"
    group: str | None = None  # a heading in --help
    convert: Callable[[Any], Any] | None = None  # parsed value -> setting (applied when not None)
    recorded: str | None = None  # dotted key of config.json holding the resolved value, if any

    @property
    def option_string(self) -> str:
        if self.flag:
            return self.flag
        return ("--no-" if self.action == "off" else "--") + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.name

    @property
    def fingerprinted(self) -> bool:
        """Whether a different value makes a different run (its config key is in the fingerprint)."""
        from matbench.run.config import FINGERPRINT_KEYS

        return self.recorded is not None and self.recorded.split(".")[0] in FINGERPRINT_KEYS

    def choice_list(self) -> list[str] | None:
        if self.choices is None:
            return None
        if isinstance(self.choices, str):
            from matbench.registry import registry

            return registry(self.choices).names()
        if callable(self.choices):
            return list(self.choices())
        return list(self.choices)

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help}
        if self.action == "switch":
            kwargs.update(action="store_true", default=self.default)
        elif self.action == "off":
            kwargs.update(action="store_const", const=False, default=self.default)
        elif self.action == "both":
            kwargs.update(action=argparse.BooleanOptionalAction, default=self.default)
        else:
            if self.action == "append":
                kwargs["action"] = "append"
            if self.type is not None:
                kwargs["type"] = self.type
            kwargs.update(default=self.default, required=self.required, choices=self.choice_list())
            if self.metavar or self.flag:  # argparse would name it after the dest, not the flag
                kwargs["metavar"] = self.metavar or self.flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(self.option_string, **kwargs)


def _id_list(text: str) -> list[str] | None:
    return [i.strip() for i in text.split(",") if i.strip()]


_VLLM = "vLLM (in-process)"
_JUDGE = "LLM judge, beside F1/EM (`matbench judge RUN_DIR` takes the same options)"

#: The judge's options: `matbench eval --judge MODEL` and `matbench judge RUN_DIR --judge MODEL`. None is
#: recorded in config.json (a judge added to a resumed run does not change the run): judge.json records them.
JUDGE_OPTIONS: tuple[Option, ...] = (
    Option("judge", "the judge model, named as --model is: alias, openai:NAME, or a model of an "
           "OpenAI-compatible server with --judge-base-url", metavar="MODEL", group=_JUDGE),
    Option("judge_base_url", "the judge's OpenAI-compatible endpoint (repeat for replicas)", action="append",
           metavar="URL", group=_JUDGE),
    Option("judge_api_key_env", "variable holding the judge's API key (default OPENAI_API_KEY)", metavar="NAME",
           group=_JUDGE),
    Option("judge_prompt", "matbench (default): matbench's own wording; sensenova-mars: SenseNova-MARS's "
           "validation judge, their strings read from their script at the pinned commit",
           choices=("matbench", "sensenova-mars"), default="matbench", group=_JUDGE),
    Option("judge_repo", "a copy of OpenSenseNova/SenseNova-MARS (the folder holding verl/) for "
           "--judge-prompt sensenova-mars (default $MATBENCH_SENSENOVA_REPO, else the cache, else one download "
           "at the pinned commit)", metavar="DIR", group=_JUDGE),
    Option("judge_text_only", "the judge takes no images (default: it gets the image the model got)",
           action="switch", default=False, group=_JUDGE),
    Option("judge_overwrite", "replace the run's judgments (e.g. another judge's)", action="switch",
           default=False, group=_JUDGE),
    Option("judge_concurrency", "judge calls in flight (default 16)", type=int, default=16, group=_JUDGE),
)

EVAL_OPTIONS: tuple[Option, ...] = (
    Option("model", "alias (see `matbench models`), openai:NAME or vllm:PATH_OR_HUB_ID", required=True,
           recorded="model.spec"),
    Option("tasks", "task name; repeat for several (one model load)", flag="--task", action="append",
           required=True, recorded="task.name"),
    Option("data_dir", "local data folder instead of the hub", recorded="task.data_dir"),
    Option("data_file", "local data file instead of the hub", recorded="task.data_file"),
    Option("data_revision", "hub commit of the task data (default: the task spec's pin; recorded in config)",
           recorded="task.revision"),
    Option("limit", "only the first N samples", type=int, recorded="selection.limit"),
    Option("ids", "comma-separated sample ids, e.g. 1,5,9", convert=_id_list, recorded="selection.ids"),
    Option("shard", "only shard I of N (I from 0), a fixed slice by sample-id hash; `matbench merge` joins the "
           "shards", metavar="I/N", recorded="selection.shard"),
    Option("protocol", "visual-arft (default: the authors' exact strings), direct (their no-tool baseline), "
           "matbench-wording or matbench-wording-direct (matbench's own wording, no copy of the authors' "
           "scripts needed), tools (native function calling, API models: see README)",
           recorded="protocol.name"),
    Option("protocol_file", "a YAML/JSON file replacing every prompt template", recorded="protocol.wording"),
    Option("authors_repo", "a copy of Liuziyu77/Visual-RFT (the folder holding Visual-ARFT/) to read the "
           "authors' strings from (default $MATBENCH_AUTHORS_REPO, else the cache, else one download at the "
           "pinned commit)", recorded="protocol_source.path"),
    Option("compat", "fixed (default): the documented fixes of the authors' failure handling; strict: their "
           "handling too", choices=("fixed", "strict"), default="fixed", recorded="options.compat"),
    Option("scoring", "default: the task's (visual-arft)", choices="scorers", recorded="scoring"),
    Option("search", "search backend: serper (needs SERPER_API_KEY), local:INDEX_DIR, retriever:URL (default "
           "serper)", default="serper", recorded="search.spec"),
    Option("search_cache", "read replays a run offline from the cache; auto (default): readwrite, but off for "
           "local BM25", choices=("auto", "off", "read", "readwrite"), default="auto", recorded="search.cache"),
    Option("cache_dir", "search and response caches, the authors' scripts (default $MATBENCH_CACHE_DIR or "
           "~/.cache/matbench)"),
    Option("response_cache", "--response-cache: reuse deterministic answers cached by EARLIER runs too; default: "
           "only this run's own (a resume replays its calls); --no-response-cache: no cache at all",
           action="both", default=None),
    Option("base_url", "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for `vllm serve`; repeat for "
           "replicas of the same model (each call goes to the one with the fewest in flight; a failing one is "
           "drained)", action="append", recorded="model_runtime.base_url"),
    Option("api_key_env", "environment variable holding the API key (default OPENAI_API_KEY)",
           recorded="model_runtime.api_key_env"),
    Option("max_concurrency", "model calls in flight (default 32)", type=int, default=32,
           recorded="model_runtime.max_concurrency"),
    Option("lockstep_window", "in-process vLLM: episodes alive at once, batched together each round "
           "(default 1024)", type=int, default=1024),
    Option("max_retries", "retries per model call on 429/5xx/timeouts (default 6)", type=int, to="model",
           recorded="model_runtime.max_retries"),
    Option("retry_base_delay", "base seconds of the exponential backoff (default 1)", flag="--retry-delay",
           type=float, to="model", recorded="model_runtime.retry_base_delay"),
    Option("temperature", "default: 0 for API models, the checkpoint's for vLLM", type=float,
           recorded="decoding.temperature"),
    Option("top_p", type=float, recorded="decoding.top_p"),
    Option("seed", type=int, recorded="seed"),
    Option("max_new_tokens", "tokens per model call (default: the task's limit)", type=int,
           recorded="decoding.max_new_tokens"),
    Option("crop_assist", "do not rewrite crop slices to the question's box", action="off",
           recorded="options.crop_assist"),
    Option("code_timeout", "seconds per sandboxed code run (default 60; the authors had none)", type=float,
           recorded="sandbox.timeout"),
    Option("exec_scope", "authors (default with their strings): exec(code, globals-with-their-imports, locals) "
           "as their script did; fresh: one new namespace per snippet", choices=("authors", "fresh"),
           recorded="options.exec_scope"),
    Option("sandbox_workers", "warm sandbox workers (default 2)", type=int, default=2),
    Option("unsafe_no_sandbox", "run model code even without bubblewrap isolation (recorded; the run is not "
           "official)", action="switch", default=False, recorded="sandbox.unsafe"),
    Option("run_dir", "run directory (with several tasks: their parent)"),
    Option("runs_root", "where new run directories go (default runs/)", default="runs"),
    Option("overwrite", "replace an existing run instead of resuming it", action="switch", default=False),
    Option("retry_errors", "rerun only the samples that ended in an API error", action="switch", default=False),
    Option("api", "OpenAI API shape (default: responses for reasoning models o1/o3/o4/gpt-5, else chat)",
           choices=("chat", "responses"), to="model", recorded="model.api"),
    Option("reasoning_effort", "reasoning models only", choices=("minimal", "low", "medium", "high"),
           to="model", recorded="model.reasoning_effort"),
    Option("request_timeout", "seconds one network request may take IN ALL (connect, upload, the whole reply, "
           "however slowly a server sends): model calls, searches, the authors'-scripts download (default: 600 "
           "for model calls, 30 for searches and the download; retries are new requests)", type=float,
           metavar="S", recorded="request_timeout"),
    Option("prices", "a price table (YAML) adding to or replacing the shipped one"),
    Option("max_cost", "spend at most this much: checked before every model call (samples in flight stop, "
           "unrecorded; a call that reports no usable token counts stops the run); finished samples kept, "
           "resumable", type=float, metavar="USD"),
    Option("progress", "no progress bar", action="off", default=True),
    Option("json", "print the summaries as one JSON list on stdout", action="switch", default=False,
           to="command"),
    Option("tensor_parallel_size", type=int, to="model", group=_VLLM),
    Option("data_parallel_size", type=int, to="model", group=_VLLM),
    Option("max_model_len", type=int, to="model", group=_VLLM, recorded="model.max_model_len"),
    Option("gpu_memory_utilization", type=float, to="model", group=_VLLM),
    Option("max_pixels", type=int, to="model", group=_VLLM, recorded="model.max_pixels"),
    Option("dtype", "weights/activations dtype (auto, float32, bfloat16...; CPU: float32)", to="model",
           group=_VLLM, recorded="model.dtype"),
    Option("enforce_eager", "no CUDA graphs / compilation", action="switch", to="model", group=_VLLM),
    *JUDGE_OPTIONS,
)


def options_to(destination: Destination) -> tuple[Option, ...]:
    return tuple(o for o in EVAL_OPTIONS if o.to == destination)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every eval option on ``parser`` (groups in the order they first appear)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for opt in EVAL_OPTIONS:
        target: Any = parser
        if opt.group:
            target = groups.get(opt.group) or groups.setdefault(opt.group, parser.add_argument_group(opt.group))
        opt.add_to(target)


def _settings_field(opt: Option) -> tuple[str, Any, Any]:
    default = opt.default
    if isinstance(default, (list, dict, set)):
        return (opt.name, Any, field(default_factory=lambda d=default: type(d)(d)))
    if opt.required:
        return (opt.name, Any)  # type: ignore[return-value]
    return (opt.name, Any, field(default=default))


def make_settings_class() -> type:
    """The settings record: one field per settings option (required ones first), plus ``model_options``
    (the model options given, by key)."""
    settings = [o for o in EVAL_OPTIONS if o.to == "settings"]
    cls = make_dataclass(
        "EvalSettings",
        [
            *[_settings_field(o) for o in settings if o.required],
            *[_settings_field(o) for o in settings if not o.required],
            ("model_options", dict, field(default_factory=dict)),
        ],
    )
    cls.__module__ = __name__
    cls.__doc__ = "Everything `matbench eval` was asked for (CLI flags, resolved); generated from EVAL_OPTIONS."
    return cls


#: Everything `matbench eval` was asked for: see :func:`make_settings_class`.
EvalSettings = make_settings_class()


def _value(opt: Option, args: argparse.Namespace) -> Any:
    value = getattr(args, opt.dest)
    if value is not None and opt.convert is not None:
        value = opt.convert(value)
    return value


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """The :class:`EvalSettings` of parsed arguments; model options given go to ``model_options``."""
    values = {o.name: _value(o, args) for o in options_to("settings")}
    values["model_options"] = {
        o.name: v for o in options_to("model") if (v := _value(o, args)) is not None
    }
    values.update(overrides)
    return globals()["EvalSettings"](**values)


__all__ = [
    "EVAL_OPTIONS",
    "JUDGE_OPTIONS",
    "EvalSettings",
    "Option",
    "add_eval_arguments",
    "make_settings_class",
    "options_to",
    "settings_from_args",
]
