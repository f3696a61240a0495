"""The judging loop: a judge model built on matbench's Model backends, one sample at a time, concurrently.

The judge is an ordinary model spec (alias, ``openai:NAME``, any OpenAI-compatible server via a base URL), so
it gets eval's endpoint preflight (a dead or refusing endpoint fails in one line before any call), its
retries, the response cache (keyed by the judge's identity, i.e. endpoint, served model and decoding, and the
full request: system message, text, images by content) and the price table. The evaluated model is never
called: the judge reads ``predictions.jsonl``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matbench.errors import ConfigError
from matbench.judge.prompts import DEFAULT_PROMPT, MAX_NEW_TOKENS, TEMPERATURE, JudgeItem, make_prompt
from matbench.judge.records import Judgment, JudgmentsFile
from matbench.models.base import ChatRequest, ModelOutput
from matbench.models.cost import Price, SpendMeter, add_usage, find_price, load_prices, usage_of
from matbench.records.files import resolve_run_file
from matbench.records.run_dir import cap_text, fingerprint


@dataclass
class JudgeSettings:
    """What `matbench judge` and `matbench eval --judge` take (``--judge*`` options)."""

    model: str
    base_url: str | list[str] | None = None
    api_key_env: str | None = None
    prompt: str = DEFAULT_PROMPT
    judge_repo: str | None = None  # a copy of SenseNova-MARS (else $MATBENCH_SENSENOVA_REPO, the cache)
    vision: bool = True  # send the sample's image when the judge takes images (--judge-text-only: never)
    max_concurrency: int = 16
    max_cost: float | None = None
    response_cache: bool = True
    cache_dir: str | None = None
    prices: str | None = None
    overwrite: bool = False
    request_timeout: float | None = None  # each judge call's deadline (eval's --request-timeout); None: 600 s

    @classmethod
    def of(cls, given: Any, *, max_cost: float | None = None) -> JudgeSettings | None:
        """From parsed `matbench judge` arguments or an EvalSettings (the same option names, declared once in
        run/options.py); None when no ``--judge`` was given."""
        if not getattr(given, "judge", None):
            return None
        return cls(
            model=given.judge,
            base_url=given.judge_base_url,
            api_key_env=given.judge_api_key_env,
            prompt=given.judge_prompt,
            judge_repo=given.judge_repo,
            vision=not given.judge_text_only,
            max_concurrency=given.judge_concurrency,
            max_cost=max_cost,
            response_cache=getattr(given, "response_cache", True),
            cache_dir=getattr(given, "cache_dir", None),
            prices=getattr(given, "prices", None),
            overwrite=given.judge_overwrite,
            request_timeout=getattr(given, "request_timeout", None),
        )


def default_cache_dir() -> Path:
    return Path(os.environ.get("MATBENCH_CACHE_DIR") or Path.home() / ".cache" / "matbench")


class Judge:
    """A ready judge: model preflighted and cached, prompt strings read and checked, price found."""

    def __init__(self, settings: JudgeSettings) -> None:
        from matbench.models import get_model, resolve_spec
        from matbench.models.cache import CachedModel

        self.settings = settings
        cache_dir = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
        spec = resolve_spec(
            settings.model, settings.base_url[0] if isinstance(settings.base_url, list) else settings.base_url
        )
        if spec.backend != "openai":
            raise ConfigError(
                f"--judge {settings.model}: the judge needs an OpenAI-compatible endpoint (an API model, or "
                "`vllm serve` with --judge-base-url URL)"
            )
        from matbench.models.capabilities import info

        # the image goes to a judge that takes images (the model table; a model not in it is assumed to)
        self.vision = settings.vision and info(spec.model_id).images
        self._tmp = tempfile.TemporaryDirectory(prefix="matbench-judge-")
        self.prompt = make_prompt(
            settings.prompt,
            judge_repo=settings.judge_repo,
            cache_dir=cache_dir,
            image_dir=Path(self._tmp.name),
        )
        options: dict[str, Any] = {"timeout": settings.request_timeout}  # None: the adapter's default
        if settings.prompt == "sensenova-mars" and "qwen3" in spec.model_id.lower():
            # their loop sends this to Qwen3 judges (vLLM): no thinking tokens
            options["extra_body"] = {"chat_template_kwargs": {"enable_thinking": False}}
        model = get_model(
            settings.model,
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            max_concurrency=settings.max_concurrency,
            **options,
        )
        model.preflight()  # GET /models: a dead, refusing or wrong endpoint ends here, before any call
        if settings.response_cache:
            cache_dir.mkdir(parents=True, exist_ok=True)
            model = CachedModel(model, cache_dir / "responses.sqlite")
        self.model = model
        # a reasoning model takes no temperature (it samples): sent unset, so the response cache, which keeps
        # only answers that are a function of the request, never replays its verdicts
        self.temperature = None if model.config().get("reasoning_model") else TEMPERATURE
        self.price: Price | None = find_price(
            load_prices(settings.prices), {"spec": settings.model, **model.config()}
        )
        self.meter: SpendMeter | None = None
        if settings.max_cost is not None:
            if self.price is None:
                raise ConfigError(
                    f"--max-cost needs a price for the judge {settings.model}, which the price table lacks: "
                    "add it with --prices FILE (model: input, cached_input, output, checked)"
                )
            self.meter = SpendMeter(settings.max_cost, self.price)
        self.skipped = 0
        self.closed = False
        self._sem: asyncio.Semaphore | None = None
        self.config = self._config()

    def _config(self) -> dict:
        model_cfg = self.model.config()
        identity = {
            k: model_cfg.get(k) for k in ("backend", "model", "base_url", "served_model", "api", "extra_body")
        }
        cfg = {
            "model": self.settings.model,
            "identity": identity,
            "prompt": self.prompt.name,
            "source": self.prompt.source,
            "vision": self.vision,
            "decoding": {"temperature": self.temperature, "max_new_tokens": MAX_NEW_TOKENS},
            "deviations": self.prompt.deviations,
            "price": self.price.to_dict() if self.price else None,
        }
        # who judges, not where: the same served model behind another URL (a restarted server) continues
        semantic = {k: cfg[k] for k in ("prompt", "vision", "decoding")}
        semantic["identity"] = {k: v for k, v in identity.items() if k != "base_url"}
        semantic["strings"] = (self.prompt.source or {}).get("strings_sha256") or (
            self.prompt.source or {}
        ).get("sha256")
        cfg["fingerprint"] = fingerprint(semantic)
        return cfg

    async def judge(self, item: JudgeItem) -> Judgment | None:
        """One sample's judgment (API failures become ``error``), or None when ``--max-cost`` is spent."""
        plan = self.prompt.plan(item, self.vision)
        base = dict(
            id=item.id, split=item.split, method=plan.method, answer=cap_text(item.prediction), em=item.em
        )
        base["judge"] = self.config["fingerprint"]
        if plan.verdict is not None or not plan.calls:  # decided without a call (no gold answer: incorrect)
            why = {"em_match": "exact match", "no_answer": "no answer"}.get(plan.method, "no gold answer")
            return Judgment(verdict=plan.verdict or "incorrect", reason=why, **base)
        for call in plan.calls:
            call.request.temperature = self.temperature
        if self._sem is None:
            self._sem = asyncio.Semaphore(max(1, self.settings.max_concurrency))
        async with self._sem:
            if self.meter is not None and self.meter.exhausted:  # --max-cost: no new sample once spent
                self.skipped += 1
                return None
            if self.meter is None:
                outs = await self.model.generate([c.request for c in plan.calls])
            else:  # every call admitted by the meter, as eval's: a sample cut short is judged by a rerun
                got = await asyncio.gather(*(self._metered(c.request) for c in plan.calls))
                if any(o is None for o in got):
                    self.skipped += 1
                    return None
                outs = [o for o in got if o is not None]
        tokens: dict[str, int] = {}
        billed: dict[str, int] = {}
        calls, verdicts, errors = [], [], []
        for call, out in zip(plan.calls, outs, strict=True):
            usage = usage_of(out)
            add_usage(tokens, usage)
            if not out.cached:
                add_usage(billed, usage)
            said = None if out.error is not None or out.text is None else self.prompt.parse(out.text)
            verdict = (
                "error"
                if out.error is not None
                else ("unparsed" if said is None else ("correct" if said else "incorrect"))
            )
            verdicts.append(verdict)
            if out.error is not None:
                errors.append(out.error)
            calls.append(
                {
                    "gold": call.gold,
                    "verdict": verdict,
                    "reply": cap_text(out.text),
                    "reply_chars": None if out.text is None else len(out.text),
                    "tokens": usage,
                    "cached": out.cached,
                    "latency": round(out.latency, 4),
                    "error": out.error,
                }
            )
        # their max over gold answers: one Yes decides; an API failure leaves the sample to be judged again
        if "correct" in verdicts:
            final = "correct"
        elif errors:
            final = "error"
        elif "unparsed" in verdicts:
            final = "unparsed"
        else:
            final = "incorrect"
        decider = next((c for c in calls if c["verdict"] == final), calls[-1])
        reply = decider["reply"]
        return Judgment(
            verdict=final,
            reason=self.prompt.reason(reply) if reply else None,
            reply=reply,
            reply_chars=decider["reply_chars"],
            calls=calls,
            tokens=tokens,
            billed_tokens=billed,
            cost_usd=round(self.price.cost(tokens), 8) if self.price else None,
            error="; ".join(errors) if final == "error" else None,
            **base,
        )

    async def _metered(self, request: ChatRequest) -> ModelOutput | None:
        """One call admitted by ``--max-cost``'s meter (None: the limit is reached), its cost counted after."""
        assert self.meter is not None
        ticket = await self.meter.admit()
        if ticket is None:
            return None
        out = None
        try:
            out = (await self.model.generate([request]))[0]
            return out
        finally:
            await self.meter.settle(ticket, out, request.max_new_tokens)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.model.aclose()
        finally:
            self._tmp.cleanup()

    def close(self) -> None:
        """From synchronous code (no event loop running): release what :meth:`aclose` releases, once."""
        if not self.closed:
            asyncio.run(self.aclose())


