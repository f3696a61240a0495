"""What config.json records about decoding: the request fields an endpoint is sent, or the sampling
parameters an in-process engine applies. Both are built from ``EpisodeOptions.request()``, the same call every
episode turn makes, so the record is what every request carries, not a restatement of the command line."""

from __future__ import annotations

from typing import Any


def sent_decoding(model_config: dict, options: Any) -> dict | None:
    """OpenAI-compatible endpoints: the body's fields besides the messages (what is not sent is the server's
    default, e.g. the checkpoint's generation config)."""
    if model_config.get("backend") != "openai":
        return None
    return sent_fields(model_config, options.request())


def sent_fields(model_config: dict, request: Any) -> dict:
    """The body fields an OpenAI-compatible endpoint is sent for ``request``, besides the messages."""
    from matbench.models.openai_api import build_body

    body = build_body(
        str(model_config.get("model")),
        request,
        reasoning=bool(model_config.get("reasoning_model")),
        reasoning_effort=model_config.get("reasoning_effort"),
        extra_body=model_config.get("extra_body"),
    )
    return {k: v for k, v in body.items() if k not in ("messages", "model")}


def effective_decoding(model_config: dict, options: Any) -> dict | None:
    """In-process vLLM: the ``SamplingParams`` fields every request gets (the checkpoint's generation config,
    then these options), e.g. temperature, top_p, top_k, repetition_penalty, max_tokens."""
    if model_config.get("backend") != "vllm":
        return None
    return engine_sampling(model_config, options.request())


def engine_sampling(model_config: dict, request: Any) -> dict:
    """The ``SamplingParams`` fields an in-process vLLM engine applies to ``request``."""
    from matbench.models.vllm_local import sampling_kwargs

    return sampling_kwargs(model_config.get("default_sampling") or {}, request, model_config.get("seed"))
