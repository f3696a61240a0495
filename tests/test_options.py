"""Every eval option is declared once (matbench/run/options.py): parser, settings and model options follow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from matbench.cli import main
from matbench.models.registry import backend_class
from matbench.registry import MODELS
from matbench.run import options as opts
from matbench.run.options import EVAL_OPTIONS, EvalSettings, Option, options_to, settings_from_args


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    opts.add_eval_arguments(parser)
    return parser.parse_args(["--model", "m", "--task", "t", *argv])


def test_flags_parse_into_settings_and_model_options():
    args = _parse("--ids", " 1, 5 ,,9", "--retry-delay", "2.5", "--no-crop-assist", "--no-response-cache",
                  "--max-pixels", "1000", "--enforce-eager", "--task", "u", "--base-url", "a", "--base-url", "b")
    s = settings_from_args(args)
    assert isinstance(s, EvalSettings)
    assert s.tasks == ["t", "u"] and s.ids == ["1", "5", "9"] and s.base_url == ["a", "b"]
    assert s.crop_assist is False and s.response_cache is False and s.progress is True
    assert s.model_options == {"retry_base_delay": 2.5, "max_pixels": 1000, "enforce_eager": True}
    plain = settings_from_args(_parse())
    # the response cache: None = this run's own answers only (--response-cache: earlier runs' too)
    assert plain.crop_assist is None and plain.response_cache is None and plain.model_options == {}
    assert (plain.search, plain.search_cache, plain.max_concurrency, plain.compat) == ("serper", "auto", 32, "fixed")
    # the runner's record of settings is the generated one, constructible by keyword as before
    assert EvalSettings(model="m", tasks=["t"]).sandbox_workers == 2
    with pytest.raises(SystemExit):
        _parse("--compat", "loose")


def test_adding_an_option_is_one_entry(monkeypatch):
    extra = Option("example_seconds", "seconds per example", type=float, default=30.0, recorded="model_runtime.x")
    monkeypatch.setattr(opts, "EVAL_OPTIONS", (*EVAL_OPTIONS, extra))
    settings_cls = opts.make_settings_class()
    monkeypatch.setattr(opts, "EvalSettings", settings_cls)
    args = _parse("--example-seconds", "7")
    assert settings_from_args(args).example_seconds == 7.0
    assert settings_from_args(_parse()).example_seconds == 30.0
    assert not extra.fingerprinted


def test_every_model_option_is_accepted_by_a_backend():
    accepted = set().union(*(getattr(backend_class(n), "OPTIONS", frozenset()) for n in MODELS.names()))
    assert {o.name for o in options_to("model")} <= accepted


def _dig(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted} not in config.json"
        node = node[part]
    return node


def test_recorded_keys_hold_the_values_given(tmp_path: Path, fixtures_dir: Path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path / "cache"))
    given = {"seed": 7, "top_p": 0.5, "temperature": 0.25, "max_new_tokens": 64, "limit": 2,
             "scoring": "squad", "compat": "strict"}
    with FakeOpenAIServer("<answer> yes </answer>") as srv:
        rc = main(["eval", "--no-progress", "--model", "openai:fake", "--base-url", srv.base_url,
                   "--task", "bamboogle", "--data-dir", str(fixtures_dir / "multihop"), "--protocol", "direct",
                   "--runs-root", str(tmp_path / "runs"), "--max-concurrency", "3",
                   *[x for k, v in given.items() for x in ("--" + k.replace("_", "-"), str(v))]])
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    by_name = {o.name: o for o in EVAL_OPTIONS}
    for name, value in given.items():
        assert _dig(config, by_name[name].recorded) == value, name
    assert _dig(config, by_name["max_concurrency"].recorded) == 3
    assert by_name["seed"].fingerprinted and not by_name["max_concurrency"].fingerprinted
    for o in EVAL_OPTIONS:  # every recorded key names a real place (a direct run has no tool sections)
        if o.recorded and o.recorded.split(".")[0] not in ("sandbox", "search", "protocol_source") and o.to != "model":
            _dig(config, o.recorded)
