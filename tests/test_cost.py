"""Prices and cost: the price table, a run's cost in summary.json, and `--max-cost` stopping a run cleanly."""

from __future__ import annotations

import json

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from runtime_helpers import read_jsonl, run_eval

from matbench.errors import ConfigError
from matbench.models.cost import PRICES_FILE, Price, cost_text, find_price, load_prices, run_cost


def test_shipped_table_has_dated_rows_only():
    prices = load_prices()
    assert {"gpt-4o", "o3"} <= set(prices)
    for p in prices.values():
        assert p.checked and p.source and p.output >= p.input >= p.cached_input
    assert find_price(prices, {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "spec": "qwen2.5-vl-7b"}) is None
    assert find_price(prices, {"model": "gpt-4o-2024-05-13"}) is None  # another snapshot, another price


def test_cost_arithmetic_and_unknown_price():
    price = Price("m", input=2.0, cached_input=0.5, output=8.0, checked="2025-06-10", source="t")
    assert price.cost({"input": 1_000_000, "cached_input": 400_000, "output": 500_000}) == pytest.approx(
        0.6 * 2 + 0.4 * 0.5 + 0.5 * 8
    )
    records = [
        {
            "tokens": {"input": 1000, "output": 100},
            "trajectory": [{"tokens": {"input": 1000, "output": 100}}],
        },
        {
            "tokens": {"input": 1000, "output": 100},
            "trajectory": [{"tokens": {"input": 1000, "output": 100}, "cached": True}],
        },
    ]
    cost = run_cost(records, price)
    assert cost["usd"] == pytest.approx(2 * (0.002 + 0.0008)) and cost["per_sample_usd"] == pytest.approx(
        0.0028
    )
    assert cost["spent_usd"] == pytest.approx(0.0028)  # the response-cache hit cost nothing
    assert cost_text(cost) == "$0.0056 ($0.0028/sample)"
    assert cost_text(run_cost(records, None)) == "unknown price"
    records[0]["tokens"]["unreported"] = 1
    assert cost_text(run_cost(records, price)).startswith(">= $")


def test_prices_override_and_bad_file(tmp_path):
    extra = tmp_path / "p.yaml"
    extra.write_text("models:\n  gpt-4o: {input: 1, cached_input: 0.5, output: 2, checked: '2026-12-01'}\n")
    assert load_prices(extra)["gpt-4o"].input == 1.0 and "o3" in load_prices(extra)
    extra.write_text("models:\n  m: {input: 1, output: 2, checked: x}\n")
    with pytest.raises(ConfigError, match="model m: `cached_input` must be a number"):
        load_prices(extra)
    assert PRICES_FILE.is_file()


def _direct_args(srv, tmp_path, fixtures_dir, *extra):
    return [
        "--model",
        "gpt-4o",
        "--base-url",
        srv.base_url,
        "--task",
        "bamboogle",
        "--protocol",
        "direct",
        "--data-dir",
        str(fixtures_dir / "multihop"),
        "--limit",
        "6",
        "--max-concurrency",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-response-cache",
        *extra,
    ]


def test_max_cost_stops_a_run_cleanly_and_resumes(tmp_path, fixtures_dir):
    # every call: 100k input tokens at $2.50/1M = $0.25 (gpt-4o's row)
    usage = {"prompt_tokens": 100_000, "completion_tokens": 0, "total_tokens": 100_000}
    with FakeOpenAIServer(lambda req: Reply(text="<answer> x </answer>", usage=usage)) as srv:
        out = run_eval(
            _direct_args(srv, tmp_path, fixtures_dir, "--max-cost", "0.6"), cache_dir=tmp_path / "c"
        )
        assert out.returncode == 0, out.stderr
        assert srv.calls == 3  # $0, $0.25, $0.50 spent when samples 1-3 started; then $0.75 >= $0.60
        assert "stopped by --max-cost $0.6: spent $0.7500, 3 sample(s) not started" in out.stdout
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["run"]["finished"] is False and summary["n"] == 3
        assert summary["run"]["max_cost"] == {
            "limit_usd": 0.6,
            "spent_usd": 0.75,
            "not_started": 3,
            "stopped_in_flight": 0,
            "halted": None,
        }
        assert summary["run"]["cost"]["usd"] == pytest.approx(0.75)
        # the same limit again: the run has already spent it, nothing starts
        again = run_eval(
            _direct_args(srv, tmp_path, fixtures_dir, "--max-cost", "0.6"), cache_dir=tmp_path / "c"
        )
        assert again.returncode == 0, again.stderr
        assert srv.calls == 3
        # a higher limit resumes where it stopped
        more = run_eval(
            _direct_args(srv, tmp_path, fixtures_dir, "--max-cost", "5"), cache_dir=tmp_path / "c"
        )
        assert more.returncode == 0, more.stderr
        assert srv.calls == 6
    rows = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["run"]["finished"] is True and summary["run"]["cost"]["usd"] == pytest.approx(1.5)
    assert summary["run"]["cost"]["per_sample_usd"] == pytest.approx(0.25)


