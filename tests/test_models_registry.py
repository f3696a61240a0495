"""Aliases, spec routing, the one-line configuration errors, the in-process vLLM adapter's pure parts
(vLLM itself is not installed here) and `matbench models`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_openai_server import decode_data_url
from PIL import Image

from matbench.cli import main as cli_main
from matbench.errors import ConfigError
from matbench.models import ChatRequest, get_model, model_aliases, resolve_spec, vllm_local
from matbench.models.registry import backend_class
from matbench.registry import MODELS


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.mark.parametrize(
    ("spec", "base_url", "backend", "model_id"),
    [
        ("qwen2.5-vl-3b", None, "vllm", "Qwen/Qwen2.5-VL-3B-Instruct"),
        ("Qwen2.5-VL-72B", None, "vllm", "Qwen/Qwen2.5-VL-72B-Instruct"),
        ("visual-arft-search-7b", None, "vllm", "laolao77/Visual-ARFT-Search"),
        ("visual-arft-coding-7b", None, "vllm", "laolao77/Visual-ARFT-Coding"),
        ("gpt-4o", None, "openai", "gpt-4o"),
        ("o4-mini", None, "openai", "o4-mini"),
        ("openai:gpt-4o-mini-2024-07-18", None, "openai", "gpt-4o-mini-2024-07-18"),
        ("vllm:/models/my-ckpt", None, "vllm", "/models/my-ckpt"),
        # a vllm model with a base_url is served over the OpenAI protocol (`vllm serve HUB_ID`)
        ("qwen2.5-vl-7b", "http://gpu:8000/v1", "openai", "Qwen/Qwen2.5-VL-7B-Instruct"),
        ("vllm:org/model", "http://gpu:8000/v1", "openai", "org/model"),
    ],
)
def test_resolve_spec(spec: str, base_url: str | None, backend: str, model_id: str) -> None:
    r = resolve_spec(spec, base_url)
    assert (r.backend, r.model_id) == (backend, model_id)


def test_alias_table_is_complete() -> None:
    expected = {f"qwen2.5-vl-{s}" for s in ("3b", "7b", "32b", "72b")} | {
        "qwen3-vl-8b",
        "qwen3-vl-32b",
        "visual-arft-search-7b",
        "visual-arft-coding-7b",
        "gpt-4o",
        "gpt-4.1",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-6-sol",
        "gpt-6-luna",
        "gemini-3-pro",
        "claude-sonnet-4.5",
    }
    aliases = model_aliases()
    assert expected <= set(aliases)
    assert all(a.backend in MODELS for a in aliases.values())


@pytest.mark.parametrize("spec", ["", "llama-9000", "foo:bar", "openai:"])
def test_unknown_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="matbench models"):
        resolve_spec(spec)


def test_unknown_option_is_an_error_inapplicable_one_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x-123456")
    with pytest.raises(ConfigError, match="max_concurency"):
        get_model("gpt-4o", max_concurency=3)
    m = get_model("gpt-4o", tensor_parallel_size=4, max_pixels=None, max_concurrency=3)
    assert m.max_concurrency == 3 and m.name == "openai:gpt-4o"


def test_registry_backends_register_themselves() -> None:
    assert backend_class("openai").__name__ == "OpenAIModel"
    assert backend_class("vllm").__name__ == "VLLMModel"
    assert backend_class("vllm").lockstep is True and backend_class("openai").lockstep is False
    with pytest.raises(ConfigError, match="unknown model backend"):
        backend_class("tgi")


def test_vllm_alias_without_vllm_is_one_line_error() -> None:
    assert not vllm_local.vllm_installed()  # the main venv has no vLLM (the engine venv has)
    with pytest.raises(ConfigError) as exc:
        get_model("qwen2.5-vl-7b")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(
        "qwen2.5-vl-7b needs a model endpoint or a device vLLM can use (vllm is not installed)"
    )
    assert "--base-url http://HOST:8000/v1" in msg and "`vllm serve Qwen/Qwen2.5-VL-7B-Instruct`" in msg
    assert "scripts/engine-venv.sh" in msg
    # the distribution matbench publishes under (`matbench` on PyPI is an unrelated project)
    assert "pip install 'vlm-matbench[vllm]'" in msg and "'matbench[vllm]'" not in msg


def test_vllm_without_a_platform_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM is asked which platform it is on; an unspecified one (no GPU, not the CPU build) is one line."""
    unspecified = SimpleNamespace(is_unspecified=lambda: True, device_type="")
    monkeypatch.setattr(vllm_local, "vllm_installed", lambda: True)
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(__path__=[]))
    monkeypatch.setitem(sys.modules, "vllm.platforms", SimpleNamespace(current_platform=unspecified))
    with pytest.raises(
        ConfigError,
        match=r"^vllm:org/ckpt needs a model endpoint or a device vLLM can use \(vllm found no device",
    ):
        get_model("vllm:org/ckpt")


