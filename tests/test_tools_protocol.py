"""`--protocol tools` end to end: `matbench eval` against the local OpenAI-compatible server speaking Chat
Completions tool calls (gpt-4o) and Responses API function calls with reasoning items (o3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, Reply, conversation, decode_data_url
from PIL import Image
from runtime_helpers import RetrievalServer, read_jsonl, run_dir_of, run_eval

SNIPPETS = [
    ("LEGO", "The name LEGO is an abbreviation of the two Danish words leg godt, meaning play well."),
    ("LEGO history", "LEGO was founded in Billund, Denmark, in 1932."),
    ("Leg godt", "Leg godt means play well."),
    ("The LEGO Group", "The LEGO Group is a Danish toy production company."),
    ("Extra", "A fifth passage that top-4 must leave out."),
]
ROTATE = (
    "import cv2\nimg = cv2.imread('path_to_input_image.jpg')\nimg = cv2.rotate(img, cv2.ROTATE_180)\n"
    "cv2.imwrite('path_to_output_image.jpg', img)\n"
)


def _decode(url: str) -> np.ndarray:
    import io

    _, data = decode_data_url(url)
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def _roles(req: dict) -> list[str]:
    return [m["role"] for m in conversation(req)]


def _tool_results(req: dict) -> list[str]:
    return [m["text"] for m in conversation(req) if m["role"] == "tool"]


def coding_policy(req: dict) -> Reply:
    """Rotate the upside-down can, look at the returned image, answer through answer(text)."""
    reasoning = "The can looks upside down." if "input" in req else None
    if not _tool_results(req):
        return Reply(
            reasoning=reasoning,
            tool_calls=[{"id": "call_rot", "name": "run_python", "arguments": {"code": ROTATE}}],
        )
    return Reply(
        text="The label is readable now.",
        reasoning="It reads 1 Can." if reasoning else None,
        tool_calls=[{"id": "call_ans", "name": "answer", "arguments": {"text": "1 Can\n(473ml)"}}],
        cached_tokens=40,
    )


@pytest.fixture()
def coding_dir(fixtures_dir):
    return fixtures_dir / "mat" / "coding-demo"


def _coding_run(tmp_path, coding_dir, model: str, *extra: str):
    with FakeOpenAIServer(coding_policy) as srv:
        out = run_eval(
            [
                "--model",
                model,
                "--base-url",
                srv.base_url,
                "--task",
                "mat-coding",
                "--protocol",
                "tools",
                "--data-dir",
                str(coding_dir),
                "--ids",
                "12",
                "--runs-root",
                str(tmp_path / "runs"),
                *extra,
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
        return out, list(srv.requests), list(srv.paths)


@pytest.mark.parametrize("model,path", [("gpt-4o", "/v1/chat/completions"), ("o3", "/v1/responses")])
def test_coding_episode_image_comes_back_upright(tmp_path, coding_dir, model, path):
    out, requests, paths = _coding_run(tmp_path, coding_dir, model)
    assert paths == [path, path]
    first, second = requests
    assert [t["name"] if "name" in t else t["function"]["name"] for t in first["tools"]] == [
        "run_python",
        "answer",
    ]
    # a real chat: the code call, its text result, then the output image in a user message
    tail = ["assistant", "tool", "user"] if model == "gpt-4o" else ["reasoning", "assistant", "tool", "user"]
    assert _roles(second) == ["system", "user", *tail]
    conv = conversation(second)
    assert "Code ran successfully" in conv[-2]["text"] and "next message" in conv[-2]["text"]
    original = np.asarray(Image.open(coding_dir / "rotation180_1_proc.png").convert("RGB")).astype(np.int16)
    assert np.abs(_decode(conv[1]["images"][0]) - original).mean() < 1
    returned = _decode(conv[-1]["images"][0])
    upright = original[::-1, ::-1]
    assert returned.shape == original.shape
    assert np.abs(returned - upright).mean() < 3  # JPEG round trip only
    assert np.abs(returned - original).mean() > 10 * np.abs(returned - upright).mean()
    if model == "o3":  # reasoning carries across the tool call: the reasoning item goes back verbatim
        assert conv[2]["item"]["encrypted_content"] and second["store"] is False
        assert "temperature" not in second and second["max_output_tokens"] >= 25000
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    assert rec["prediction"] == "1 Can\n(473ml)" and rec["em"] == 1.0 and rec["status"] == "ok"
    assert [t["action"] for t in rec["trajectory"]] == ["tool_calls", "answer"]
    assert all(t["protocol"] == "tools" for t in rec["trajectory"])
    call = rec["trajectory"][0]["tool_calls"][0]
    assert call["function"] == "run_python" and call["name"] == "code" and call["ok"]
    assert json.loads(call["arguments"]) == {"code": ROTATE} and "Code ran successfully" in call["result"]
    assert (run / call["output_image"]).is_file() and rec["trajectory"][1]["image"] == call["output_image"]
    assert rec["tool_calls"] == {"code": 1} and rec["turns"] == 2
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["protocol"]["name"] == "tools" and cfg["options"]["crop_assist"] is False
    api = "chat" if model == "gpt-4o" else "responses"
    assert cfg["protocol"]["tools"] == {
        "functions": ["run_python", "answer"],
        "final": "answer",
        "max_model_calls": 5,
        "tool_call_budget": 5,
        "api": api,
    }
    summary = json.loads((run / "summary.json").read_text())
    tokens, cost = summary["run"]["tokens"], summary["run"]["cost"]
    assert tokens["input"] == sum(t["tokens"]["input"] for t in rec["trajectory"]) > 0
    assert tokens["cached_input"] == 40
    if model == "o3":
        assert tokens["reasoning"] > 0 and rec["trajectory"][0]["think"] == "The can looks upside down."
    price = {"gpt-4o": (2.5, 1.25, 10.0), "o3": (2.0, 0.5, 8.0)}[model]
    expect = ((tokens["input"] - 40) * price[0] + 40 * price[1] + tokens["output"] * price[2]) / 1e6
    assert cost["usd"] == pytest.approx(expect, abs=1e-6) and cost["price"]["model"] == model
    assert cost["per_sample_usd"] == pytest.approx(expect, abs=1e-6)
    assert f"cost: ${expect:.4f}" in out.stdout
    if model == "gpt-4o":  # the viewer shows the calls like tag-protocol turns
        from matbench.cli import main

        assert main(["view", str(run)]) == 0
        data = "".join(p.read_text() for p in sorted((run / "report_data").glob("*.js")))
        assert '"function":"run_python"' in data and "Code ran successfully" in data
        assert "turn 1 code output" in data  # the output image of the native call, as a thumbnail
        assert "c.function" in (run / "report.html").read_text()  # the page renders each call


def _search_run(tmp_path, fixtures_dir, policy, *extra: str, model: str = "openai:fake"):
    with RetrievalServer(SNIPPETS) as rs, FakeOpenAIServer(policy) as srv:
        out = run_eval(
            [
                "--model",
                model,
                "--base-url",
                srv.base_url,
                "--task",
                "mat-search",
                "--protocol",
                "tools",
                "--data-dir",
                str(fixtures_dir / "mat" / "search-demo"),
                "--ids",
                "1",
                "--search",
                f"retriever:{rs.url}",
                "--search-cache",
                "off",
                "--runs-root",
                str(tmp_path / "runs"),
                *extra,
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
        return out, list(srv.requests), list(rs.queries)


def test_search_episode_with_four_snippets(tmp_path, fixtures_dir):
    def policy(req):
        if not _tool_results(req):
            return Reply(
                tool_calls=[{"id": "c1", "name": "search", "arguments": {"query": "LEGO name meaning"}}]
            )
        return Reply(tool_calls=[{"id": "c2", "name": "answer", "arguments": {"text": "Play well"}}])

    out, requests, queries = _search_run(tmp_path, fixtures_dir, policy)
    assert queries == ["LEGO name meaning"] and len(requests) == 2
    assert len(conversation(requests[0])[1]["images"]) == 1  # the question's image goes with the question
    [result] = _tool_results(requests[1])
    assert result == "\n".join(f"{i}. {s}" for i, (_, s) in enumerate(SNIPPETS[:4], 1))
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    assert rec["em"] == 1.0 and rec["tool_calls"] == {"search": 1}
    call = rec["trajectory"][0]["tool_calls"][0]
    assert [r["snippet"] for r in call["results"]] == [s for _, s in SNIPPETS[:4]]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["cost"]["usd"] is None and summary["run"]["cost"]["status"] == "unknown price"
    assert "cost: unknown price" in out.stdout


def test_budget_limit_and_parallel_calls(tmp_path, fixtures_dir):
    """Two searches per message, never an answer: 5 searches run, later calls get a budget error, 5 model calls."""

    def policy(req):
        n = len(_tool_results(req))
        return Reply(
            tool_calls=[
                {"id": f"c{n + i}", "name": "search", "arguments": {"query": f"q{n + i}"}} for i in range(2)
            ]
        )

    out, requests, queries = _search_run(tmp_path, fixtures_dir, policy)
    assert len(requests) == 5 and queries == [f"q{i}" for i in range(5)]
    results = _tool_results(requests[-1])
    assert len(results) == 8 and all("budget of 5 tool calls is used up" in r for r in results[5:])
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert rec["turns"] == 5 and rec["prediction"] is None and rec["status"] == "ok" and rec["f1"] == 0.0
    assert rec["tool_calls"] == {"search": 10} and rec["tool_errors"] == 5


def test_malformed_tool_call_gets_an_error_and_the_episode_goes_on(tmp_path, fixtures_dir):
    def policy(req):
        results = _tool_results(req)
        if not results:
            return Reply(tool_calls=[{"id": "bad", "name": "search", "arguments": '{"query": "LEGO'}])
        if len(results) == 1:
            return Reply(tool_calls=[{"id": "nope", "name": "browse", "arguments": "{}"}])
        return Reply(tool_calls=[{"id": "ok", "name": "answer", "arguments": {"text": "Play well"}}])

    out, requests, queries = _search_run(tmp_path, fixtures_dir, policy)
    assert queries == [] and len(requests) == 3
    bad, unknown = _tool_results(requests[2])
    assert bad.startswith("Error: the arguments of search are not a JSON object") and "invalid JSON" in bad
    assert "no function named browse" in unknown and "search, answer" in unknown
    rec = read_jsonl(run_dir_of(out.stdout) / "predictions.jsonl")[0]
    assert rec["em"] == 1.0 and rec["tool_errors"] == 2 and rec["status"] == "ok"
    assert rec["trajectory"][0]["tool_calls"][0]["arguments"] == '{"query": "LEGO'


def test_final_answer_as_a_plain_message(tmp_path, fixtures_dir):
    """A protocol file with `final: message`: no answer function, the first message without tool calls ends it."""
    import yaml

    from matbench.tasks import get_task

    data = yaml.safe_load(get_task("mat-search").protocol("tools").file.read_text())
    data["final"] = "message"
    custom = tmp_path / "message.yaml"
    custom.write_text(yaml.safe_dump(data))

    def policy(req):
        if not _tool_results(req):
            return Reply(tool_calls=[{"id": "c1", "name": "search", "arguments": {"query": "LEGO"}}])
        return Reply(text="  Play well \n")

    out, requests, _ = _search_run(tmp_path, fixtures_dir, policy, "--protocol-file", str(custom))
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["search"]
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    assert rec["prediction"] == "Play well" and rec["em"] == 1.0
    assert json.loads((run / "config.json").read_text())["protocol"]["tools"]["final"] == "message"


def test_in_process_engine_is_refused(tmp_path, coding_dir):
    """vLLM in-process has no tool calls: one clear line instead of a run that sends empty prompts."""
    from matbench.errors import ConfigError
    from matbench.models.vllm_local import VLLMModel
    from matbench.run.scheduler import EvalSettings, plan_task

    settings = EvalSettings(
        model="qwen2.5-vl-7b",
        tasks=["mat-coding"],
        protocol="tools",
        data_dir=str(coding_dir),
        runs_root=str(tmp_path / "runs"),
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(ConfigError, match="--protocol tools needs an OpenAI-compatible endpoint"):
        # the engine itself cannot load here (no GPU): the question is asked of the backend, not of a name
        plan_task(settings, "mat-coding", VLLMModel.__new__(VLLMModel), {})
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "model,flags,path,field",
    [
        (
            "o3",
            ["--api", "chat", "--reasoning-effort", "low"],
            "/v1/chat/completions",
            "max_completion_tokens",
        ),
        ("gpt-4o", ["--api", "responses"], "/v1/responses", "max_output_tokens"),
    ],
)
def test_api_shape_forced_by_flag(tmp_path, fixtures_dir, model, flags, path, field):
    def policy(req):
        return Reply(tool_calls=[{"id": "c", "name": "answer", "arguments": {"text": "Play well"}}])

    with RetrievalServer(SNIPPETS) as rs, FakeOpenAIServer(policy) as srv:
        out = run_eval(
            [
                "--model",
                model,
                "--base-url",
                srv.base_url,
                "--task",
                "mat-search",
                "--protocol",
                "tools",
                "--data-dir",
                str(fixtures_dir / "mat" / "search-demo"),
                "--ids",
                "1",
                "--search",
                f"retriever:{rs.url}",
                "--search-cache",
                "off",
                "--runs-root",
                str(tmp_path / "runs"),
                *flags,
            ],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
        assert srv.paths == [path]
        [req] = srv.requests
    assert req[field] == (25000 if model == "o3" else 2048)
    if model == "o3":
        assert req["reasoning_effort"] == "low" and "temperature" not in req
    else:
        assert req["temperature"] == 0.0 and "include" not in req  # no reasoning items to ask for
    run = run_dir_of(out.stdout)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["protocol"]["tools"]["api"] == flags[1] and cfg["model"]["api"] == flags[1]
    assert read_jsonl(run / "predictions.jsonl")[0]["em"] == 1.0
