"""The authors' strings: read with ast from their scripts, checked by sha256, from a copy, the cache or a download."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, request_text
from runtime_helpers import LoopbackServer, fake_args, read_jsonl, run_dir_of, run_eval

from matbench.errors import ConfigError
from matbench.protocols.authors_source import AUTHORS_COMMIT, AUTHORS_REPO, cache_path
from matbench.protocols.authors_strings import authors_templates

CODING = "Visual-ARFT/evaluation_coding/evaluation_mat_coding_visual_arft.py"
SEARCH = "Visual-ARFT/evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_visual_arft.py"
BAMBOOGLE_DF = "Visual-ARFT/evaluation_search/traditional_benchmark/evaluation_bamboogle_ngpu_7b_df.py"


@pytest.fixture
def repo(fixtures_dir) -> Path:
    return fixtures_dir / "visual-arft-repo"


def _fixture_template(text: str) -> str:
    return text.replace("\\n", "\n").replace("{model_output}", "{output}")


def test_strings_match_the_fixture_protocol(repo, fixtures_dir, tmp_path):
    proto = json.loads((fixtures_dir / "protocol" / "visual-arft-protocol.json").read_text())
    coding = authors_templates("coding", CODING, authors_repo=str(repo), cache_dir=tmp_path)
    assert (
        coding["instructions"]
        == (fixtures_dir / "protocol" / "visual-arft-coding-instructions.txt").read_text()
    )
    assert coding["first"] == _fixture_template(proto["coding"]["first_text"])
    assert coding["after_problem"] == _fixture_template(proto["coding"]["after_problem"])
    assert coding["tips"] == proto["coding"]["tips"]
    assert coding["after_other"] == "{text}"
    assert ["np", "numpy", None] in coding["imports"] and ["Image", "PIL", "Image"] in coding["imports"]
    search = authors_templates("search", SEARCH, authors_repo=str(repo), cache_dir=tmp_path)
    assert (
        search["instructions"]
        == (fixtures_dir / "protocol" / "visual-arft-search-instructions.txt").read_text()
    )
    for key in ("first_text", "after_search", "after_answer", "after_other"):
        assert search[key.replace("_text", "")] == _fixture_template(proto["search"][key])
    assert search.source["commit"] == AUTHORS_COMMIT and search.source["via"] == "authors-repo"
    # the multi-hop scripts hold the same strings as MAT-Search
    hotpot = authors_templates(
        "search",
        "Visual-ARFT/evaluation_search/traditional_benchmark/evaluation_hotpotqa_ngpu_7b_visual_arft.py",
        authors_repo=str(repo / "Visual-ARFT"),  # the Visual-ARFT folder itself is accepted too
        cache_dir=tmp_path,
    )
    assert hotpot.data == search.data and hotpot.sha256 == search.sha256
    direct = authors_templates("direct", BAMBOOGLE_DF, authors_repo=str(repo), cache_dir=tmp_path)
    assert direct["first"] == "{question}\n{instructions}" and direct["instructions"].strip()
    assert not (tmp_path / "authors").exists()  # a local copy is never cached


def _changed_copy(repo: Path, dest: Path, relpath: str, old: bytes, new: bytes) -> Path:
    target = dest / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    data = (repo / relpath).read_bytes()
    assert old in data
    target.write_bytes(data.replace(old, new, 1))
    return dest


def test_a_changed_string_is_refused_naming_file_and_string(repo, tmp_path):
    changed = _changed_copy(repo, tmp_path / "copy", CODING, b"We now need to crop", b"We need to crop")
    with pytest.raises(ConfigError) as err:
        authors_templates("coding", CODING, authors_repo=str(changed), cache_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and CODING in msg and "coding.tips.crop" in msg
    moved = _changed_copy(
        repo, tmp_path / "copy2", SEARCH, b"elif '<search>' in result", b"if '<search>' in result"
    )
    with pytest.raises(ConfigError, match="not the authors' script matbench reads"):
        authors_templates("search", SEARCH, authors_repo=str(moved), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="no Visual-ARFT/evaluation_coding"):
        authors_templates("coding", CODING, authors_repo=str(tmp_path / "empty"), cache_dir=tmp_path)


class RawHost(LoopbackServer):
    """Serves a folder in the raw-file host's layout: GET /<owner>/<repo>/<commit>/<path>."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.paths.append(self.path)
                prefix = f"/{AUTHORS_REPO}/{AUTHORS_COMMIT}/"
                file = outer.root / self.path[len(prefix) :]
                if not self.path.startswith(prefix) or not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def _direct_bamboogle(srv, tmp_path: Path, fixtures_dir: Path, env: dict, *extra: str):
    return run_eval(
        [
            *fake_args(srv, "bamboogle", str(fixtures_dir / "multihop")),
            "--limit",
            "2",
            "--protocol",
            "direct",
            "--runs-root",
            str(tmp_path / "runs"),
            "--overwrite",
            *extra,
        ],
        env_extra=env,
        cache_dir=tmp_path / "cache",
    )


@pytest.fixture
def no_copy(monkeypatch):
    """No local copy of the authors' repository: the cache or the raw-file host must provide the scripts."""
    monkeypatch.delenv("MATBENCH_AUTHORS_REPO", raising=False)