def test_vllm_conversation_puts_images_first(tmp_path: Path) -> None:
    img = tmp_path / "a.jpg"
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(img, format="PNG")
    conv = vllm_local.build_conversation(ChatRequest("Where?", images=[img]))
    assert len(conv) == 1 and conv[0]["role"] == "user"
    parts = conv[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"] and parts[1]["text"] == "Where?"
    assert decode_data_url(parts[0]["image_url"]["url"])[0] == "image/png"
    assert vllm_local.build_conversation(ChatRequest("t"))[0]["content"] == [{"type": "text", "text": "t"}]


def test_vllm_sampling_follows_checkpoint_then_request() -> None:
    # what Qwen2.5-VL's generation_config.json yields through get_default_sampling_params()
    ckpt = SimpleNamespace(temperature=0.1, top_p=0.001, top_k=1, repetition_penalty=1.05, min_p=0.0)
    defaults = vllm_local.default_sampling_dict(ckpt)
    assert defaults == {
        "temperature": 0.1,
        "top_p": 0.001,
        "top_k": 1,
        "repetition_penalty": 1.05,
        "min_p": 0.0,
    }
    kw = vllm_local.sampling_kwargs(defaults, ChatRequest("x", max_new_tokens=512))
    assert kw == {**defaults, "max_tokens": 512}
    kw = vllm_local.sampling_kwargs(defaults, ChatRequest("x", temperature=0.0, top_p=1.0, seed=7), seed=1)
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["seed"], kw["max_tokens"]) == (
        0.0,
        1.0,
        1,
        7,
        1024,
    )
    assert vllm_local.sampling_kwargs(defaults, ChatRequest("x"), seed=1)["seed"] == 1


def test_vllm_engine_kwargs() -> None:
    kw = vllm_local.engine_kwargs("Qwen/Qwen2.5-VL-7B-Instruct")
    assert kw["limit_mm_per_prompt"] == {"image": 1} and kw["tensor_parallel_size"] == 1
    assert "mm_processor_kwargs" not in kw and "data_parallel_size" not in kw and "seed" not in kw
    kw = vllm_local.engine_kwargs(
        "m", tensor_parallel_size=4, max_model_len=32768, max_pixels=1280 * 28 * 28, seed=0
    )
    assert kw["mm_processor_kwargs"] == {"max_pixels": 1003520}
    assert (kw["tensor_parallel_size"], kw["max_model_len"], kw["seed"]) == (4, 32768, 0)
    with pytest.raises(ConfigError, match="vllm serve m --data-parallel-size 2"):
        vllm_local.engine_kwargs("m", data_parallel_size=2)


def test_vllm_request_output_conversion() -> None:
    result = SimpleNamespace(
        prompt_token_ids=list(range(37)),
        outputs=[SimpleNamespace(text="<answer>4</answer>", token_ids=[1, 2, 3], finish_reason="stop")],
    )
    out = vllm_local.to_output(result, 1.5)
    assert (out.text, out.input_tokens, out.output_tokens, out.finish_reason, out.latency) == (
        "<answer>4</answer>",
        37,
        3,
        "stop",
        1.5,
    )


def test_cli_models_lists_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_alias = {r["alias"]: r for r in rows}
    qwen = by_alias["qwen2.5-vl-7b"]
    assert (qwen["backend"], qwen["model_id"], qwen["notes"]) == (
        "vllm", "Qwen/Qwen2.5-VL-7B-Instruct", "needs GPU or --base-url"
    )
    assert by_alias["qwen3-vl-8b"]["architecture"] == "Qwen3VLForConditionalGeneration"
    assert by_alias["qwen3-vl-8b"]["price_per_1m"] is None  # open weights: unknown price, never a guess
    o3 = by_alias["o3"]
    assert (o3["backend"], o3["api"], o3["reasoning"], o3["max_output_tokens"]) == ("openai", "responses", True, 100000)
    assert set(o3["price_per_1m"]) == {"input", "cached_input", "output"} and o3["checked"] and o3["source"]
    gemini = by_alias["gemini-3-pro"]
    assert (gemini["base_url"], gemini["api_key_env"]) == (
        "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"
    )
    assert cli_main(["models"]) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0].split()
    assert header[:4] == ["alias", "backend", "model", "id"] and "reasoning" in header and "tools" in header
    assert "laolao77/Visual-ARFT-Coding" in text and "unknown price" in text and "$2 / $0.2 / $10" in text


def test_decoding_record_is_what_each_backend_applies() -> None:
    """config.json's decoding: an endpoint's sent fields, or an in-process engine's effective SamplingParams;
    each backend module computes its own (no branching on backend names elsewhere)."""
    from matbench.models.openai_api import sent_fields
    from matbench.models.vllm_local import sampling_kwargs
    from matbench.run.episode import EpisodeOptions

    ckpt = {"temperature": 0.1, "top_p": 0.001, "top_k": 1, "repetition_penalty": 1.05, "min_p": 0.0}
    options = EpisodeOptions(max_new_tokens=1024)
    assert sampling_kwargs(ckpt, options.request()) == {**ckpt, "max_tokens": 1024}
    greedy = EpisodeOptions(max_new_tokens=2048, temperature=0.0, seed=7)
    assert sampling_kwargs(ckpt, greedy.request()) == {**ckpt, "temperature": 0.0, "max_tokens": 2048, "seed": 7}
    api_cfg = {"backend": "openai", "model": "gpt-4o"}
    assert sent_fields(api_cfg, greedy.request()) == {"max_tokens": 2048, "temperature": 0.0, "seed": 7}
