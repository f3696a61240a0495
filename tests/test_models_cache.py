"""The response cache against a real adapter and a local server: hits make no call."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from PIL import Image

from matbench.models import ChatRequest, get_model
from matbench.models.cache import CachedModel, cache_key, is_deterministic


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def cached(server: FakeOpenAIServer, path: Path, **options) -> CachedModel:
    """As the runner builds it: the preflight reads the served checkpoint, which keys every answer."""
    model = CachedModel(
        get_model("openai:m", base_url=server.base_url, retry_base_delay=0.001, **options), path
    )
    model.preflight()
    return model


class Session:
    """One event loop for a whole test (the client's connections belong to the loop that made them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.close()

    def gen(self, model: CachedModel, requests: list[ChatRequest]):
        return self.loop.run_until_complete(model.generate(requests))

    def close(self, model: CachedModel) -> None:
        self.loop.run_until_complete(model.aclose())


def test_deterministic_requests_hit_the_cache(tmp_path: Path) -> None:
    answers = iter(f"a{i}" for i in range(100))
    with Session() as s, FakeOpenAIServer(lambda req: next(answers)) as srv:
        model = cached(srv, tmp_path / "c.sqlite")
        [first] = s.gen(model, [ChatRequest("q", temperature=0.0)])
        [second] = s.gen(model, [ChatRequest("q", temperature=0.0)])
        assert srv.calls == 1
        assert first.text == second.text == "a0"
        assert not first.cached and second.cached and second.latency == 0.0
        assert second.input_tokens == first.input_tokens and second.finish_reason == "stop"
        [seeded] = s.gen(model, [ChatRequest("q", temperature=0.8, seed=5)])
        [seeded2] = s.gen(model, [ChatRequest("q", temperature=0.8, seed=5)])
        assert seeded.text == seeded2.text == "a1" and seeded2.cached and srv.calls == 2
        [other] = s.gen(model, [ChatRequest("q", temperature=0.0, max_new_tokens=5)])  # a different key
        assert other.text == "a2" and srv.calls == 3
        assert model.stats() == {"hits": 2, "misses": 3, "bypassed": 0}
        s.close(model)


def test_non_deterministic_requests_pass_through(tmp_path: Path) -> None:
    answers = iter(f"a{i}" for i in range(100))
    with Session() as s, FakeOpenAIServer(lambda req: next(answers)) as srv:
        model = cached(srv, tmp_path / "c.sqlite")
        outs = [s.gen(model, [ChatRequest("q", temperature=0.7)])[0] for _ in range(2)]
        outs += [s.gen(model, [ChatRequest("q")])[0]]  # server default decoding: unknown, not cached
        s.close(model)
    assert [o.text for o in outs] == ["a0", "a1", "a2"] and not any(o.cached for o in outs)
    assert srv.calls == 3 and model.stats()["bypassed"] == 3


def test_cache_persists_across_instances_but_never_across_servers(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Session() as s, FakeOpenAIServer("remembered", roots={"m": "/ckpt/m"}) as srv:
        m1 = cached(srv, path, max_concurrency=3)
        s.gen(m1, [ChatRequest("q", temperature=0.0)])
        s.close(m1)
        m2 = cached(srv, path, max_concurrency=9)  # same server, other concurrency: same answer
        [out] = s.gen(m2, [ChatRequest("q", temperature=0.0)])
        s.close(m2)
    assert out.text == "remembered" and out.cached
    with Session() as s, FakeOpenAIServer("fresh", roots={"m": "/ckpt/other"}) as srv2:  # other weights
        m3 = cached(srv2, path)
        [out] = s.gen(m3, [ChatRequest("q", temperature=0.0)])
        s.close(m3)
    assert out.text == "fresh" and not out.cached and srv2.calls == 1
    with Session() as s, FakeOpenAIServer("own", roots={"m": "/ckpt/m"}) as srv3:  # same name and root, elsewhere
        m4 = cached(srv3, path)
        [out] = s.gen(m4, [ChatRequest("q", temperature=0.0)])
        s.close(m4)
    assert out.text == "own" and not out.cached and srv3.calls == 1  # another server of your own: its answers
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_served_model_identity_is_part_of_the_key(tmp_path: Path) -> None:
    with Session() as s, FakeOpenAIServer(lambda req: f"n{srv.calls}", models=["m"]) as srv:
        model = get_model("openai:m", base_url=srv.base_url)
        model.preflight()
        assert model.config()["served_model"]["id"] == "m"
        c1 = CachedModel(model, tmp_path / "c.sqlite")
        [a] = s.gen(c1, [ChatRequest("q", temperature=0.0)])
        s.close(c1)
        other = get_model("openai:m", base_url=srv.base_url)
        other.preflight()
        other.served = dataclasses.replace(other.served, root="/ckpt/another")  # same name, other weights
        c2 = CachedModel(other, tmp_path / "c.sqlite")
        [b] = s.gen(c2, [ChatRequest("q", temperature=0.0)])
        s.close(c2)
    assert (a.text, b.text) == ("n1", "n2") and not b.cached


def test_errors_are_not_cached(tmp_path: Path) -> None:
    with (
        Session() as s,
        FakeOpenAIServer(lambda req: Reply.error(400, "nope") if srv.calls == 1 else "works") as srv,
    ):
        model = cached(srv, tmp_path / "c.sqlite")
        [bad] = s.gen(model, [ChatRequest("q", temperature=0.0)])
        [good] = s.gen(model, [ChatRequest("q", temperature=0.0)])
        s.close(model)
    assert bad.error and good.text == "works" and not good.cached and srv.calls == 2


def test_images_are_keyed_by_content(tmp_path: Path) -> None:
    arr = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(arr).save(a)
    Image.fromarray(arr).save(b)
    answers = iter(f"a{i}" for i in range(100))
    with Session() as s, FakeOpenAIServer(lambda req: next(answers)) as srv:
        model = cached(srv, tmp_path / "c.sqlite")
        [x] = s.gen(model, [ChatRequest("q", images=[a], temperature=0.0)])
        [y] = s.gen(model, [ChatRequest("q", images=[b], temperature=0.0)])  # same pixels, other path: hit
        time.sleep(0.01)  # a distinct mtime, even on coarse-clock filesystems
        Image.fromarray(255 - arr).save(a)
        [z] = s.gen(model, [ChatRequest("q", images=[a], temperature=0.0)])  # changed content: miss
        s.close(model)
    assert (x.text, y.text, y.cached, z.text, z.cached) == ("a0", "a0", True, "a1", False)
    assert srv.calls == 2


def test_mixed_batch_keeps_order(tmp_path: Path) -> None:
    with Session() as s, FakeOpenAIServer(lambda req: req["messages"][0]["content"] + "!") as srv:
        model = cached(srv, tmp_path / "c.sqlite")
        s.gen(model, [ChatRequest("b", temperature=0.0)])
        outs = s.gen(
            model,
            [
                ChatRequest("a", temperature=0.0),
                ChatRequest("b", temperature=0.0),
                ChatRequest("c", temperature=0.9),
            ],
        )
        s.close(model)
    assert [o.text for o in outs] == ["a!", "b!", "c!"] and [o.cached for o in outs] == [False, True, False]
    assert srv.calls == 3


def test_is_deterministic_uses_backend_default_temperature() -> None:
    assert is_deterministic({"default_temperature": 0.0}, ChatRequest("q"))
    assert not is_deterministic({"default_temperature": 0.1}, ChatRequest("q"))
    assert not is_deterministic({}, ChatRequest("q"))
    assert is_deterministic({}, ChatRequest("q", seed=0))
    assert not is_deterministic({"default_temperature": 0.0}, ChatRequest("q", temperature=0.5))


def test_cache_key_ignores_operational_config_but_not_identity_or_request_fields() -> None:
    """The key is over the model's identity() (models/base.py's one list of runtime fields left out; a backend
    adds what identifies it, e.g. OpenAIModel its own server's URL) and the request."""
    base = {"backend": "openai", "model": "m", "max_concurrency": 4, "timeout": 10, "base_url": "http://a"}
    req = ChatRequest("q", temperature=0.0)
    assert cache_key(base, req) == cache_key({**base, "max_concurrency": 64, "timeout": 99}, req)
    assert cache_key(base, req) == cache_key(base, ChatRequest("q", temperature=0.0, tag="x#1"))
    assert cache_key(base, req) == cache_key({**base, "base_url": "http://b"}, req)
    assert cache_key(base, req) != cache_key({**base, "model": "n"}, req)
    assert cache_key(base, req) != cache_key({**base, "served_model": {"id": "m", "root": "/x"}}, req)
    for changed in (
        ChatRequest("q", temperature=0.0, top_p=0.5),
        ChatRequest("q", temperature=0.0, max_new_tokens=7),
        ChatRequest("q", temperature=0.0, seed=1),
        ChatRequest("q!", temperature=0.0),
    ):
        assert cache_key(base, req) != cache_key(base, changed)


def test_cache_key_is_the_sha256_of_the_whole_payload_so_existing_caches_stay_valid() -> None:
    """The per-model prefix is a shortcut: the key is still sha256 of {"config", "request"} as sorted JSON."""
    import hashlib
    import json

    from matbench.models.base import Message, ToolSpec
    from matbench.models.cache import config_prefix, request_fields, semantic_config

    cfg = {
        "backend": "openai",
        "model": "m",
        "base_url": "http://a",
        "timeout": 3,
        "served_model": {"id": "m"},
    }
    tool = ToolSpec("search", "look it up", {"type": "object", "properties": {"q": {"type": "string"}}})
    for req in (
        ChatRequest('q é "x"\n', temperature=0.0),
        ChatRequest("", seed=3, messages=[Message(role="user", text="hi")], tools=[tool]),
    ):
        payload = {"config": semantic_config(cfg), "request": request_fields(req)}
        blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode("utf-8")
        expected = hashlib.sha256(blob).hexdigest()
        assert cache_key(cfg, req) == expected
        assert cache_key(cfg, req, config_prefix(cfg)) == expected


def test_restart_on_the_same_port_with_no_checkpoint_identity_never_replays(tmp_path: Path) -> None:
    """#20.7: another model under the same name on the same port, from a server that reports no checkpoint
    (no vLLM `root`): nothing is replayed, nothing stored; the answers are the new server's."""
    path = tmp_path / "c.sqlite"
    with Session() as s, FakeOpenAIServer("old model") as first:
        port = first.port
        m1 = cached(first, path)
        s.gen(m1, [ChatRequest("q", temperature=0.0)])
        s.close(m1)
    for round_ in range(2):  # the same restart twice: the second run is not answered from the first either
        with Session() as s, FakeOpenAIServer(f"new model {round_}", port=port, roots={"m": None}) as second:
            m2 = cached(second, path)
            assert m2.identity() is None
            [out] = s.gen(m2, [ChatRequest("q", temperature=0.0)])
            s.close(m2)
        assert out.text == f"new model {round_}" and not out.cached and second.calls == 1
        assert m2.stats() == {"hits": 0, "misses": 0, "bypassed": 1, "no_identity": True}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1  # only the first server's


@pytest.mark.parametrize(
    "garbage",
    ["{not json", '"a string"', '{"text": null, "error": "x"}', '{"text": "t", "tool_calls": [1]}',
     '{"text": "t", "input_tokens": -5}', "[]"],
)
def test_a_corrupt_row_is_dropped_and_recomputed(tmp_path: Path, garbage: str) -> None:
    """#20.7: a row that does not read back as an answer is a miss: the model answers, the row is replaced;
    never an exception that would fail the sample on every retry."""
    path = tmp_path / "c.sqlite"
    answers = iter(f"a{i}" for i in range(10))
    with Session() as s, FakeOpenAIServer(lambda req: next(answers)) as srv:
        m1 = cached(srv, path)
        s.gen(m1, [ChatRequest("q", temperature=0.0)])
        s.close(m1)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE responses SET output = ?", (garbage,))
        m2 = cached(srv, path)
        [out] = s.gen(m2, [ChatRequest("q", temperature=0.0)])
        [again] = s.gen(m2, [ChatRequest("q", temperature=0.0)])
        s.close(m2)
    assert out.text == "a1" and not out.cached and m2.stats()["corrupt"] == 1
    assert again.text == "a1" and again.cached and srv.calls == 2  # the fresh answer replaced the row


def test_a_run_over_a_corrupt_cache_finishes_every_sample(tmp_path: Path, fixtures_dir: Path, capsys) -> None:
    """#20.7 end to end: every stored answer corrupted between two runs; the second run asks the model again
    and finishes every sample (no error a --retry-errors rerun would hit again)."""
    import json

    from matbench.cli import main

    cache = tmp_path / "cache"

    def run(srv: FakeOpenAIServer, name: str) -> dict:
        args = ["eval", "--no-progress", "--json", "--model", "openai:m", "--base-url", srv.base_url,
                "--task", "bamboogle", "--protocol", "direct", "--data-dir", str(fixtures_dir / "multihop"),
                "--limit", "3", "--run-dir", str(tmp_path / name), "--cache-dir", str(cache),
                "--response-cache"]  # the second run reads the first one's answers
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)[0]

    with FakeOpenAIServer("<answer>x</answer>") as srv:
        first = run(srv, "a")
        assert srv.calls == 3 and first["run"]["errors"] == 0
        with sqlite3.connect(cache / "responses.sqlite") as db:
            assert db.execute("UPDATE responses SET output = '{torn'").rowcount == 3  # shared answers only
        second = run(srv, "b")
    assert srv.calls == 6 and second["run"]["errors"] == 0
    assert second["run"]["response_cache"]["corrupt"] == 3
