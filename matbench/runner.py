"""`matbench eval`: resolve a configuration, run every sample as an episode, record, resume, summarise.

Schedulers: HTTP models get every episode concurrently, bounded by ``--max-concurrency``; an in-process engine
(``model.lockstep``) gets ONE batched call per round over all live episodes, then the round's tool calls run
in parallel and finished episodes drop out. Each finished sample is appended and flushed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from matbench import __version__
from matbench.cost import Price, SpendMeter, find_price, load_prices
from matbench.data.hub import is_commit, resolve_commit
from matbench.data.loaders import load_samples
from matbench.data.sample import Sample
from matbench.episode import Episode, EpisodeOptions, Tools
from matbench.errors import ConfigError, InputError
from matbench.models.base import split_config
from matbench.models.decoding import effective_decoding, sent_decoding
from matbench.models.registry import backend_class
from matbench.protocols.resolve import exec_scope_for, resolve_protocol
from matbench.protocols.templates import Templates
from matbench.records import DiskFull, RunDir, SampleRecord, safe_name, utc_stamp
from matbench.runconfig import FINGERPRINT_KEYS as FINGERPRINT_KEYS  # merge.py imports it from here
from matbench.runconfig import changed_keys, config_fingerprint, file_sha256, spec_limits
from matbench.runlock import RunLock
from matbench.scoring import get_scorer
from matbench.shards import parse_shard
from matbench.tasks import REPO_ROOT, TaskSpec, get_task
from matbench.timesplit import TimeSplit
from matbench.totals import RunTotals

log = logging.getLogger(__name__)



@dataclass
class EvalSettings:
    """Everything `matbench eval` was asked for (CLI flags, resolved)."""

    model: str
    tasks: list[str]
    data_dir: str | None = None
    data_file: str | None = None
    data_revision: str | None = None  # hub commit of the data (default: the task spec's pin)
    limit: int | None = None
    ids: list[str] | None = None
    protocol: str | None = None
    protocol_file: str | None = None
    authors_repo: str | None = None  # a copy of the authors' repository (else $MATBENCH_AUTHORS_REPO / cache)
    compat: str = "fixed"  # "strict": the authors' failure handling too
    exec_scope: str | None = None  # "authors" | "fresh"; default: authors for the authors' wording
    search: str = "serper"
    search_cache: str = "auto"
    cache_dir: str | None = None
    base_url: str | list[str] | None = None  # several: replicas of one model (models/pool.py)
    api_key_env: str | None = None
    max_concurrency: int = 32
    lockstep_window: int = 1024  # in-process engines: episodes alive at once (each round batches all of them)
    run_dir: str | None = None
    runs_root: str = "runs"
    overwrite: bool = False
    retry_errors: bool = False
    seed: int | None = None
    max_new_tokens: int | None = None  # None: the task's limit
    temperature: float | None = None
    top_p: float | None = None
    scoring: str | None = None
    crop_assist: bool | None = None
    code_timeout: float | None = None
    sandbox_workers: int = 2
    unsafe_no_sandbox: bool = False
    response_cache: bool = True
    model_options: dict = field(default_factory=dict)
    progress: bool = True
    shard: str | None = None  # "I/N": a 1/N slice of the samples by id hash (matbench/shards.py)
    prices: str | None = None  # a price table adding to / replacing the model table's prices (matbench/data/models.yaml)
    max_cost: float | None = None  # USD: no new sample starts once the spend reaches it


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


# --- configuration -------------------------------------------------------------------------------------------
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


def _select(samples: list[Sample], ids: list[str] | None, limit: int | None, spec: TaskSpec) -> list[Sample]:
    if ids:
        by_id = {s.id: s for s in samples}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ConfigError(f"--ids: {', '.join(unknown)} not in task {spec.name}")
        samples = [by_id[i] for i in ids]
    return samples[:limit] if limit is not None else samples


def _same_run_target(path: Path, model: str, task: str, shard: str | None) -> bool:
    """A previous run directory of this model, task and shard (the name alone can be ambiguous)."""
    try:
        cfg = RunDir(path).read_config()
    except (ConfigError, InputError):
        return False
    return (
        cfg.get("model", {}).get("spec") == model
        and cfg.get("task", {}).get("name") == task
        and (cfg.get("selection") or {}).get("shard") == shard
    )


def _run_path(settings: EvalSettings, spec: TaskSpec, shard: str | None) -> Path:
    model_part = safe_name(settings.model)
    task_part = spec.name + (f"_{parse_shard(shard).label}" if shard else "")
    return Path(settings.runs_root) / f"{utc_stamp()}_{model_part}_{task_part}"


def _resolve_run_dir(settings: EvalSettings, spec: TaskSpec, shard: str | None) -> RunDir:
    """The run directory: ``--run-dir``, else the latest previous run of this model, task and shard, else new."""
    model_part = safe_name(settings.model)
    task_part = spec.name + (f"_{parse_shard(shard).label}" if shard else "")
    if settings.run_dir:
        path = Path(settings.run_dir)
        if len(settings.tasks) > 1:
            path = path / spec.name
    else:
        root = Path(settings.runs_root)
        previous = sorted(root.glob(f"*_{model_part}_{task_part}")) if root.is_dir() else []
        previous = [p for p in previous if _same_run_target(p, settings.model, spec.name, shard)]
        path = previous[-1] if previous else _run_path(settings, spec, shard)
    return RunDir(path)


def _overwrite(run: RunDir, settings: EvalSettings, spec: TaskSpec, shard: str | None) -> RunDir:
    """Remove an existing run (under its lock, so that a running `eval` is never pulled from under)."""
    with RunLock(run.path):
        shutil.rmtree(run.path)
    return run if settings.run_dir else RunDir(_run_path(settings, spec, shard))


def _check_resume(run: RunDir, old: dict, config: dict, samples_all: list[Sample], spec: TaskSpec) -> None:
    """Refuse a changed configuration naming each changed key; accept an extended selection (and record it)."""
    hint = "pass --run-dir DIR for a new run, or --overwrite to replace it"
    old_sel, new_sel = old.get("selection") or {}, config.get("selection") or {}
    if old_sel.get("shard") != new_sel.get("shard"):
        raise ConfigError(
            f"{run.path} holds shard {old_sel.get('shard') or 'none (all samples)'}, "
            f"not {new_sel.get('shard') or 'all samples'}: pass another --run-dir"
        )
    changed = changed_keys(old, config)
    old_commit = (old.get("task") or {}).get("revision_resolved")
    if changed == ["task.revision_resolved"] and old_commit:  # the hub moved under an unpinned run
        hint = f"--data-revision {old_commit} finishes it on the data it started with; {hint}"
    if changed:
        raise ConfigError(
            f"{run.path} was run with a different configuration (changed: {', '.join(changed)}); {hint}"
        )
    if all(old_sel.get(k) == new_sel.get(k) for k in ("limit", "ids")):
        return
    try:
        before = {s.id for s in _select(samples_all, old_sel.get("ids"), old_sel.get("limit"), spec)}
    except ConfigError:
        before = set()
    now = {s.id for s in _select(samples_all, new_sel.get("ids"), new_sel.get("limit"), spec)}
    if not before <= now:
        keys = [f"selection.{k}" for k in ("limit", "ids") if old_sel.get(k) != new_sel.get(k)]
        raise ConfigError(
            f"{run.path} was run on a larger selection (changed: {', '.join(keys)}; "
            f"{len(before - now)} of its samples would be left out); {hint}"
        )
    kept = {k: old[k] for k in ("created",) if k in old}
    run.write_config({**config, **kept})  # an extended run: the same run, more samples


def _search_tool(settings: EvalSettings) -> tuple[object, dict]:
    from matbench.tools.search import CachedSearch, get_search_backend

    cache_dir = Path(settings.cache_dir) if settings.cache_dir else None
    # --compat strict: every organic result Serper returns is used, as in the authors' script.
    strict = (
        {"all_results": True} if settings.compat == "strict" and settings.search.strip() == "serper" else {}
    )
    # A replay (`--search-cache read`) needs no API key: every answer must come from the cache.
    backend = get_search_backend(
        settings.search, offline=settings.search_cache == "read", cache_dir=cache_dir, **strict
    )
    cached = CachedSearch(
        backend, (cache_dir / "search.sqlite") if cache_dir else None, mode=settings.search_cache
    )
    return cached, {"backend": backend.name, "spec": settings.search, "params": backend.params()}


def plan_task(settings: EvalSettings, name: str, model_config: dict, shared: dict) -> TaskPlan:
    spec = get_task(name)
    resolved = resolve_protocol(
        spec,
        settings.protocol,
        settings.protocol_file,
        authors_repo=settings.authors_repo,
        cache_dir=Path(settings.cache_dir) if settings.cache_dir else _default_cache_dir(),
    )
    templates = resolved.templates
    native = templates.layout == "tools"  # native function calling (episode_tools.py)
    if native and not backend_class(str(model_config.get("backend"))).native_tools:
        raise ConfigError(
            "--protocol tools needs an OpenAI-compatible endpoint (an API model, or `vllm serve "
            "--enable-auto-tool-choice` with --base-url); the in-process engine has no tool calls"
        )
    direct = templates.layout == "direct"
    scoring = settings.scoring or spec.default_scoring
    get_scorer(scoring)  # unknown scoring fails here, before any call
    local = bool(settings.data_dir or settings.data_file)
    revision = None if local else (settings.data_revision or spec.data.get("revision"))
    data_commit = None if local else resolve_commit(spec, revision)  # load exactly this commit, record it
    samples_all = load_samples(
        spec, data_dir=settings.data_dir, data_file=settings.data_file, revision=data_commit or revision
    )
    samples = _select(samples_all, settings.ids, settings.limit, spec)
    n_selected = len(samples)  # all shards' samples: the same in every shard's configuration
    shard = parse_shard(settings.shard) if settings.shard else None
    if shard is not None:
        samples = shard.select(samples)
    limits = spec.limits
    crop_assist = (
        bool(spec.options.get("crop_assist", False)) if settings.crop_assist is None else settings.crop_assist
    )
    exec_scope = (
        exec_scope_for(settings.exec_scope, templates) if "code" in spec.tools and not direct else None
    )
    fixed = spec_limits(spec, direct, resolved.max_new_tokens)
    max_new_tokens = fixed["max_new_tokens"]
    if native and model_config.get("reasoning_model"):  # room for the reasoning the tokens limit also counts
        max_new_tokens = int(templates.data.get("max_new_tokens_reasoning", max_new_tokens))
    if settings.max_new_tokens:  # --max-new-tokens wins over the protocol's and the task's limit
        max_new_tokens = int(settings.max_new_tokens)
    options = EpisodeOptions(
        max_calls=fixed["max_calls"],
        max_new_tokens=max_new_tokens,
        top_k=fixed["top_k"],
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
        crop_assist=crop_assist and spec.kind == "coding" and not direct and not native,
        compat=settings.compat,
        exec_globals=templates["imports"] if exec_scope == "authors" else None,
    )
    tools = Tools()
    search_info = sandbox_info = None
    search_cache = None
    if "search" in spec.tools and not direct:
        if "search" not in shared:
            shared["search"] = _search_tool(settings)
        search_cache, search_info = shared["search"]
        tools.search = search_cache
        search_info = {**search_info, "cache": search_cache.mode}  # "auto" resolved: off for local BM25
    if "code" in spec.tools and not direct:
        from matbench.tools.sandbox_policy import open_code_sandbox, sandbox_config

        timeout = settings.code_timeout or float(limits.get("code_timeout", 60))
        key = ("sandbox", timeout)
        if key not in shared:
            workers, unsafe = settings.sandbox_workers, settings.unsafe_no_sandbox
            shared[key] = open_code_sandbox(spec.name, timeout, workers, unsafe)
        tools.sandbox = shared[key]
        sandbox_info = {**sandbox_config(tools.sandbox, timeout), "exec_scope": exec_scope}
    semantic_model, model_runtime = split_config(model_config)  # models/base.py owns the list
    config = {
        "matbench_version": __version__,
        "git_commit": _git_commit(),
        "created": utc_stamp(),
        "task": {
            "name": spec.name,
            "version": spec.version,
            "source": spec.source_label() if not (settings.data_dir or settings.data_file) else "local",
            "data_dir": os.path.abspath(settings.data_dir) if settings.data_dir else None,
            "data_file": os.path.abspath(settings.data_file) if settings.data_file else None,
            "n_samples": n_selected,
            "spec_sha256": file_sha256(spec.path),
            "revision": revision,
            # A 40-hex hub commit: the exact data. Anything else (none, a branch) can move under the run.
            "revision_pinned": None if local else bool(revision and is_commit(revision)),
        },
        "model": {"spec": settings.model, **semantic_model},
        "model_runtime": model_runtime,
        "protocol": {
            **resolved.config(custom=bool(settings.protocol_file)),
            **({"tools": _tools_protocol(templates, tools, options, model_config)} if native else {}),
        },
        # Where the authors' script was read from (not part of the fingerprint: any copy at the commit).
        "protocol_source": ({k: templates.source[k] for k in ("via", "path")} if templates.source else None),
        "scoring": scoring,
        "search": search_info,
        "sandbox": sandbox_info,
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
            # OpenAI-compatible endpoints: exactly what every request body carries besides the messages
            # (what is not sent is the server's default, e.g. the checkpoint's generation config).
            "sent": sent_decoding(model_config, options),
        },
        "seed": settings.seed,
        "selection": {
            "limit": settings.limit,
            "ids": settings.ids,
            "shard": str(shard) if shard else None,
            "shard_samples": len(samples) if shard else None,
        },
        "packages": _packages(),
    }
    if not local:  # the commit the hub data was loaded from (None: neither the hub nor the cache could tell)
        config["task"]["revision_resolved"] = data_commit
    effective = effective_decoding(model_config, options)
    if effective is not None:  # in-process engines: the SamplingParams every request gets
        config["decoding"]["effective"] = effective
    config["fingerprint"] = config_fingerprint(config)
    shard_label = config["selection"]["shard"]
    run = _resolve_run_dir(settings, spec, shard_label)
    if run.exists() and settings.overwrite:
        run = _overwrite(run, settings, spec, shard_label)
    plan = TaskPlan(
        spec, templates, samples, list(samples), run, config, options, scoring, tools, search_cache
    )
    if native:
        from matbench.episode_tools import ToolsEpisode

        plan.episode_cls = ToolsEpisode
    if not run.exists():
        plan.totals = RunTotals(spec, scoring)
        return plan
    plan.lock = RunLock(run.path).acquire()  # resume: under the run's lock, after cutting a torn last line
    try:
        old = run.read_config()
        if sandbox_info is not None:
            from matbench.tools.sandbox_policy import check_resume

            check_resume(old, sandbox_info, run.path)
        _check_resume(run, old, config, samples_all, spec)
        cut = run.repair()
        if cut:
            log.warning("%s: cut a torn last line (%d bytes) before resuming", run.predictions_path, cut)
        plan.totals = RunTotals.from_run(run, spec, scoring)  # one pass over the file, small rows per id
    except BaseException:
        plan.lock.release()
        raise
    plan.todo = [s for s in samples if not plan.totals.finished(s.id, retry_errors=settings.retry_errors)]
    print(f"resuming: {len(samples) - len(plan.todo)}/{len(samples)} done ({run.path})", file=sys.stderr)
    return plan


def open_run(plan: TaskPlan) -> None:
    """Create a new run's directory (only once every task is planned, so a refusal leaves nothing behind)."""
    if plan.lock is not None:
        return
    plan.run.path.mkdir(parents=True, exist_ok=True)
    plan.lock = RunLock(plan.run.path).acquire()
    if plan.run.exists():  # another `eval` made it since this one planned: resume it instead, never twice
        plan.lock.release()
        raise ConfigError(f"{plan.run.path} was just started by another `matbench eval`; rerun to resume it")
    plan.run.create(plan.config)


