"""`scripts/fetch-fixtures.sh DIR` against local servers laid out like its two hosts: raw.githubusercontent.com
(``/OWNER/REPO/COMMIT/PATH``) and the Hugging Face hub (``/datasets/REPO/resolve/REV/PATH``).

The servers hold upstream files rebuilt from the fixtures themselves: copied files as they are, the FlashRAG
rows with the ``metadata`` field the fixtures drop, the HotpotQA/MuSiQue sources in their publishers' shapes.
The script must rebuild every fixture byte for byte (its sha256 list), refuse a changed upstream in one line,
and say which hand-written notes it cannot fetch."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from runtime_helpers import ROOT, LoopbackServer

sys.path.insert(0, str(ROOT / "scripts"))
import fetch_fixtures as ff  # noqa: E402

SCRIPT = ROOT / "scripts" / "fetch-fixtures.sh"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def upstream(fx: Path) -> dict[str, bytes]:
    """URL path -> bytes, as each host would serve them."""
    files: dict[str, bytes] = {}

    def gh(repo: tuple[str, str], path: str, data: bytes) -> None:
        files[f"/{repo[0]}/{repo[1]}/{path}"] = data

    def hub(repo: tuple[str, str], path: str, data: bytes) -> None:
        files[f"/datasets/{repo[0]}/resolve/{repo[1]}/{path}"] = data

    for f in ff.AUTHORS_FILES:
        gh(ff.VISUAL_RFT, f, (fx / "visual-arft-repo" / f).read_bytes())
    for pred in (fx / "predictions" / "visual-arft").iterdir():
        if "mat_coding" in pred.name:
            gh(ff.VISUAL_RFT, f"{ff.CODING_RESULTS}/{pred.name}", pred.read_bytes())
        else:
            key = pred.name.split("_step200_")[1].rsplit("_web_n4", 1)[0]
            gh(ff.VISUAL_RFT, f"{ff.SEARCH_RESULTS}/{ff.SEARCH_RESULT_DIRS[key]}/{pred.name}", pred.read_bytes())
    gh(ff.VISUAL_RFT, f"{ff.DEMO}/coding_case.json", (fx / "mat/coding-demo/MAT-Coding.json").read_bytes())
    for image in [*(fx / "mat/coding-demo").glob("*.png"), *(fx / "mat/search-demo").glob("*.jpg")]:
        gh(ff.VISUAL_RFT, f"{ff.DEMO}/{image.name}", image.read_bytes())
    for f in ("verl/verl/utils/reward_score/tool.py", "LICENSE"):
        gh(ff.SENSENOVA, f, (fx / "sensenova-mars-repo" / f).read_bytes())
    gh(ff.FLASHRAG, "examples/quick_start/dataset/nq/test.jsonl", (fx / "multihop/nq/test.jsonl").read_bytes())
    wiki = (fx / "corpora/wiki18-first1000-passages.jsonl").read_bytes()
    gh(ff.FLASHRAG, "examples/quick_start/indexes/general_knowledge.jsonl",
       wiki + b'{"id": "1000", "contents": "\\"Past\\"\\nthe first thousand"}\n')
    # FlashRAG_datasets: the fixture rows with their metadata back (HotpotQA's first 100 carry the real fields)
    first100 = {r["id"]: r["metadata"] for r in _rows(fx / "multihop/hotpotqa/dev-first100-with-titles.jsonl")}
    for config, split in (("2wikimultihopqa", "dev"), ("hotpotqa", "dev"), ("musique", "dev"), ("bamboogle", "test")):
        rows = []
        for r in _rows(fx / "multihop" / config / f"{split}.jsonl"):
            meta = first100.get(r["id"]) if config == "hotpotqa" else None
            if meta is not None:
                titles = [*meta["supporting_titles"], meta["supporting_titles"][0]]  # facts repeat titles
                meta = {"id": meta["hotpot_id"], "type": meta["type"], "level": meta["level"],
                        "supporting_facts": {"title": titles[::-1], "sent_id": list(range(len(titles)))}}
            rows.append({**r, "metadata": meta or {"note": "dropped"}})
        hub(ff.FLASHRAG_DATA, f"{config}/{split}.jsonl",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())

    def pairs(name: str) -> list[dict]:
        return [{"title": p["title"], "text": p["contents"].split("\n", 1)[1]} for p in _rows(fx / "corpora" / name)]

    hotpot = pairs("hotpotqa-dev-first100-paragraphs.jsonl")
    groups = [hotpot[i : i + 10] for i in range(0, len(hotpot), 10)]
    groups[1].append(hotpot[0])  # a paragraph shared by two questions is one passage
    gh(ff.HOTPOT_100, "data/hotpot_dev_distractor_100.json", json.dumps(
        [{"qid": str(i), "question": "q", "gold_answer": "a", "context": g} for i, g in enumerate(groups)]
    ).encode())
    gh(ff.HIPPORAG, "data/musique_train_corpus.json", json.dumps(pairs("musique-train100-paragraphs.jsonl")).encode())
    train = []
    for r in _rows(fx / "multihop/musique/train-100.jsonl"):
        titles = r["metadata"]["supporting_titles"]
        paragraphs = [{"idx": i, "title": t, "paragraph_text": "x", "is_supporting": True}
                      for i, t in enumerate(reversed(titles))]  # paragraph order is not hop order
        hops = [{"id": i, "paragraph_support_idx": len(titles) - 1 - i} for i in range(len(titles))]
        train.append({"id": r["id"], "paragraphs": paragraphs, "question": r["question"],
                      "question_decomposition": hops, "answer": r["golden_answers"][0],
                      "answer_aliases": r["golden_answers"][1:], "answerable": True})
    gh(ff.HIPPORAG, "data/musique_train.json", json.dumps(train).encode())
    return files


class Hosts(LoopbackServer):
    """Both hosts on one 127.0.0.1 port (the paths do not overlap); records every path asked for."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.asked = files, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                path = urllib.parse.unquote(self.path)
                outer.asked.append(path)
                data = outer.files.get(path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture(scope="module")
def hosts(fixtures_dir):
    with Hosts(upstream(fixtures_dir)) as srv:
        yield srv


def _env(hosts) -> dict[str, str]:
    return {**os.environ, "MATBENCH_GITHUB_RAW_URL": hosts.url, "MATBENCH_HUB_URL": hosts.url}


def _fetch(hosts, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], env=_env(hosts), capture_output=True,
                          text=True, timeout=300)