def test_max_cost_needs_a_price(tmp_path, fixtures_dir):
    with FakeOpenAIServer("<answer> x </answer>", models=["my-local-model"]) as srv:
        args = _direct_args(srv, tmp_path, fixtures_dir, "--max-cost", "1")
        args[1] = "openai:my-local-model"
        out = run_eval(args, cache_dir=tmp_path / "c")
        assert srv.calls == 0
    assert out.returncode == 2 and "--max-cost needs a price for openai:my-local-model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # refused before any run directory: no "new run" line


def test_cost_in_summary_leaderboard_and_compare(tmp_path, fixtures_dir, capsys):
    """gpt-4o (shipped price) against a local model priced with --prices: cost next to F1/EM everywhere."""
    from runtime_helpers import run_dir_of

    from matbench.cli import main

    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n  local-7b: {input: 0.1, cached_input: 0.1, output: 0.4, checked: '2026-12-03', source: gpu hour}\n"
    )
    usage = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}
    runs = {}
    for model, extra in (("gpt-4o", []), ("openai:local-7b", ["--prices", str(prices)])):
        served = ["gpt-4o", "local-7b"]
        with FakeOpenAIServer(
            lambda req: Reply(text="<answer> x </answer>", usage=usage), models=served
        ) as srv:
            out = run_eval(
                [
                    "--model",
                    model,
                    "--base-url",
                    srv.base_url,
                    "--task",
                    "bamboogle",
                    "--protocol",
                    "direct",
                    "--data-dir",
                    str(fixtures_dir / "multihop"),
                    "--runs-root",
                    str(tmp_path / "runs"),
                    *extra,
                ],
                cache_dir=tmp_path / "cache",
            )
        assert out.returncode == 0, out.stderr
        runs[model] = run_dir_of(out.stdout)
    assert "cost: $0.0130 ($0.0001/sample)" in out.stdout  # the last run's summary line
    big = json.loads((runs["gpt-4o"] / "summary.json").read_text())["run"]["cost"]
    small = json.loads((runs["openai:local-7b"] / "summary.json").read_text())["run"]["cost"]
    assert big["usd"] == pytest.approx(125 * (1000 * 2.5 + 10 * 10) / 1e6)
    assert (
        small["usd"] == pytest.approx(125 * (1000 * 0.1 + 10 * 0.4) / 1e6)
        and small["price"]["source"] == "gpu hour"
    )
    lb = tmp_path / "lb"
    for name, model in (("GPT-4o", "gpt-4o"), ("Local 7B", "openai:local-7b")):
        assert main(["submit", str(runs[model]), "--name", name, "--leaderboard-dir", str(lb)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--format", "md", "--task", "bamboogle", "--leaderboard-dir", str(lb)]) == 0
    md = capsys.readouterr().out
    assert "cost ($/sample)" in md
    # the leaderboard prices tokens with matbench's own table: a run's --prices file is not a price it can
    # bring to the leaderboard
    assert "| $0.3250 ($0.0026/sample) |" in md and "| unknown price |" in md
    assert main(["leaderboard", "--format", "json", "--task", "bamboogle", "--leaderboard-dir", str(lb)]) == 0
    rows = {r["system"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["GPT-4o"]["tasks"]["bamboogle"]["cost"]["per_sample_usd"] == pytest.approx(0.0026)
    assert main(["compare", str(runs["openai:local-7b"]), str(runs["gpt-4o"]), "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "cost (whole runs): A $0.0130 ($0.0001/sample); B $0.3250 ($0.0026/sample)" in text
    assert (
        main(["compare", str(runs["openai:local-7b"]), str(runs["gpt-4o"]), "--json", "--resamples", "200"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["cost_b"]["usd"] == pytest.approx(0.325) and data["cost_a"]["price"]["model"] == "local-7b"
