"""The shared transport against hostile servers on 127.0.0.1: a server that trickles its reply a byte at a time
(model call, search, download, and `eval --request-timeout` end to end), redirects to another origin (keys stay
home), a replica answering 200 with something that is not a completion, and visible retries."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from runtime_helpers import LoopbackServer, main_eval

from matbench.errors import ConfigError
from matbench.models import get_model
from matbench.models.base import ChatRequest
from matbench.records.run_dir import RunDir
from matbench.tools.search import RetryPolicy, SearchError
from matbench.tools.search.serper import SerperSearch

KEY = "sk-test-origin-pinned-9d2f7a"
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "fake",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "<answer> x </answer>"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
}  # fmt: skip
MODELS = {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "t"}]}


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json", **hdr):
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for k, v in hdr.items():
        handler.send_header(k.replace("_", "-"), v)
    handler.end_headers()
    handler.wfile.write(body)


class Recorder(LoopbackServer):
    """A loopback server whose ``answer(handler, method)`` decides; every request's path and headers kept."""

    def __init__(self, answer):
        self.seen: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.seen_body = self.rfile.read(length) if length else b""
                outer.seen.append((method, self.path, {k.lower(): v for k, v in self.headers.items()}))
                try:
                    answer(self, method)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the deadline is for

            def do_GET(self):  # noqa: N802 - http.server API
                self._any("GET")

            def do_POST(self):  # noqa: N802
                self._any("POST")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.httpd.daemon_threads = True

    def got_key(self) -> bool:
        return any(KEY in " ".join(headers.values()) for _, _, headers in self.seen)


def trickle(handler: BaseHTTPRequestHandler, method: str, interval: float = 0.25) -> None:
    """``GET /v1/models`` at once; anything else a valid answer sent one byte every ``interval`` s."""
    if handler.path.endswith("/models"):
        return _send(handler, 200, json.dumps(MODELS).encode())
    body = json.dumps({**COMPLETION, "organic": [], "padding": "." * 150}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for i in range(len(body)):
        handler.wfile.write(body[i : i + 1])
        handler.wfile.flush()
        time.sleep(interval)


# --- every network call has a deadline, end to end -----------------------------------------------------------
@pytest.mark.parametrize("http_transport", ["aiohttp", "httpx"])
def test_a_trickling_server_cannot_hold_a_model_call(http_transport):
    import openai  # noqa: F401 - imported before the clock starts (1-2 s here)

    with Recorder(trickle) as srv:
        model = get_model(
            "openai:fake", base_url=srv.url + "/v1", timeout=1.0, max_retries=0, http_transport=http_transport
        )
        model.preflight()

        async def go():
            try:
                return await model.generate([ChatRequest("q")])
            finally:
                await model.aclose()

        t0 = time.monotonic()
        (out,) = asyncio.run(go())
        took = time.monotonic() - t0
    assert out.text is None and "timed out after 1s" in out.error
    assert took < 2.5  # the body alone would take ~60 s at one byte per 0.25 s


def test_a_trickling_server_cannot_hold_a_search():
    with Recorder(trickle) as srv:
        with SerperSearch(api_key=KEY, base_url=srv.url, timeout=1.0, retry=RetryPolicy(max_attempts=1)) as s:
            t0 = time.monotonic()
            with pytest.raises(SearchError, match="timed out after 1s"):
                s.search("q", 3)
            assert time.monotonic() - t0 < 3.0


def test_a_trickling_server_cannot_hold_the_authors_download(monkeypatch):
    from matbench.protocols import authors_source

    with Recorder(trickle) as srv:
        monkeypatch.setenv(authors_source.BASE_URL_ENV, srv.url)
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="timed out after 1s"):
            authors_source._download("Visual-ARFT/x.py", 1.0)
        assert time.monotonic() - t0 < 3.0


