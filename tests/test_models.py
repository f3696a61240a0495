"""OpenAI adapter end to end against a local OpenAI-compatible server (real client, real HTTP)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, Reply, decode_data_url, decode_request_images, request_text
from PIL import Image

from matbench.errors import ConfigError
from matbench.models import ChatRequest, get_model
from matbench.models.openai_api import AdaptiveLimiter, OpenAIModel, parse_retry_after

SECRET = "sk-test-9f8e7d6c5b4a3210SECRET"


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def make(server: FakeOpenAIServer, spec: str = "openai:fake-model", **options) -> OpenAIModel:
    options.setdefault("retry_base_delay", 0.001)
    model = get_model(spec, base_url=server.base_url, **options)
    assert isinstance(model, OpenAIModel)
    return model


def run(model: OpenAIModel, requests: list[ChatRequest]):
    async def go():
        try:
            return await model.generate(requests)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_text_request_shape_and_usage() -> None:
    with FakeOpenAIServer("<answer> Paris </answer>") as srv:
        model = make(srv)
        [out] = run(
            model, [ChatRequest("What is the capital of France?", max_new_tokens=77, temperature=0.0, seed=3)]
        )
    assert out.error is None and out.text == "<answer> Paris </answer>"
    assert (out.input_tokens, out.output_tokens) == (6, 3)
    assert out.finish_reason == "stop" and out.retries == 0 and not out.cached and out.latency > 0
    [req] = srv.requests
    assert req["model"] == "fake-model"
    assert req["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert req["max_tokens"] == 77 and req["temperature"] == 0.0 and req["seed"] == 3
    assert "top_p" not in req and "max_completion_tokens" not in req
    assert srv.headers[0]["Authorization"] == "Bearer EMPTY"  # base_url without a key: the dummy key


def test_unset_decoding_params_are_not_sent() -> None:
    with FakeOpenAIServer("x") as srv:
        run(make(srv), [ChatRequest("hi", temperature=None, top_p=None)])
    assert not {"temperature", "top_p", "seed"} & set(srv.requests[0])


def test_extra_body_fields_go_top_level() -> None:
    with FakeOpenAIServer("x") as srv:
        run(make(srv, extra_body={"top_k": 1, "repetition_penalty": 1.05}), [ChatRequest("hi")])
    assert srv.requests[0]["top_k"] == 1 and srv.requests[0]["repetition_penalty"] == 1.05


def test_image_request_data_url_mime_and_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    fake_jpg = tmp_path / "really_png.jpg"  # a PNG with a .jpg suffix, like the fixtures
    Image.fromarray(arr).save(fake_jpg, format="PNG")
    real_jpg = tmp_path / "photo.png"  # and a JPEG with a .png suffix
    Image.fromarray(arr).save(real_jpg, format="JPEG", quality=95)
    with FakeOpenAIServer("ok") as srv:
        [out] = run(make(srv), [ChatRequest("Describe.", images=[fake_jpg, real_jpg])])
    assert out.error is None
    content = srv.requests[0]["messages"][0]["content"]
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]
    assert content[-1]["text"] == "Describe."
    mimes = [decode_data_url(p["image_url"]["url"])[0] for p in content[:2]]
    assert mimes == ["image/png", "image/jpeg"]
    png_back, jpg_back = decode_request_images(srv.requests[0])
    assert np.array_equal(png_back, arr)  # lossless round trip
    assert jpg_back.shape == arr.shape
    assert out.input_tokens == 1 + 200  # the fake charges 100 per image


def test_rotated_image_arrives_as_rotated(tmp_path: Path) -> None:
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :5] = 255
    path = tmp_path / "r.png"
    Image.fromarray(arr).save(path)
    with FakeOpenAIServer("ok") as srv:
        model = make(srv)

        async def go():
            await model.generate([ChatRequest("a", images=[path])])
            time.sleep(0.01)  # a new mtime must invalidate the data-URL cache
            Image.fromarray(np.rot90(arr)).save(path)
            await model.generate([ChatRequest("b", images=[path])])
            await model.aclose()

        asyncio.run(go())
    first, second = (decode_request_images(r)[0] for r in srv.requests)
    assert np.array_equal(first, arr)
    assert np.array_equal(second, np.rot90(arr))


def test_429_with_retry_after_then_success() -> None:
    def policy(req):
        return Reply.error(429, "slow down", retry_after=1) if srv.calls == 1 else "fine"

    with FakeOpenAIServer(policy) as srv:
        model = make(srv, retry_base_delay=0.001)
        t0 = time.perf_counter()
        [out] = run(model, [ChatRequest("x")])
        elapsed = time.perf_counter() - t0
    assert out.text == "fine" and out.error is None and out.retries == 1
    assert srv.calls == 2
    assert elapsed >= 0.95, "Retry-After: 1 must be honoured over the tiny base delay"
    assert out.latency >= 0.95


def test_500_then_success() -> None:
    with FakeOpenAIServer(lambda req: Reply.error(500) if srv.calls == 1 else "second") as srv:
        [out] = run(make(srv), [ChatRequest("x")])
    assert (out.text, out.retries, srv.calls) == ("second", 1, 2)


def test_persistent_500_gives_error_output_not_exception() -> None:
    with FakeOpenAIServer(lambda req: Reply.error(503, "overloaded")) as srv:
        [out] = run(make(srv, max_retries=3), [ChatRequest("x", tag="t/1#0")])
    assert out.text is None
    assert "HTTP 503" in out.error and "overloaded" in out.error and "4 attempts" in out.error
    assert out.retries == 3 and srv.calls == 4


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(status: int) -> None:
    with FakeOpenAIServer(lambda req: Reply.error(status, "bad thing")) as srv:
        [out] = run(make(srv, max_retries=5), [ChatRequest("x")])
    assert srv.calls == 1
    assert out.text is None and out.error.startswith(f"HTTP {status}") and "bad thing" in out.error


def test_timeout_is_retried() -> None:
    with FakeOpenAIServer(lambda req: Reply("late", delay=2.0) if srv.calls == 1 else "on time") as srv:
        [out] = run(make(srv, timeout=0.3), [ChatRequest("x")])
    assert out.text == "on time" and out.retries == 1 and srv.calls == 2
    assert out.latency < 1.5


def test_connection_error_is_retried_then_reported() -> None:
    with FakeOpenAIServer("x") as srv:
        url = srv.base_url
    model = get_model("openai:m", base_url=url, max_retries=2, retry_base_delay=0.001)
    [out] = run(model, [ChatRequest("x")])
    assert out.text is None and "connection error" in out.error and out.retries == 2


def test_concurrency_bound_is_honoured() -> None:
    with FakeOpenAIServer("ok", latency=0.05) as srv:
        outs = run(make(srv, max_concurrency=4), [ChatRequest(f"q{i}") for i in range(24)])
    assert all(o.text == "ok" for o in outs)
    assert srv.calls == 24
    assert srv.max_in_flight == 4  # bounded, and the bound is actually used


def test_429_storm_shrinks_concurrency_and_everything_completes() -> None:
    def policy(req):
        # the first 8 arrivals are rate limited; afterwards the server is healthy
        return Reply.error(429, retry_after=0) if srv.calls <= 8 else "ok"

    with FakeOpenAIServer(policy, latency=0.02) as srv:
        model = make(srv, max_concurrency=8, retry_base_delay=0.01)

        async def go():
            outs = await model.generate([ChatRequest(f"q{i}") for i in range(16)])
            limit = model.pool.endpoints[0].limiter.limit
            await model.aclose()
            return outs, limit

        outs, limit = asyncio.run(go())
    assert all(o.text == "ok" for o in outs)
    assert limit < 8  # halved on 429, recovers slowly


def test_adaptive_limiter_halves_and_recovers() -> None:
    lim = AdaptiveLimiter(16)
    lim.on_rate_limit(0.0)
    lim.on_rate_limit(0.0)
    assert lim.limit == 4
    for _ in range(4):
        lim.on_success()
    assert 4.9 < lim.limit < 5.1  # about +1 per window of `limit` successes
    for _ in range(1000):
        lim.on_success()
    assert lim.limit == 16


def test_adaptive_limiter_cooldown_blocks_everyone() -> None:
    async def go():
        lim = AdaptiveLimiter(4)
        lim.on_rate_limit(0.3)
        t0 = time.perf_counter()
        await lim.acquire()
        lim.release()
        return time.perf_counter() - t0

    assert asyncio.run(go()) >= 0.25


def test_reasoning_model_parameter_mapping() -> None:
    def policy(req):
        if "temperature" in req or "top_p" in req or "max_tokens" in req:
            return Reply.error(400, "Unsupported parameter for reasoning model")
        return f"mct={req['max_completion_tokens']}"

    with FakeOpenAIServer(policy) as srv:
        model = make(srv, "o3", api="chat")  # o3 defaults to the Responses API: test_models_tools.py
        [out] = run(model, [ChatRequest("x", max_new_tokens=321, temperature=0.0, top_p=0.9)])
    assert out.text == "mct=321"
    assert srv.requests[0]["model"] == "o3"


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({}) is None


def test_api_key_never_leaks(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)

    def policy(req):  # a server that echoes the key, as OpenAI's 401 text partly does
        auth = srv.headers[-1]["Authorization"]
        return Reply.error(500 if srv.calls == 1 else 401, f"Incorrect API key provided: {auth}")

    with FakeOpenAIServer(policy) as srv:
        model = make(srv, max_retries=2)
        cfg = model.config()
        [out] = run(model, [ChatRequest("x")])
    assert srv.headers[0]["Authorization"] == f"Bearer {SECRET}"  # the key is used...
    assert out.text is None and "HTTP 401" in out.error
    assert SECRET not in out.error and "***" in out.error  # ...but scrubbed from the error
    assert SECRET not in repr(cfg) and cfg["api_key_env"] == "OPENAI_API_KEY"
    assert "HTTP 500" in caplog.text  # the retry was logged...
    assert SECRET not in caplog.text  # ...without the key


def test_openai_model_without_key_is_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        get_model("gpt-4o")
    msg = str(exc.value)
    assert "\n" not in msg
    assert (
        msg
        == "gpt-4o needs OPENAI_API_KEY (or --api-key-env NAME), or --base-url to an OpenAI-compatible server"
    )


def test_named_key_env_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="MY_PROXY_KEY"):
        get_model("gpt-4.1", api_key_env="MY_PROXY_KEY")
    monkeypatch.setenv("MY_PROXY_KEY", "proxy-key-123456")
    with FakeOpenAIServer("ok") as srv:
        run(make(srv, "gpt-4.1", api_key_env="MY_PROXY_KEY"), [ChatRequest("x")])
    assert srv.headers[0]["Authorization"] == "Bearer proxy-key-123456"


def test_vllm_alias_with_base_url_speaks_openai_with_hub_id() -> None:
    with FakeOpenAIServer(lambda req: request_text(req).upper()) as srv:
        model = get_model("qwen2.5-vl-7b", base_url=srv.base_url, tensor_parallel_size=2)  # TP is ignored
        assert isinstance(model, OpenAIModel) and not model.lockstep
        cfg = model.config()
        [out] = run(model, [ChatRequest("hello")])
    assert out.text == "HELLO"
    assert srv.requests[0]["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert cfg["model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and cfg["alias"] == "qwen2.5-vl-7b"
    assert cfg["base_url"] == srv.base_url


def test_missing_image_is_a_per_request_error(tmp_path: Path) -> None:
    with FakeOpenAIServer("ok") as srv:
        outs = run(make(srv), [ChatRequest("a", images=[tmp_path / "nope.png"]), ChatRequest("b")])
    assert outs[0].text is None and "nope.png" in outs[0].error
    assert outs[1].text == "ok" and srv.calls == 1


def test_batch_keeps_order_and_model_survives_new_event_loops() -> None:
    with FakeOpenAIServer(lambda req: request_text(req)[::-1], latency=0.01) as srv:
        model = make(srv)
        for _ in range(2):  # each asyncio.run is a fresh loop: the client must follow
            outs = run(model, [ChatRequest(f"abc{i}") for i in range(10)])  # aclose() at the end of each
            assert [o.text for o in outs] == [f"abc{i}"[::-1] for i in range(10)]


def test_models_server_endpoint_lists_a_model() -> None:
    import json
    import urllib.request

    with FakeOpenAIServer("x") as srv, urllib.request.urlopen(srv.base_url + "/models", timeout=5) as resp:
        data = json.load(resp)
    assert data["object"] == "list" and data["data"][0]["id"]
