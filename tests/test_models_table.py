"""The model table (matbench/data/models.yaml): backends take their choices from a model's row, never from
its name; a model the table does not know runs with Chat Completions defaults and says so once."""

from __future__ import annotations

import json
import logging

import pytest
from fake_openai_server import FakeOpenAIServer

from matbench.cli import main as cli_main
from matbench.errors import ConfigError
from matbench.models import get_model
from matbench.models.capabilities import MODELS_FILE, parse_table, table
from matbench.models.cost import load_prices
from matbench.models.registry import backend_class


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def test_gpt_6_sol_gets_what_the_table_says() -> None:
    m = get_model("openai:gpt-6-sol")
    assert (m.api, m.reasoning) == ("responses", True)
    assert m.config()["token_param"] == "max_output_tokens"
    assert m.decoding_defaults() == {}  # reasoning: no temperature, sampled
    assert m.notice() is None


@pytest.mark.parametrize("name", ["o3-mini-2025-01-31", "gpt-5-lookalike", "o4-preview", "gpt-6-sol-2027"])
def test_no_choice_from_a_name_prefix(name: str) -> None:
    """A name that merely looks like a reasoning model gets the chat defaults, and says so."""
    m = get_model(f"openai:{name}", base_url="http://127.0.0.1:9/v1")
    assert (m.api, m.reasoning, m.config()["token_param"]) == ("chat", False, "max_tokens")
    assert m.decoding_defaults() == {"temperature": 0.0}
    assert m.notice() is not None and name in m.notice() and "\n" not in m.notice()


def test_defaults_per_backend() -> None:
    assert get_model("gpt-4o").decoding_defaults() == {"temperature": 0.0}
    assert get_model("qwen3-vl-8b", base_url="http://gpu:8000/v1").decoding_defaults() == {"temperature": 0.0}
    assert get_model("o3").decoding_defaults() == {}
    assert backend_class("openai").native_tool_calls and not backend_class("vllm").native_tool_calls


def test_hosted_aliases_go_to_their_provider_with_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        get_model("gemini-3-pro")
    monkeypatch.setenv("GEMINI_API_KEY", "g-key-123456")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key-123456")
    gemini = get_model("gemini-3-pro")
    assert gemini.base_url == "https://generativelanguage.googleapis.com/v1beta/openai"
    assert gemini.api_key_env == "GEMINI_API_KEY" and gemini.model_id == "gemini-3-pro-preview"
    claude = get_model("claude-sonnet-4.5")
    assert (claude.base_url, claude.api_key_env) == ("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY")
    assert claude.identity() is not None and claude.identity()["provider"] == "anthropic"
    local = get_model("claude-sonnet-4.5", base_url="http://127.0.0.1:9/v1")  # a local stand-in wins
    assert local.base_url == "http://127.0.0.1:9/v1" and local.api_key_env == "OPENAI_API_KEY"


def test_every_row_is_dated_and_sourced_and_prices_are_the_rows() -> None:
    rows = table().rows
    for want in ("gpt-5", "gpt-5-mini", "gpt-6-sol", "gpt-6-luna", "o3", "o4-mini", "gpt-4o", "gpt-4.1",
                 "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-32B-Instruct", "laolao77/Visual-ARFT-Search"):
        assert want in rows
    assert all(r.checked and r.source for r in rows.values())
    prices = load_prices()
    assert set(prices) == {r.id for r in rows.values() if r.price}
    assert prices["gpt-6-sol"].input == 2.0 and "Qwen/Qwen3-VL-8B-Instruct" not in prices
    assert rows["Qwen/Qwen3-VL-32B-Instruct"].architecture == "Qwen3VLForConditionalGeneration"


def test_a_bad_table_row_is_one_line(tmp_path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("models:\n  x: {backend: openai, api: soap, checked: d, source: s}\n")
    with pytest.raises(ConfigError, match="model x: `api` must be one of chat, responses"):
        parse_table(bad)
    bad.write_text("models:\n  x: {backend: openai, price: {input: 1, output: 2}, checked: d, source: s}\n")
    with pytest.raises(ConfigError, match="price `cached_input` must be a number"):
        parse_table(bad)
    assert MODELS_FILE.is_file()


def test_unknown_model_runs_with_chat_defaults_and_says_so_once(
    tmp_path, fixtures_dir, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer("Final answer: x") as srv, caplog.at_level(logging.WARNING):
        code = cli_main([
            "eval", "--no-progress", "--json", "--model", "openai:fake", "--base-url", srv.base_url,
            "--task", "bamboogle", "--protocol", "direct", "--data-dir", str(fixtures_dir / "multihop"),
            "--limit", "3", "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
        ])
    assert code == 0, capsys.readouterr()
    notes = [r for r in caplog.records if "not in matbench's model table" in r.getMessage()]
    assert len(notes) == 1 and "Chat Completions defaults" in notes[0].getMessage()
    body = srv.requests[0]
    assert body["max_tokens"] and body["temperature"] == 0.0 and "max_completion_tokens" not in body
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["api"] == "chat" and config["model"]["reasoning_model"] is False