def test_download_once_then_offline_from_the_cache(repo, fixtures_dir, tmp_path, no_copy):
    with RawHost(repo) as host, FakeOpenAIServer("  Titan IIIE \n") as srv:
        out = _direct_bamboogle(srv, tmp_path, fixtures_dir, {"MATBENCH_AUTHORS_BASE_URL": host.url})
        assert out.returncode == 0, out.stderr
        assert host.paths == [f"/{AUTHORS_REPO}/{AUTHORS_COMMIT}/{BAMBOOGLE_DF}"]
        sent = sorted(request_text(r) for r in srv.requests)
    cached = cache_path(tmp_path / "cache", BAMBOOGLE_DF)
    assert cached.read_bytes() == (repo / BAMBOOGLE_DF).read_bytes()
    questions = [
        json.loads(line)["question"] for line in (fixtures_dir / "multihop/bamboogle/test.jsonl").open()
    ]
    line = sent[0].split("\n")[1]
    assert sent == sorted(f"{q}\n{line}" for q in questions[:2])  # the question, then their one line
    run = run_dir_of(out.stdout)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["protocol_source"]["via"] == "download" and cfg["protocol"]["source"]["file"] == BAMBOOGLE_DF
    assert cfg["decoding"]["max_new_tokens"] == 2048
    assert read_jsonl(run / "predictions.jsonl")[0]["prediction"] == "Titan IIIE"  # the raw reply, stripped
    # the host is gone: the cached copy serves, with no request
    with FakeOpenAIServer("x") as srv:
        again = _direct_bamboogle(srv, tmp_path, fixtures_dir, {"MATBENCH_AUTHORS_BASE_URL": host.url})
        assert again.returncode == 0, again.stderr
    cfg = json.loads((run_dir_of(again.stdout) / "config.json").read_text())
    assert cfg["protocol_source"]["via"] == "cache"
    # a cached copy edited since is refused, naming where it was read from, even when every string it
    # holds is intact (one more line of code: the whole file is checked, every time it is read)
    cached.write_bytes(cached.read_bytes() + b"\nimport os  # tampered\n")
    with pytest.raises(ConfigError) as err:
        authors_templates("direct", BAMBOOGLE_DF, authors_repo=None, cache_dir=tmp_path / "cache")
    assert str(cached) in str(err.value) and "not the file pinned" in str(err.value)
    assert cached.is_file()  # refused, left for the user to see (the message says how to get it again)


def test_a_changed_download_is_refused_and_not_cached(repo, fixtures_dir, tmp_path, no_copy):
    served = tmp_path / "served"
    shutil.copytree(repo, served)
    df = served / BAMBOOGLE_DF
    df.write_bytes(df.read_bytes() + b"\nimport os  # every string intact, one more line of code\n")
    with RawHost(served) as host, FakeOpenAIServer("x") as srv:
        out = _direct_bamboogle(srv, tmp_path, fixtures_dir, {"MATBENCH_AUTHORS_BASE_URL": host.url})
        assert srv.calls == 0
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert BAMBOOGLE_DF in lines[0] and "not the one pinned" in lines[0]
    assert not cache_path(tmp_path / "cache", BAMBOOGLE_DF).exists()


def test_every_file_matbench_reads_is_pinned(repo):
    """The pinned hashes are those of the files at the pinned commit (the fixture copies, unchanged)."""
    from matbench.judge.sensenova import SCRIPT, SENSENOVA
    from matbench.protocols.authors_source import VISUAL_ARFT
    from matbench.tasks import all_tasks

    read = {ref.authors for spec in all_tasks().values() for ref in spec.protocols.values() if ref.authors}
    assert read and read <= dict(VISUAL_ARFT.pinned).keys()
    for relpath, digest in VISUAL_ARFT.pinned:
        assert hashlib.sha256((repo / relpath).read_bytes()).hexdigest() == digest, relpath
    sensenova = repo.parent / "sensenova-mars-repo" / SCRIPT
    if sensenova.is_file():
        assert hashlib.sha256(sensenova.read_bytes()).hexdigest() == SENSENOVA.pinned_sha256(SCRIPT)


def test_no_copy_and_no_network_says_both_ways_out(fixtures_dir, tmp_path, no_copy):
    assert "MATBENCH_AUTHORS_REPO" not in os.environ
    with FakeOpenAIServer("x") as srv:
        out = _direct_bamboogle(
            srv, tmp_path, fixtures_dir, {"MATBENCH_AUTHORS_BASE_URL": "http://127.0.0.1:9"}
        )
        assert srv.calls == 0
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert "--authors-repo DIR" in lines[0] and "--protocol matbench-wording" in lines[0]
        # matbench's own wording needs neither
        ok = _direct_bamboogle(
            srv,
            tmp_path,
            fixtures_dir,
            {"MATBENCH_AUTHORS_BASE_URL": "http://127.0.0.1:9"},
            "--protocol",
            "matbench-wording-direct",
        )
        assert ok.returncode == 0, ok.stderr
        cfg = json.loads((run_dir_of(ok.stdout) / "config.json").read_text())
        assert cfg["protocol"]["wording"] == "matbench" and cfg["protocol_source"] is None
        # and the first way out: a local copy named on the command line
        given = _direct_bamboogle(
            srv,
            tmp_path,
            fixtures_dir,
            {"MATBENCH_AUTHORS_BASE_URL": "http://127.0.0.1:9"},
            "--authors-repo",
            str(fixtures_dir / "visual-arft-repo"),
        )
        assert given.returncode == 0, given.stderr
    cfg = json.loads((run_dir_of(given.stdout) / "config.json").read_text())
    assert cfg["protocol"]["wording"] == "authors" and cfg["protocol_source"]["via"] == "authors-repo"