def _tools_protocol(templates: Templates, tools: Tools, options: EpisodeOptions, model_config: dict) -> dict:
    """What config.json records of a native tool-calling run: functions, how it ends, budget, API shape."""
    from matbench.protocols.native_tools import declare

    task_tools = tuple(t for t, on in (("search", tools.search), ("code", tools.sandbox)) if on)
    declared = declare(templates, task_tools)
    return {
        "functions": [t.name for t in declared.specs],
        "final": declared.final,
        "max_model_calls": options.max_calls,
        "tool_call_budget": options.max_calls,
        "api": model_config.get("api"),
    }


def build_model(settings: EvalSettings):
    from matbench.models import get_model
    from matbench.models.cache import CachedModel

    model = get_model(
        settings.model,
        base_url=settings.base_url,
        api_key_env=settings.api_key_env,
        max_concurrency=settings.max_concurrency,
        **settings.model_options,
    )
    model.preflight()  # HTTP: GET /models; a dead or wrong endpoint ends here, before any run directory
    if settings.response_cache:
        cache_dir = Path(settings.cache_dir) if settings.cache_dir else _default_cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        model = CachedModel(model, cache_dir / "responses.sqlite")
    return model


def _default_cache_dir() -> Path:
    return Path(os.environ.get("MATBENCH_CACHE_DIR") or Path.home() / ".cache" / "matbench")


