"""`matbench eval`: run every planned sample as an episode, record, summarise (planning: matbench/run/plan.py).

Schedulers: HTTP models get every episode concurrently, bounded by ``--max-concurrency``; an in-process engine
(``model.lockstep``) gets ONE batched call per round over all live episodes, then the round's tool calls run
in parallel and finished episodes drop out. Each finished sample is appended and flushed at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from matbench.caches.location import usable_cache_dir
from matbench.data.sample import Sample
from matbench.errors import ConfigError, Interrupted
from matbench.models.cache import CACHE_SCOPE
from matbench.models.cost import Price, SpendMeter, find_price, load_prices
from matbench.net.transport import Notice, listening
from matbench.records.run_dir import DiskFull, RunDir, SampleRecord
from matbench.run.config import FINGERPRINT_KEYS as FINGERPRINT_KEYS  # merge.py imports it from here
from matbench.run.episode import Episode
from matbench.run.options import EvalSettings as EvalSettings  # tests and bench import it here
from matbench.run.plan import TaskPlan as TaskPlan
from matbench.run.plan import default_cache_dir
from matbench.run.plan import plan_task as plan_task
from matbench.run.rundir import open_run
from matbench.run.timesplit import TimeSplit
from matbench.scoring.reader import RunScorer
from matbench.scoring.totals import RunTotals

log = logging.getLogger(__name__)


# --- the model ----------------------------------------------------------------------------------------------
def build_model(settings: EvalSettings):
    from matbench.models import get_model
    from matbench.models.cache import CachedModel

    options = dict(settings.model_options)
    if settings.request_timeout is not None:  # HTTP backends: each request's deadline, the whole reply read
        options.setdefault("timeout", settings.request_timeout)
    model = get_model(
        settings.model,
        base_url=settings.base_url,
        api_key_env=settings.api_key_env,
        max_concurrency=settings.max_concurrency,
        **options,
    )
    model.preflight()  # HTTP: GET /models; a dead or wrong endpoint ends here, before any run directory
    if settings.response_cache is not False:  # None: this run's own answers only (the scope, _run_plan)
        cache_dir = usable_cache_dir(settings.cache_dir or default_cache_dir())
        model = CachedModel(model, cache_dir / "responses.sqlite")
    return model


# --- scheduling ----------------------------------------------------------------------------------------------
async def run_concurrent(
    episodes: Iterable[Callable[[], Episode | None]],
    model,
    limit: int,
    on_done,
    meter: SpendMeter | None = None,
    split: TimeSplit | None = None,
) -> None:
    """HTTP models: ``limit`` workers take episodes from one iterator, so at most ``limit`` are in flight and
    an episode (and its task) exists only while it runs: memory does not grow with the number of samples.
    A maker returning None leaves its sample unstarted (``--max-cost`` reached); with ``meter``, every model
    call is admitted by it first, and an episode it refuses stops unrecorded (a resume redoes it)."""
    makers = iter(episodes)
    clock = time.perf_counter

    async def worker() -> None:
        for make in makers:  # the event loop's one thread: next() on the shared iterator is never concurrent
            ep = make()
            if ep is None:
                continue
            try:
                while not ep.done:
                    request = ep.request()
                    ticket = await meter.admit() if meter is not None else None
                    if meter is not None and ticket is None:
                        meter.stopped += 1
                        break
                    t0 = clock()
                    out = None
                    try:
                        (out,) = await model.generate([request])
                    finally:
                        if ticket is not None:
                            await meter.settle(ticket, out, request.max_new_tokens)
                    t1 = clock()
                    await ep.advance(out)
                    if split is not None:
                        split.add_call(t1 - t0, clock() - t1)
            except DiskFull:
                raise  # the environment, not the sample: the run stops and a rerun finishes it
            except Exception as exc:  # noqa: BLE001 - one broken episode must not end the run
                log.exception("sample %s failed in the harness", ep.sample.id)
                ep.fail(exc)
            if ep.done:
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
        layout=(plan.config.get("protocol") or {}).get("layout"),
    )
    run = summary["run"]
    run["cost"] = totals.cost(plan.price)
    if meter is not None:
        run["max_cost"] = meter.block()
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
    """A tqdm bar with live F1/EM, calls, tool errors and failures (stderr; off with --no-progress), and what
    the transport is waiting for (``wait``: status, attempt, next try) while an endpoint fails."""

    def __init__(self, plan: TaskPlan, enabled: bool):
        self.n = self.f1 = self.em = 0.0
        self.calls = self.tool_errors = self.failures = 0
        self.postfix: dict[str, object] = {}
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
            self.postfix.update(
                F1=f"{100 * self.f1 / self.n:.1f}",
                EM=f"{100 * self.em / self.n:.1f}",
                calls=self.calls,
                tool_err=self.tool_errors,
                fail=self.failures,
            )
            self.bar.set_postfix(self.postfix, refresh=False)
            self.bar.update(1)

    def notice(self, notice: Notice) -> None:
        """A retry or a recovery seen by the transport: shown at once (the bar may not move for a while)."""
        if self.bar is None:
            return
        if notice.kind == "retry":
            self.postfix["wait"] = (
                f"{notice.error[:40]} try {notice.attempt + 1}/{notice.max_attempts} in {notice.delay:.1f}s"
            )
        else:
            self.postfix.pop("wait", None)
        self.bar.set_postfix(self.postfix, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _run_plan(
    plan: TaskPlan, model, settings: EvalSettings, meter: SpendMeter | None = None, judging=None
) -> None:
    scorer = RunScorer(plan.spec, plan.scoring)
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
        if judging is not None:
            judging.on_record(plan.run.path, rec.to_dict())
        if plan.totals is not None:
            plan.totals.add(rec.to_dict())
        progress.update(rec)

    lockstep = bool(getattr(model, "lockstep", False))
    plan.time_split = TimeSplit("lockstep" if lockstep else "concurrent")
    scope = CACHE_SCOPE.set("" if settings.response_cache else cache_scope(plan.run))
    try:
        makers = (make(s) for s in plan.todo)
        with listening(progress.notice):  # retries and backoff show in the bar while they happen
            if lockstep:
                await run_lockstep(makers, model, on_done, plan.time_split, max(1, settings.lockstep_window))
            else:
                await run_concurrent(
                    makers, model, settings.max_concurrency, on_done, meter, split=plan.time_split
                )
    finally:
        CACHE_SCOPE.reset(scope)
        progress.close()


def cache_scope(run: RunDir) -> str:
    """A run's own response-cache scope: its directory and identity, stable across resumes (a new run in the
    same place, ``--overwrite`` within the same second included, is another run)."""
    config = run.read_config()
    return f"run:{run.path.resolve()}:{config.get('created')}:{config.get('run_id')}"


def _nothing_to_do(plan: TaskPlan) -> dict | None:
    """A finished run resumed with nothing left to run keeps its summary as it was (duration, calls, time
    split: rewriting them would report a 0.008 s run of zero calls); None when there is work to do."""
    if plan.todo:
        return None
    old = plan.run.read_summary()
    run = (old or {}).get("run") or {}
    if not run.get("finished") or run.get("fingerprint") != plan.config["fingerprint"]:
        return None  # no summary yet, or one of an unfinished run: write it
    print(f"nothing to do: all {len(plan.samples)} samples are recorded; summary unchanged ({plan.run.path})",
          file=sys.stderr)
    return old


def _saved(plan: TaskPlan) -> int:
    if plan.totals is not None:
        return len(plan.totals.ids())
    return sum(1 for _ in plan.run.iter_records()) if plan.run.exists() else 0


def evaluate(settings: EvalSettings) -> list[dict]:
    """Run every task of ``settings`` with one model load; return their summaries."""
    if settings.limit is not None and settings.limit < 1:
        raise ConfigError(f"--limit must be at least 1 (got {settings.limit})")
    shared: dict = {}
    plans: list[TaskPlan] = []
    judging = None
    if getattr(settings, "judge", None):  # the judge's preflight and strings first: before a model loads
        from matbench.judge.during_eval import EvalJudging
        from matbench.judge.loop import Judge, JudgeSettings

        judging = EvalJudging(Judge(JudgeSettings.of(settings)))
    try:
        model = build_model(
            settings
        )  # an in-process engine loads here (once for every task), HTTP only preflights
    except BaseException:
        if judging is not None:
            judging.judge.close()
        raise
    try:
        for name in settings.tasks:
            plans.append(plan_task(settings, name, model, shared))
        price = find_price(load_prices(settings.prices), {"spec": settings.model, **model.config()})
        for plan in plans:
            plan.price = price
        meter = _spend_meter(settings, plans, model, price)  # a refusal here leaves no run directory behind
        for plan in plans:
            open_run(plan)
        if model.notice():  # e.g. a model the model table does not know: its defaults, said once
            log.warning(model.notice())
        return asyncio.run(_evaluate(plans, model, settings, meter, judging))
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say what is saved, the caller says how to resume
        raise Interrupted([(str(p.run.path), _saved(p), len(p.samples)) for p in plans]) from exc
    finally:
        if judging is not None:
            judging.judge.close()  # when no run started (a refusal while planning); else closed already
        for plan in plans:
            if plan.lock is not None:
                plan.lock.release()
        for backend in shared.values():  # tool back-ends opened once per invocation (matbench/tools/)
            closer = getattr(backend, "close", None)
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
    plans: list[TaskPlan], model, settings: EvalSettings, meter: SpendMeter | None = None, judging=None
) -> list[dict]:
    loop = asyncio.get_running_loop()
    # Search and sandbox calls run in threads: enough of them for every episode in flight.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=max(8, min(settings.max_concurrency, 128))))
    summaries = []
    try:
        for plan in plans:
            open_run(plan)
            if judging is not None:
                judging.start(plan.run.path)
        for plan in plans:
            unchanged = _nothing_to_do(plan)
            if unchanged is not None:
                if judging is not None:  # the finished run's judgments: only the judge block changes
                    unchanged["judge"] = await judging.finish(plan.run.path, plan.run.iter_records())
                    plan.run.write_summary(unchanged)
                summaries.append(unchanged)
                continue
            start = time.monotonic()
            await _run_plan(plan, model, settings, meter, judging)
            summary = summarize(plan, time.monotonic() - start, model, meter)
            if judging is not None:
                summary["judge"] = await judging.finish(plan.run.path, plan.run.iter_records())
                plan.run.write_summary(summary)
            summaries.append(summary)
    finally:
        for plan in plans:
            if plan.lock is not None:
                plan.lock.release()
        try:
            await model.aclose()
        finally:
            if judging is not None:
                await judging.judge.aclose()
    return summaries
