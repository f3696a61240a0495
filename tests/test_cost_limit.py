"""`--max-cost` is a limit: checked before every model call (32 samples in flight cannot spend 32 calls past
it), and a call whose token counts cannot be priced (missing, negative, absurd) stops a capped run instead of
counting as $0. Against a local OpenAI-compatible server, `matbench eval` in process."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from runtime_helpers import main_eval

from matbench.models.base import ModelOutput
from matbench.models.cost import usage_of
from matbench.records.run_dir import RunDir

# gpt-4o's row of the shipped price table: $2.50 per 1M input tokens, so 100k input tokens = $0.25 a call
CALL = {"prompt_tokens": 100_000, "completion_tokens": 0, "total_tokens": 100_000}


def _args(srv, tmp_path: Path, fixtures_dir: Path, *extra: str) -> list[str]:
    return ["--model", "gpt-4o", "--base-url", srv.base_url, "--task", "bamboogle", "--protocol", "direct",
            "--data-dir", str(fixtures_dir / "multihop"), "--no-response-cache", "--run-dir",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c"), *extra]  # fmt: skip


def test_thirty_two_samples_in_flight_cannot_spend_thirty_two_calls(tmp_path, fixtures_dir, capsys):
    with FakeOpenAIServer(lambda r: Reply(text="<answer> x </answer>", usage=CALL), latency=0.3) as srv:
        rc, out, err = main_eval(
            _args(srv, tmp_path, fixtures_dir, "--limit", "40", "--max-concurrency", "32", "--max-cost", "0.6"),
            capsys,
        )
    assert rc == 0, err
    mc = RunDir(tmp_path / "run").read_summary()["run"]["max_cost"]
    # the first call runs alone (to learn what a call costs), the next while spent + in flight stays under
    # $0.60, one more once nothing is in flight: $0.75, at most one call past the limit (not 32 calls, $8)
    assert srv.calls == 3 and mc["spent_usd"] == pytest.approx(0.75)
    assert mc["not_started"] + mc["stopped_in_flight"] == 40 - 3
    assert mc["stopped_in_flight"] > 0  # samples already running stopped calling
    assert RunDir(tmp_path / "run").read_summary()["n"] == 3  # the stopped ones are not recorded: resumable
    assert "stopped mid-sample" in out


@pytest.mark.parametrize(
    "usage, why",
    [
        ({"total_tokens": 5}, "no input token count"),  # usage the endpoint does not report
        ({"prompt_tokens": -5_000_000, "completion_tokens": 3}, "-5000000 input tokens"),
        ({"prompt_tokens": 10**12, "completion_tokens": 3}, "more than any model handles"),
        ({"prompt_tokens": 10, "completion_tokens": 1_000_000}, "output tokens for a limit of"),
    ],
    ids=["unreported", "negative", "absurd-input", "absurd-output"],
)
def test_a_capped_run_stops_at_the_first_call_it_cannot_price(usage, why, tmp_path, fixtures_dir, capsys):
    with FakeOpenAIServer(lambda r: Reply(text="<answer> x </answer>", usage=usage)) as srv:
        rc, out, err = main_eval(
            _args(srv, tmp_path, fixtures_dir, "--limit", "6", "--max-concurrency", "1", "--max-cost", "5"),
            capsys,
        )
    assert rc == 0, err
    assert srv.calls == 1  # not six calls counted as $0
    mc = RunDir(tmp_path / "run").read_summary()["run"]["max_cost"]
    assert why in mc["halted"] and "stopped by --max-cost $5: the endpoint reported" in out


@pytest.mark.parametrize("tokens", [(-1000, 5), (10, -5), (10**12, 5), (None, 5)])
def test_unpriceable_usage_is_unreported_never_free(tokens):
    """Uncapped runs record such a call as unreported (the run's cost becomes a lower bound), never $0 or less."""
    out = ModelOutput(text="x", input_tokens=tokens[0], output_tokens=tokens[1])
    assert usage_of(out) == {"input": 0, "output": 0, "unreported": 1}


@pytest.fixture
def fixtures_dir(fixtures_dir: Path) -> Path:
    if not (fixtures_dir / "multihop").is_dir():
        pytest.skip("multihop fixtures missing")
    return fixtures_dir