def test_eval_request_timeout_bounds_each_call_and_is_recorded(tmp_path, fixtures_dir, capsys):
    with Recorder(trickle) as srv:
        t0 = time.monotonic()
        rc, out, err = main_eval(
            ["--model", "openai:fake", "--base-url", srv.url + "/v1", "--task", "bamboogle", "--protocol",
             "direct", "--data-dir", str(fixtures_dir / "multihop"), "--limit", "2", "--max-retries", "0",
             "--request-timeout", "1", "--no-response-cache", "--run-dir", str(tmp_path / "run"),
             "--cache-dir", str(tmp_path / "cache")],
            capsys,
        )  # fmt: skip
        took = time.monotonic() - t0
    assert rc == 1 and "2 samples ended in API errors" in err
    assert took < 15.0
    run = RunDir(tmp_path / "run")
    config = run.read_config()
    assert config["request_timeout"] == 1.0 and config["model_runtime"]["timeout"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert all("timed out after 1s" in (r.get("error") or "") for r in rows), rows


def test_request_timeout_reaches_the_search_backend():
    from matbench.run.options import EvalSettings
    from matbench.tools.search.tool import open_search

    settings = EvalSettings(model="m", tasks=["t"], search="retriever:http://127.0.0.1:9", request_timeout=2.5)
    search = open_search(settings)
    try:
        assert search.backend._http._service.transport.timeout == 2.5
    finally:
        search.close()


def test_request_timeout_reaches_the_judge(tmp_path, monkeypatch):
    from matbench.judge.loop import Judge, JudgeSettings

    monkeypatch.setenv("MATBENCH_CACHE_DIR", str(tmp_path))
    with Recorder(trickle) as srv:
        judge = Judge(JudgeSettings(model="openai:fake", base_url=srv.url + "/v1", request_timeout=1.5))
        assert judge.model.config()["timeout"] == 1.5


# --- secrets stay at their origin ----------------------------------------------------------------------------
def _redirect_to(target: Recorder):
    def answer(handler, method):
        _send(handler, 307, b"", Location=target.url + handler.path)

    return answer


def test_the_serper_key_follows_a_redirect_only_within_its_origin(caplog):
    caplog.set_level(logging.DEBUG)
    with Recorder(lambda h, m: _send(h, 200, b'{"organic": []}')) as other:
        with Recorder(_redirect_to(other)) as home:
            with SerperSearch(api_key=KEY, base_url=home.url, retry=RetryPolicy(max_attempts=1)) as s:
                with pytest.raises(SearchError) as ei:
                    s.search("q", 3)
    assert home.got_key()  # the key goes where it was configured for...
    assert not other.got_key()  # ...and nowhere else
    assert "redirect" in str(ei.value) and KEY not in str(ei.value) and KEY not in caplog.text

    def same_origin(handler, method):  # a redirect within the origin is followed, key and all
        if handler.path == "/search":
            return _send(handler, 307, b"", Location="/v2/search")
        _send(handler, 200, b'{"organic": [{"title": "t", "link": "l", "snippet": "s"}]}')

    with Recorder(same_origin) as home:
        with SerperSearch(api_key=KEY, base_url=home.url, retry=RetryPolicy(max_attempts=1)) as s:
            assert [h.snippet for h in s.search("q", 3)] == ["s"]
    assert [p for _, p, _ in home.seen] == ["/search", "/v2/search"] and home.got_key()


def test_the_openai_key_never_follows_a_redirect_to_another_origin(monkeypatch, caplog):
    """Both the preflight (GET /models) and a model call: a 307 elsewhere is refused, the key stays home."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Recorder(lambda h, m: _send(h, 200, json.dumps(MODELS if h.path.endswith("models") else COMPLETION).encode())) as other:  # noqa: E501
        with Recorder(_redirect_to(other)) as home:
            model = get_model("openai:fake", base_url=home.url + "/v1", max_retries=0)
            with pytest.raises(ConfigError) as ei:
                model.preflight()
            assert KEY not in str(ei.value) and "redirect" in str(ei.value)

        def models_here(handler, method):
            if handler.path.endswith("/models"):
                return _send(handler, 200, json.dumps(MODELS).encode())
            _send(handler, 307, b"", Location=other.url + handler.path)

        with Recorder(models_here) as home2:
            model = get_model("openai:fake", base_url=home2.url + "/v1", max_retries=0)
            model.preflight()

            async def go():
                try:
                    return await model.generate([ChatRequest("q")])
                finally:
                    await model.aclose()

            (out,) = asyncio.run(go())
    assert home.got_key() and home2.got_key()
    assert not other.got_key(), other.seen
    assert out.text is None and "redirect" in out.error and KEY not in out.error
    assert KEY not in caplog.text and KEY not in repr(model) and KEY not in json.dumps(model.config())


# --- a replica answering 200 with something that is not a completion -----------------------------------------
GARBAGE = {
    "html": (b"<!DOCTYPE html><html><body>Welcome to nginx!</body></html>", "text/html"),
    "not-json": (b"upstream connect error", "text/plain"),
    "no-choices": (b'{"id": "x", "object": "chat.completion"}', "application/json"),
    "no-message": (b'{"choices": [{"index": 0}]}', "application/json"),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_replica_answering_garbage_is_drained_and_its_calls_move(kind, tmp_path, fixtures_dir, capsys):
    body, ctype = GARBAGE[kind]
    posts = []

    def answer(handler, method):
        if handler.path.endswith("/models"):
            return _send(handler, 200, json.dumps(MODELS).encode())
        posts.append(1)
        _send(handler, 200, body, ctype)

    # the same model as the good replica: matbench refuses replicas that serve different checkpoints
    with Recorder(answer) as bad, FakeOpenAIServer("<answer> x </answer>", roots={"fake": None}) as good:
        rc, out, err = main_eval(
            ["--model", "openai:fake", "--base-url", bad.url + "/v1", "--base-url", good.base_url, "--task",
             "bamboogle", "--protocol", "direct", "--data-dir", str(fixtures_dir / "multihop"), "--limit", "20",
             "--max-concurrency", "4", "--max-retries", "2", "--retry-delay", "0.01", "--no-response-cache",
             "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")],
            capsys,
        )  # fmt: skip
    assert rc == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["run"]["errors"] == 0 and summary["n"] == 20
    eps = {e["url"]: e for e in summary["run"]["endpoints"]}
    sick, fine = eps[bad.url + "/v1"], eps[good.base_url]
    assert not sick["healthy"] and sick["drained"] == 1 and sick["calls"] == 0  # an answer it never gave
    assert sick["failed"] == sick["moved"] == len(posts) <= 3 + 4  # drained after 3 in a row (+ in flight)
    assert fine["calls"] == good.calls == 20


# --- waiting is visible -------------------------------------------------------------------------------------
def test_retries_are_visible_within_two_seconds(tmp_path, fixtures_dir, capsys, caplog):
    caplog.set_level(logging.WARNING)
    first: list[float] = []
    lines: list[tuple[float, str]] = []

    class Watch(logging.Handler):
        def emit(self, record):
            lines.append((time.time(), record.getMessage()))

    def policy(req):
        if len(first) < 2:
            first.append(time.time())
            return Reply.error(503, "overloaded", retry_after=1)
        return "<answer> x </answer>"

    handler = Watch(logging.WARNING)
    logging.getLogger("matbench").addHandler(handler)
    try:
        with FakeOpenAIServer(policy) as srv:
            rc, out, err = main_eval(
                ["--model", "openai:fake", "--base-url", srv.base_url, "--task", "bamboogle", "--protocol",
                 "direct", "--data-dir", str(fixtures_dir / "multihop"), "--limit", "1", "--max-retries", "3",
                 "--no-response-cache", "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")],
                capsys,
            )  # fmt: skip
    finally:
        logging.getLogger("matbench").removeHandler(handler)
    assert rc == 0, err
    waits = [(t, m) for t, m in lines if "HTTP 503" in m]
    assert len(waits) == 1, lines  # one line per endpoint change, not one per retry
    when, text = waits[0]
    assert srv.base_url in text and "attempt 1/4" in text and "next try in 1." in text
    assert when - first[0] < 2.0
    assert any("answers again" in m for _, m in lines)


def test_the_progress_bar_shows_the_wait():
    """The bar's postfix names the status, the next attempt and when it comes, and clears on recovery."""
    from types import SimpleNamespace

    from matbench.net.transport import Notice
    from matbench.run.scheduler import _Progress

    progress = _Progress(SimpleNamespace(todo=[1, 2], spec=SimpleNamespace(name="t")), True)
    try:
        progress.notice(Notice("openai:fake", "http://h/v1", "retry", "HTTP 503: overloaded", 1, 7, 2.0))
        assert progress.postfix["wait"] == "HTTP 503: overloaded try 2/7 in 2.0s"
        assert "HTTP 503" in str(progress.bar)
        progress.notice(Notice("openai:fake", "http://h/v1", "back"))
        assert "wait" not in progress.postfix
    finally:
        progress.close()


@pytest.fixture
def fixtures_dir(fixtures_dir: Path) -> Path:
    if not (fixtures_dir / "multihop").is_dir():
        pytest.skip("multihop fixtures missing")
    return fixtures_dir