def slim_record(record: dict) -> dict:
    """What the judge needs of a record (the first turn's image, not the whole trajectory)."""
    out = {k: record.get(k) for k in ("id", "split", "question", "gold", "prediction", "em", "status")}
    traj = record.get("trajectory") or []
    first = traj[0] if traj and isinstance(traj[0], dict) else {}
    out["trajectory"] = [{"image": first.get("image")}]
    return out


def item_of(record: dict, run_dir: Path) -> JudgeItem:
    """The judge's view of one ``predictions.jsonl`` record; the image is the first turn's, read safely from
    the run directory (a reference that leaves it is not followed)."""
    image = None
    traj = record.get("trajectory") or []
    ref = traj[0].get("image") if traj and isinstance(traj[0], dict) else None
    if ref:
        found = resolve_run_file(run_dir, str(ref))
        image = found.path
    gold = record.get("gold")
    pred = record.get("prediction")
    return JudgeItem(
        id=str(record.get("id")),
        split=record.get("split"),
        question=str(record.get("question") or ""),
        gold=[str(g) for g in gold] if isinstance(gold, list) else [str(gold)],
        prediction=None if pred is None else str(pred),
        em=float(record.get("em") or 0.0),
        image=image,
    )


def needs_judging(record: dict, judged: dict | None, judge_fp: str) -> bool:
    if record.get("status") == "error":  # the evaluated model's API failed: not scored, so not judged
        return False
    if judged is None or judged.get("verdict") == "error" or judged.get("judge") != judge_fp:
        return True
    pred = record.get("prediction")
    return judged.get("answer") != cap_text(None if pred is None else str(pred)) or float(
        judged.get("em") or 0.0
    ) != float(record.get("em") or 0.0)


async def judge_records(judge: Judge, out: JudgmentsFile, records: list[dict], on_done=None) -> None:
    """Judge ``records`` concurrently; each judgment is written as soon as it is made."""

    async def one(rec: dict) -> None:
        try:
            j = await judge.judge(item_of(rec, out.run_dir))
        except OSError as exc:  # an unreadable image: this sample's judging failed, the rest go on
            j = Judgment(
                id=str(rec.get("id")),
                verdict="error",
                split=rec.get("split"),
                method="llm_judge",
                answer=cap_text(rec.get("prediction")),
                em=float(rec.get("em") or 0.0),
                error=f"cannot read the sample's image: {exc}",
                judge=judge.config["fingerprint"],
            )
        if j is not None:
            out.append(j)
            if on_done is not None:
                on_done(j)

    await asyncio.gather(*(one(r) for r in records))