# --- scheduling ----------------------------------------------------------------------------------------------
async def run_concurrent(
    episodes: Iterable[Callable[[], Episode | None]],
    model,
    limit: int,
    on_done,
    on_output=None,
    split: TimeSplit | None = None,
) -> None:
    """HTTP models: ``limit`` workers take episodes from one iterator, so at most ``limit`` are in flight and
    an episode (and its task) exists only while it runs: memory does not grow with the number of samples.
    A maker returning None leaves its sample unstarted (``--max-cost`` reached)."""
    makers = iter(episodes)
    clock = time.perf_counter

    async def worker() -> None:
        for make in makers:  # the event loop's one thread: next() on the shared iterator is never concurrent
            ep = make()
            if ep is None:
                continue
            try:
                while not ep.done:
                    t0 = clock()
                    (out,) = await model.generate([ep.request()])
                    t1 = clock()
                    if on_output is not None:
                        on_output(out)
                    await ep.advance(out)
                    if split is not None:
                        split.add_call(t1 - t0, clock() - t1)
            except DiskFull:
                raise  # the environment, not the sample: the run stops and a rerun finishes it
            except Exception as exc:  # noqa: BLE001 - one broken episode must not end the run
                log.exception("sample %s failed in the harness", ep.sample.id)
                ep.fail(exc)
            on_done(ep)

    await asyncio.gather(*(worker() for _ in range(max(1, limit))))


