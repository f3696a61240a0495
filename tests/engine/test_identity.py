"""What vLLM receives from matbench equals the authors' Hugging Face path, token for token.

The authors' evaluation builds each prompt with ``processor.apply_chat_template(messages,
add_generation_prompt=True)`` and ``processor(text=..., images=...)`` and decodes greedily with
``model.generate``. matbench hands vLLM an OpenAI-style conversation (``build_conversation``) that vLLM
renders and processes itself. Both must give the same prompt ids, and greedy decoding the same tokens.
"""

from __future__ import annotations

import pytest
from engine_helpers import ROOT, first_request

MAX_NEW = 24


@pytest.fixture(scope="module")
def episode_requests(data_dir, tmp_path_factory):
    """The first request of real episodes: MAT-Coding (image + text) and Bamboogle (text only)."""
    from matbench.data.loaders import load_samples
    from matbench.tasks import get_task

    requests = []
    for task, n in (("mat-coding", 3), ("bamboogle", 2)):
        for sample in load_samples(get_task(task), data_dir=data_dir)[:n]:
            requests.append(first_request(task, sample, tmp_path_factory.mktemp("run"), MAX_NEW))
    assert any(r.images for r in requests) and any(not r.images for r in requests)
    return requests


@pytest.fixture(scope="module")
def vllm_results(tiny_model, episode_requests):
    """Prompt ids and greedy completions as vLLM produced them from matbench's own request path."""
    import asyncio

    from matbench.models import get_model
    from matbench.models.vllm_local import build_conversation

    tiny, _ = tiny_model
    model = get_model(f"vllm:{tiny}", dtype="float32", enforce_eager=True, max_model_len=8192, seed=0)
    try:
        convs = [build_conversation(r) for r in episode_requests]
        params = [model._sampling_params(r) for r in episode_requests]
        results = model._chat(convs, params)  # the adapter's one batched call
        outs = asyncio.run(model.generate(episode_requests))
    finally:
        asyncio.run(model.aclose())
    return [
        (list(r.prompt_token_ids), list(r.outputs[0].token_ids), o)
        for r, o in zip(results, outs, strict=True)
    ]


def _authors_inputs(processor, request):
    from PIL import Image

    if request.images:
        content = [{"type": "image", "image": str(p)} for p in request.images]
        content.append({"type": "text", "text": request.text})
        images = [Image.open(p).convert("RGB") for p in request.images]
    else:
        content, images = [{"type": "text", "text": request.text}], None
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], images=images, padding=True, return_tensors="pt")


def test_prompt_ids_equal_the_authors_hf_path(tiny_model, episode_requests, vllm_results) -> None:
    from transformers import AutoProcessor

    tiny, _ = tiny_model
    processor = AutoProcessor.from_pretrained(str(tiny))
    for request, (prompt_ids, _, out) in zip(episode_requests, vllm_results, strict=True):
        expected = _authors_inputs(processor, request)["input_ids"][0].tolist()
        assert prompt_ids == expected, request.tag
        assert out.input_tokens == len(expected)  # what matbench records is the engine's count
        if request.images:
            assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") in prompt_ids


def test_greedy_vllm_equals_greedy_transformers(tiny_model, episode_requests, vllm_results) -> None:
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    tiny, _ = tiny_model
    processor = AutoProcessor.from_pretrained(str(tiny))
    hf = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny), dtype=torch.float32).eval()
    for request, (prompt_ids, completion, out) in zip(episode_requests, vllm_results, strict=True):
        inputs = _authors_inputs(processor, request)
        with torch.no_grad():
            gen = hf.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
        assert gen[0, len(prompt_ids) :].tolist() == completion, request.tag
        assert out.output_tokens == len(completion) and out.text == processor.tokenizer.decode(
            completion, skip_special_tokens=True
        )


def test_matbench_comes_from_this_checkout() -> None:
    """The engine venv holds matbench's dependencies, never a stale copy of matbench itself."""
    from pathlib import Path

    import matbench

    assert Path(matbench.__file__).resolve().is_relative_to(ROOT)