def test_every_fixture_is_rebuilt_byte_for_byte(hosts, fixtures_dir, tmp_path):
    dest = tmp_path / "fixtures"
    out = _fetch(hosts, dest, "--from", fixtures_dir)
    assert out.returncode == 0, out.stderr
    manifest = ff.read_manifest()
    assert len(manifest) >= 50
    for rel, digest in manifest.items():
        assert hashlib.sha256((dest / rel).read_bytes()).hexdigest() == digest, rel
        assert (dest / rel).read_bytes() == (fixtures_dir / rel).read_bytes()
    # the hosts' layouts: raw files at a pinned commit, dataset files at a revision
    assert f"/Liuziyu77/Visual-RFT/{ff.VISUAL_RFT[1]}/Visual-ARFT/demo/cases/rotation90+dark_0_proc.png" in hosts.asked
    assert "/datasets/RUC-NLPIR/FlashRAG_datasets/resolve/main/hotpotqa/dev.jsonl" in hosts.asked
    # a rerun has nothing to fetch
    before = len(hosts.asked)
    assert _fetch(hosts, dest, "--from", fixtures_dir).returncode == 0
    assert len(hosts.asked) == before


def test_a_moved_upstream_is_refused_in_one_line(hosts, tmp_path):
    key = f"/Liuziyu77/Visual-RFT/{ff.VISUAL_RFT[1]}/{ff.CODING_RESULTS}/3b_mat_coding_grpo_step1400.json"
    good = hosts.files[key]
    hosts.files[key] = good.replace(b'"gt"', b'"gt" ', 1)
    try:
        out = _fetch(hosts, tmp_path / "f", "--only", "predictions/", "--only", "mat/mat-coding")
    finally:
        hosts.files[key] = good
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("fetch-fixtures: predictions/visual-arft/3b_mat_coding_grpo_step1400.json: sha256 ")
    assert "the source moved" in lines[0] and len(lines) == 2, out.stderr
    assert not (tmp_path / "f/predictions/visual-arft/3b_mat_coding_grpo_step1400.json").exists()
    assert (tmp_path / "f/predictions/visual-arft/7b_mat_coding_grpo_step1400.json").is_file()


def test_hand_written_notes_and_a_dead_host_are_named(hosts, tmp_path):
    out = _fetch(hosts, tmp_path / "f", "--only", "protocol/", "--only", "mat/search-demo/")
    assert out.returncode == 1
    assert "protocol/visual-arft-protocol.json: written by hand (no public source)" in out.stderr
    assert "mat/search-demo/MAT-Search.json: written by hand" in out.stderr
    assert (tmp_path / "f/protocol/visual-arft-search-instructions.txt").is_file()  # derived from their script
    env = {**_env(hosts), "MATBENCH_GITHUB_RAW_URL": "http://127.0.0.1:9"}
    dead = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "g"), "--only", "sensenova-mars-repo/"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert dead.returncode == 1
    assert "sensenova-mars-repo/LICENSE: http://127.0.0.1:9/OpenSenseNova/SenseNova-MARS/" in dead.stderr


def test_the_manifest_lists_every_fixture(fixtures_dir):
    """A fixture added without a recipe and a sha256 could not be fetched by anyone else."""
    present = {p.relative_to(fixtures_dir).as_posix() for p in fixtures_dir.rglob("*") if p.is_file()}
    assert present - {"README.md"} == set(ff.read_manifest())