async def run_lockstep(
    episodes: Iterable[Callable[[], Episode | None]],
    model,
    on_done,
    split: TimeSplit | None = None,
    window: int = 1024,
) -> None:
    """In-process engines: ONE batched generate per round over all live episodes, then the round's tools.

    At most ``window`` episodes are alive; each round's finished ones are replaced from the queue, so a round
    stays a large batch while memory stays bounded by the window, not by the number of samples."""
    clock = time.perf_counter
    makers = iter(episodes)

    async def timed(ep: Episode, out, took: list[float]) -> None:
        t = clock()
        try:
            await ep.advance(out)
        finally:
            took.append(clock() - t)

    live: list[Episode] = []

    def refill() -> None:
        while len(live) < window:
            make = next(makers, None)
            if make is None:
                return
            ep = make()
            if ep is None:  # --max-cost reached: the sample is left unstarted
                continue
            if ep.done:  # an input error: recorded without a model call
                on_done(ep)
            else:
                live.append(ep)

    refill()
    while live:
        t0 = clock()
        outs = await model.generate([ep.request() for ep in live])
        t1 = clock()
        took: list[float] = []
        results = await asyncio.gather(
            *(timed(ep, out, took) for ep, out in zip(live, outs, strict=True)), return_exceptions=True
        )
        if split is not None:
            split.add_round(len(live), t1 - t0, took, clock() - t1)
        for ep, result in zip(live, results, strict=True):
            if isinstance(result, DiskFull):
                raise result
            if isinstance(result, Exception):  # one broken episode must not end the round
                log.error("sample %s failed in the harness: %r", ep.sample.id, result)
                ep.fail(result)
        for ep in live:
            if ep.done:
                on_done(ep)
        live = [ep for ep in live if not ep.done]
        refill()


