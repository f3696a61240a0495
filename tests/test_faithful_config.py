"""What a run records and refuses: the switches (protocol wording, compat, exec scope), --max-pixels with
--base-url, --exec-scope authors without their script; strict Serper. The defaults: test_turn_by_turn."""

from __future__ import annotations

import json

from fake_openai_server import FakeOpenAIServer
from runtime_helpers import fake_args, run_dir_of, run_eval
from test_search_http import FakeServer, Reply, serper


def _eval(srv, tmp_path, fixtures_dir, *extra):
    return run_eval(
        [
            *fake_args(srv, "mat-coding", str(fixtures_dir / "mat" / "coding-demo")),
            "--ids",
            "12",
            "--runs-root",
            str(tmp_path / "runs"),
            *extra,
        ],
        cache_dir=tmp_path / "cache",
    )


def test_switches_are_recorded(tmp_path, fixtures_dir):
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        args = ("--protocol", "matbench-wording", "--compat", "strict", "--exec-scope", "fresh")
        other = _eval(srv, tmp_path, fixtures_dir, *args)
        assert other.returncode == 0, other.stderr
    cfg = json.loads((run_dir_of(other.stdout) / "config.json").read_text())
    assert cfg["protocol"]["wording"] == "matbench" and cfg["options"]["compat"] == "strict"
    assert cfg["options"]["exec_scope"] == "fresh" and cfg["options"]["exec_globals"] is None


def test_max_pixels_with_base_url_is_refused(tmp_path, fixtures_dir):
    with FakeOpenAIServer("x") as srv:
        out = _eval(srv, tmp_path, fixtures_dir, "--max-pixels", "1003520")
        assert srv.calls == 0
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "--max-pixels" in lines[0] and "--base-url" in lines[0]


def test_exec_scope_authors_needs_their_script(tmp_path, fixtures_dir):
    with FakeOpenAIServer("x") as srv:
        out = _eval(srv, tmp_path, fixtures_dir, "--protocol", "matbench-wording", "--exec-scope", "authors")
    assert out.returncode == 2 and "--exec-scope authors needs" in out.stderr


def test_strict_serper_uses_every_returned_result():
    organic = [{"title": t, "link": f"https://{t}", "snippet": f"s{t}"} for t in "ABCDEF"]
    server = FakeServer("serper")
    try:
        server.script = [Reply(body={"organic": organic})] * 2
        with serper(server) as fixed, serper(server, all_results=True) as strict:
            assert len(fixed.search("q", 4)) == 4
            assert [h.title for h in strict.search("q", 4)] == list("ABCDEF")
            assert strict.params()["all_results"] is True and "all_results" not in fixed.params()
        assert [r.body["num"] for r in server.requests] == [4, 4]  # both ask for num=4, as theirs
    finally:
        server.close()
