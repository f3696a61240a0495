"""Planning: resolve one task of a run (task, data, protocol, tools, model, search, sandbox) into a TaskPlan.

Everything that can be refused is decided here, before any model call and before a run directory exists:
the protocol and its strings, the data commit and the selection, the episode options, the tools, the run's
configuration and fingerprint, and whether an existing run directory may be resumed. Scheduling (runner.py)
only runs what a plan holds. Backend questions (decoding defaults, tool calls, what the request carries) are
asked of the model object, never of its name.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matbench import __version__
from matbench.data.hub import is_commit, resolve_commit
from matbench.data.loaders import load_samples
from matbench.data.sample import Sample
from matbench.errors import ConfigError
from matbench.models.cost import Price
from matbench.protocols.resolve import ResolvedProtocol, exec_scope_for, resolve_protocol
from matbench.protocols.templates import Templates
from matbench.records.run_dir import RunDir, utc_stamp
from matbench.run.config import config_fingerprint, file_sha256, spec_limits
from matbench.run.episode import Episode, EpisodeOptions, Tools
from matbench.run.lock import RunLock
from matbench.run.options import EvalSettings
from matbench.run.rundir import check_resume, overwrite_run, resolve_run_dir, select_samples
from matbench.run.shards import Shard, parse_shard
from matbench.run.timesplit import TimeSplit
from matbench.scoring.reader import RunScorer
from matbench.scoring.totals import RunTotals
from matbench.tasks import REPO_ROOT, TaskSpec, get_task
from matbench.tools.base import ToolContext, open_tools

log = logging.getLogger(__name__)


@dataclass
class TaskPlan:
    """One task, fully resolved before the model is loaded, so that configuration errors fail fast."""

    spec: TaskSpec
    templates: Templates
    samples: list[Sample]
    todo: list[Sample]
    run: RunDir
    config: dict
    options: EpisodeOptions
    scoring: str
    tools: Tools
    search_cache: object | None = None
    totals: RunTotals | None = None
    lock: RunLock | None = None
    episode_cls: type[Episode] = Episode
    price: Price | None = None
    time_split: TimeSplit | None = None  # filled while the plan runs; recorded in summary.json


@dataclass
class DataPlan:
    """The task's samples: all of them (for resume checks), the selection, this shard's part, the commit."""

    all: list[Sample]
    selected: int  # all shards' samples: the same in every shard's configuration
    samples: list[Sample]  # this shard's
    shard: Shard | None
    local: bool
    revision: str | None
    commit: str | None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _packages() -> dict[str, str]:
    from importlib import metadata

    names = [
        "openai",
        "datasets",
        "huggingface_hub",
        "bm25s",
        "opencv-python-headless",
        "numpy",
        "pillow",
        "vllm",
        "torch",
        "transformers",
    ]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = sys.version.split()[0]
    return found


def _load_data(settings: EvalSettings, spec: TaskSpec) -> DataPlan:
    local = bool(settings.data_dir or settings.data_file)
    revision = None if local else (settings.data_revision or spec.data.get("revision"))
    commit = None if local else resolve_commit(spec, revision)  # load exactly this commit, record it
    samples_all = load_samples(
        spec, data_dir=settings.data_dir, data_file=settings.data_file, revision=commit or revision
    )
    samples = select_samples(samples_all, settings.ids, settings.limit, spec)
    selected = len(samples)
    shard = parse_shard(settings.shard) if settings.shard else None
    if shard is not None:
        samples = shard.select(samples)
    return DataPlan(samples_all, selected, samples, shard, local, revision, commit)


def _episode_options(
    settings: EvalSettings, spec: TaskSpec, resolved: ResolvedProtocol, model: Any
) -> tuple[EpisodeOptions, str | None]:
    """The per-episode limits and decoding (the task's, the protocol's, the flags', the model's defaults)."""
    templates = resolved.templates
    direct, native = templates.layout == "direct", templates.layout == "tools"
    crop_assist = (
        bool(spec.options.get("crop_assist", False)) if settings.crop_assist is None else settings.crop_assist
    )
    exec_scope = (
        exec_scope_for(settings.exec_scope, templates) if "code" in spec.tools and not direct else None
    )
    fixed = spec_limits(spec, direct, resolved.max_new_tokens)
    max_new_tokens = fixed["max_new_tokens"]
    if native and model.config().get("reasoning_model"):  # room for the reasoning the limit also counts
        max_new_tokens = int(templates.data.get("max_new_tokens_reasoning", max_new_tokens))
    if settings.max_new_tokens:  # --max-new-tokens wins over the protocol's and the task's limit
        max_new_tokens = int(settings.max_new_tokens)
    defaults = model.decoding_defaults()
    options = EpisodeOptions(
        max_calls=fixed["max_calls"],
        max_new_tokens=max_new_tokens,
        top_k=fixed["top_k"],
        temperature=settings.temperature if settings.temperature is not None else defaults.get("temperature"),
        top_p=settings.top_p,
        seed=settings.seed,
        crop_assist=crop_assist and spec.kind == "coding" and not direct and not native,
        compat=settings.compat,
        exec_globals=templates["imports"] if exec_scope == "authors" else None,
    )
    return options, exec_scope


def _open_tools(
    settings: EvalSettings, spec: TaskSpec, templates: Templates, exec_scope: str | None, shared: dict
) -> Tools:
    """The task's tools from the TOOLS registry (none for a direct run); back-ends opened once per
    invocation are kept in ``shared``."""
    if templates.layout == "direct":
        return {}
    return open_tools(spec.tools, ToolContext(settings, spec, templates, shared, exec_scope))


def _run_config(
    settings: EvalSettings,
    spec: TaskSpec,
    data: DataPlan,
    resolved: ResolvedProtocol,
    model: Any,
    options: EpisodeOptions,
    exec_scope: str | None,
    tools: Tools,
    scoring: str,
) -> dict:
    """config.json: what the run was (fingerprinted part) and where and with what it ran (the rest)."""
    templates = resolved.templates
    model_config = model.config()
    runtime = model.runtime_keys  # where the model is served, not what it is: a resume may move
    request = options.request()
    config = {
        "matbench_version": __version__,
        "git_commit": _git_commit(),
        "created": utc_stamp(),
        "run_id": uuid.uuid4().hex[:16],  # this run's own identity (its response-cache scope), kept on resume
        "task": {
            "name": spec.name,
            "version": spec.version,
            "source": spec.source_label() if not data.local else "local",
            "data_dir": os.path.abspath(settings.data_dir) if settings.data_dir else None,
            "data_file": os.path.abspath(settings.data_file) if settings.data_file else None,
            "n_samples": data.selected,
            "spec_sha256": file_sha256(spec.path),
            "revision": data.revision,
            # A 40-hex hub commit: the exact data. Anything else (none, a branch) can move under the run.
            "revision_pinned": None if data.local else bool(data.revision and is_commit(data.revision)),
        },
        "model": {"spec": settings.model, **{k: v for k, v in model_config.items() if k not in runtime}},
        "model_runtime": {k: v for k, v in model_config.items() if k in runtime},
        "protocol": {
            **resolved.config(custom=bool(settings.protocol_file)),
            **(
                {"tools": _tools_protocol(templates, tools, options, model_config)}
                if templates.layout == "tools"
                else {}
            ),
        },
        # Where the authors' script was read from (not part of the fingerprint: any copy at the commit).
        "protocol_source": ({k: templates.source[k] for k in ("via", "path")} if templates.source else None),
        "scoring": scoring,
        "search": None,
        "sandbox": None,
        # each tool's record under its key (search, sandbox, ...)
        **{tool.config_key or tool.name: tool.config() for tool in tools.values()},
        "options": {
            "crop_assist": options.crop_assist,
            "max_calls": options.max_calls,
            "top_k": options.top_k,
            "compat": options.compat,
            "exec_scope": exec_scope,
            "exec_globals": options.exec_globals,
        },
        "decoding": {
            "temperature": options.temperature,
            "top_p": options.top_p,
            "max_new_tokens": options.max_new_tokens,
            "seed": options.seed,
            # HTTP: exactly what every request body carries besides the messages (what is not sent is the
            # server's default); in-process engines: the SamplingParams every request gets ("effective").
            **model.decoding_record(request),
        },
        "seed": settings.seed,
        "request_timeout": settings.request_timeout,  # None: each call's default (model 600 s, search 30/60 s)
        "selection": {
            "limit": settings.limit,
            "ids": settings.ids,
            "shard": str(data.shard) if data.shard else None,
            "shard_samples": len(data.samples) if data.shard else None,
        },
        "packages": _packages(),
    }
    if not data.local:  # the commit the hub data was loaded from (None: neither hub nor cache could tell)
        config["task"]["revision_resolved"] = data.commit
    config["fingerprint"] = config_fingerprint(config)
    return config


def plan_task(settings: EvalSettings, name: str, model: Any, shared: dict) -> TaskPlan:
    """Resolve task ``name`` for ``model`` (built, preflighted); ``shared`` holds tools opened once per
    invocation. An existing run directory is checked and locked for resuming; a new one is not made yet
    (:func:`matbench.run.rundir.open_run`)."""
    spec = get_task(name)
    resolved = resolve_protocol(
        spec,
        settings.protocol,
        settings.protocol_file,
        authors_repo=settings.authors_repo,
        cache_dir=Path(settings.cache_dir) if settings.cache_dir else default_cache_dir(),
        download_timeout=settings.request_timeout or 30.0,
    )
    templates = resolved.templates
    native = templates.layout == "tools"  # native function calling (episode_tools.py)
    if native and not model.native_tool_calls:
        raise ConfigError(
            "--protocol tools needs an OpenAI-compatible endpoint (an API model, or `vllm serve "
            "--enable-auto-tool-choice` with --base-url); the in-process engine has no tool calls"
        )
    scoring = RunScorer(spec, settings.scoring).name  # an unknown scoring fails here, before any call
    data = _load_data(settings, spec)
    options, exec_scope = _episode_options(settings, spec, resolved, model)
    tools = _open_tools(settings, spec, templates, exec_scope, shared)
    config = _run_config(settings, spec, data, resolved, model, options, exec_scope, tools, scoring)
    run = resolve_run_dir(settings, spec, config)
    if run.exists() and settings.overwrite:
        run = overwrite_run(run, settings, spec, config)
    search = tools.get("search")
    plan = TaskPlan(
        spec, templates, data.samples, list(data.samples), run, config, options, scoring, tools,
        getattr(search, "cache", None),
    )
    if native:
        from matbench.run.episode_tools import ToolsEpisode

        plan.episode_cls = ToolsEpisode
    if not run.exists():
        plan.totals = RunTotals(spec, scoring)
        return plan
    _resume(plan, settings, data)
    return plan


def _resume(plan: TaskPlan, settings: EvalSettings, data: DataPlan) -> None:
    """An existing run: under its lock, check the configuration, cut a torn last line, load the totals."""
    run, spec = plan.run, plan.spec
    plan.lock = RunLock(run.path).acquire()
    try:
        old = run.read_config()
        if plan.config.get("sandbox") is not None:
            from matbench.tools.sandbox_policy import check_resume as check_sandbox

            check_sandbox(old, plan.config["sandbox"], run.path)
        check_resume(run, old, plan.config, data.all, spec)
        cut = run.repair()
        if cut:
            log.warning("%s: cut a torn last line (%d bytes) before resuming", run.predictions_path, cut)
        plan.totals = RunTotals.from_run(run, spec, plan.scoring)  # one pass over the file, small rows per id
    except BaseException:
        plan.lock.release()
        raise
    plan.todo = [s for s in plan.samples if not plan.totals.finished(s.id, retry_errors=settings.retry_errors)]
    done = len(plan.samples) - len(plan.todo)
    print(f"resuming: {done}/{len(plan.samples)} done ({run.path})", file=sys.stderr)


def _tools_protocol(templates: Templates, tools: Tools, options: EpisodeOptions, model_config: dict) -> dict:
    """What config.json records of a native tool-calling run: functions, how it ends, budget, API shape."""
    from matbench.protocols.native_tools import declare

    declared = declare(templates, tools.values())
    return {
        "functions": [t.name for t in declared.specs],
        "final": declared.final,
        "max_model_calls": options.max_calls,
        "tool_call_budget": options.max_calls,
        "api": model_config.get("api"),
    }


def default_cache_dir() -> Path:
    from matbench.caches.location import default_cache_dir as location

    return location()