# --- one task ------------------------------------------------------------------------------------------------
def summarize(plan: TaskPlan, duration: float, model=None, meter: SpendMeter | None = None) -> dict:
    """The summary from the running totals (loaded once at resume, added to as samples finish)."""
    totals = plan.totals if plan.totals is not None else RunTotals.from_run(plan.run, plan.spec, plan.scoring)
    summary = totals.summary(
        model=plan.config["model"]["spec"],
        run_dir=str(plan.run.path),
        fingerprint=plan.config["fingerprint"],
        sample_ids=[s.id for s in plan.samples],
        duration=duration,
    )
    run = summary["run"]
    run["cost"] = totals.cost(plan.price)
    if meter is not None:
        run["max_cost"] = {
            "limit_usd": meter.limit,
            "spent_usd": round(meter.spent, 6),
            "not_started": meter.skipped,
        }
    if plan.search_cache is not None and hasattr(plan.search_cache, "stats"):
        run["search_cache"] = plan.search_cache.stats()
    if model is not None and hasattr(model, "stats"):
        run["response_cache"] = model.stats()
    endpoints = getattr(getattr(model, "model", model), "endpoint_stats", None)
    if endpoints is not None:
        run["endpoints"] = endpoints()
    if plan.time_split is not None:
        run["time_split"] = plan.time_split.to_dict(duration)
    plan.run.write_summary(summary)
    return summary


class _Progress:
    """A tqdm bar with live F1/EM, calls, tool errors and failures (stderr; off with --no-progress)."""

    def __init__(self, plan: TaskPlan, enabled: bool):
        self.n = self.f1 = self.em = 0.0
        self.calls = self.tool_errors = self.failures = 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=len(plan.todo), desc=plan.spec.name, unit="sample", file=sys.stderr, dynamic_ncols=True
            )

    def update(self, rec: SampleRecord) -> None:
        self.n += 1
        self.f1 += rec.f1
        self.em += rec.em
        self.calls += rec.turns
        self.tool_errors += rec.tool_errors
        self.failures += rec.status != "ok"
        if self.bar is not None:
            self.bar.set_postfix(
                F1=f"{100 * self.f1 / self.n:.1f}",
                EM=f"{100 * self.em / self.n:.1f}",
                calls=self.calls,
                tool_err=self.tool_errors,
                fail=self.failures,
                refresh=False,
            )
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _run_plan(plan: TaskPlan, model, settings: EvalSettings, meter: SpendMeter | None = None) -> None:
    scorer = get_scorer(plan.scoring, cjk=plan.spec.cjk)
    progress = _Progress(plan, settings.progress)

    def make(sample: Sample) -> Callable[[], Episode | None]:
        def start() -> Episode | None:
            if meter is not None and meter.exhausted:
                meter.skipped += 1
                return None
            return plan.episode_cls(
                sample, plan.templates, plan.tools, plan.options, plan.run.path, task=plan.spec.name
            )

        return start

    def on_done(ep: Episode) -> None:
        rec = ep.record(scorer)
        plan.run.append(rec)
        if plan.totals is not None:
            plan.totals.add(rec.to_dict())
        progress.update(rec)

    lockstep = bool(getattr(model, "lockstep", False))
    plan.time_split = TimeSplit("lockstep" if lockstep else "concurrent")
    try:
        makers = (make(s) for s in plan.todo)
        if lockstep:
            await run_lockstep(makers, model, on_done, plan.time_split, max(1, settings.lockstep_window))
        else:
            await run_concurrent(
                makers,
                model,
                settings.max_concurrency,
                on_done,
                meter.add if meter is not None else None,
                split=plan.time_split,
            )
    finally:
        progress.close()


def evaluate(settings: EvalSettings) -> list[dict]:
    """Run every task of ``settings`` with one model load; return their summaries."""
    if settings.limit is not None and settings.limit < 1:
        raise ConfigError(f"--limit must be at least 1 (got {settings.limit})")
    shared: dict = {}
    plans: list[TaskPlan] = []
    model = build_model(
        settings
    )  # an in-process engine loads here (once for every task), HTTP only preflights
    try:
        model_config = model.config()
        for name in settings.tasks:
            plans.append(plan_task(settings, name, model_config, shared))
        price = find_price(load_prices(settings.prices), {"spec": settings.model, **model_config})
        for plan in plans:
            plan.price = price
            open_run(plan)
        meter = _spend_meter(settings, plans, model, price)
        if model.notice():  # e.g. a model the model table does not know: its defaults, said once
            log.warning(model.notice())
        return asyncio.run(_evaluate(plans, model, settings, meter))
    finally:
        for plan in plans:
            if plan.lock is not None:
                plan.lock.release()
        for key, tool in shared.items():
            closer = getattr(tool[0] if key == "search" else tool, "close", None)
            if closer:
                closer()


def _spend_meter(
    settings: EvalSettings, plans: list[TaskPlan], model, price: Price | None
) -> SpendMeter | None:
    """``--max-cost``: one budget for the whole invocation, counting what the resumed runs already spent."""
    if settings.max_cost is None:
        return None
    if price is None:
        raise ConfigError(
            f"--max-cost needs a price for {settings.model}, which the price table lacks: "
            "add it with --prices FILE (model: input, cached_input, output, checked)"
        )
    if getattr(model, "lockstep", False):
        raise ConfigError("--max-cost needs an HTTP model (an in-process engine starts every sample at once)")
    already = 0.0
    for plan in plans:
        totals = (
            plan.totals if plan.totals is not None else RunTotals.from_run(plan.run, plan.spec, plan.scoring)
        )
        already += totals.spent(price)
    return SpendMeter(settings.max_cost, price, already)


async def _evaluate(
    plans: list[TaskPlan], model, settings: EvalSettings, meter: SpendMeter | None = None
) -> list[dict]:
    loop = asyncio.get_running_loop()
    # Search and sandbox calls run in threads: enough of them for every episode in flight.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=max(8, min(settings.max_concurrency, 128))))
    summaries = []
    try:
        for plan in plans:
            open_run(plan)
        for plan in plans:
            start = time.monotonic()
            await _run_plan(plan, model, settings, meter)
            summaries.append(summarize(plan, time.monotonic() - start, model, meter))
    finally:
        for plan in plans:
            if plan.lock is not None:
                plan.lock.release()
        await model.aclose()
    return summaries
