#!/usr/bin/env python3
"""Assemble matbench's test fixtures (what ../shared/fixtures holds) from their public sources.

Usage: ``scripts/fetch-fixtures.sh DIR`` (this file does the work; standard library only).

Every file comes from a pinned public source (a commit on GitHub, a revision of a Hugging Face dataset), is
copied unchanged or derived by a short named recipe, and is checked against the sha256 in
``scripts/fixtures.sha256``: a moved upstream is one line naming the file, never silently different data.
The hosts are ordinary HTTP servers laid out like raw.githubusercontent.com (``/OWNER/REPO/COMMIT/PATH``)
and the hub (``/datasets/REPO/resolve/REV/PATH``); ``MATBENCH_GITHUB_RAW_URL`` and ``MATBENCH_HUB_URL`` (or
``HF_ENDPOINT``) point them elsewhere (a mirror, or the local servers of tests/test_fetch_fixtures.py).

A few files are notes written by hand from the authors' scripts and paper (the protocol layout with worked
examples, the two-row MAT-Search demo): no public source holds them. ``--from DIR`` copies those (checked
by sha256) from a fixture set you already have; without it they are listed as missing and the exit status
is 1.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "fixtures.sha256"

# Pinned sources: (repository, commit or revision).
VISUAL_RFT = ("Liuziyu77/Visual-RFT", "94866331ff38c516581697882a00f947c8bfda8a")  # Apache-2.0 code
SENSENOVA = ("OpenSenseNova/SenseNova-MARS", "c26a3e00c883bcdd2515633ec45a2b188ce2815e")
HOTPOT_100 = ("kudo2022/phase1-track3-lab1-advanced-agent", "da1bc8467c7f110486bf0f71e019e36120914a38")
HIPPORAG = ("OSU-NLP-Group/HippoRAG", "3d95d255a8db0c1699b853cfb4fbe5056708162d")
FLASHRAG = ("RUC-NLPIR/FlashRAG", os.environ.get("MATBENCH_FLASHRAG_COMMIT", "main"))
FLASHRAG_DATA = ("RUC-NLPIR/FlashRAG_datasets", os.environ.get("MATBENCH_FLASHRAG_REVISION", "main"))

DEMO = "Visual-ARFT/demo/cases"
CODING_RESULTS = "Visual-ARFT/evaluation_coding/evaluation_results"
SEARCH_RESULTS = "Visual-ARFT/evaluation_search/evaluation_results"
AUTHORS_FILES = [
    "LICENSE",
    "Visual-ARFT/demo/web_search.py",
    "Visual-ARFT/evaluation_coding/evaluation_mat_coding_ngpu_7b_df.py",
    "Visual-ARFT/evaluation_coding/evaluation_mat_coding_visual_arft.py",
    "Visual-ARFT/evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_df.py",
    "Visual-ARFT/evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_visual_arft.py",
    "Visual-ARFT/evaluation_search/tools/web_search.py",
    "Visual-ARFT/evaluation_search/traditional_benchmark/evaluation.ipynb",
    *(
        f"Visual-ARFT/evaluation_search/traditional_benchmark/evaluation_{name}_ngpu_7b_{kind}.py"
        for name in ("2wikimultihopqa", "bamboogle", "hotpotqa", "musique")
        for kind in ("df", "visual_arft")
    ),
]
SEARCH_RESULT_DIRS = {"2wiki": "2wiki", "mat_search": "MAT-Search", "bamboogle": "bamboogle",
                      "hotpotqa": "hotpotqa", "musique": "musique"}
# the files no public source holds (see the module docstring)
BY_HAND = ("protocol/visual-arft-protocol.json", "mat/search-demo/MAT-Search.json")


class FetchError(Exception):
    """One line: which file, from where, what went wrong."""


def github_raw(repo: tuple[str, str], path: str) -> str:
    base = os.environ.get("MATBENCH_GITHUB_RAW_URL", "https://raw.githubusercontent.com").rstrip("/")
    return f"{base}/{repo[0]}/{repo[1]}/{urllib.parse.quote(path)}"


def hub_file(repo: tuple[str, str], path: str) -> str:
    base = (os.environ.get("MATBENCH_HUB_URL") or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return f"{base.rstrip('/')}/datasets/{repo[0]}/resolve/{repo[1]}/{urllib.parse.quote(path)}"


class Downloader:
    """GETs each URL once (several fixtures derive from one source file), keeping the bytes in memory."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._seen: dict[str, bytes] = {}

    def get(self, url: str) -> bytes:
        if url not in self._seen:
            req = urllib.request.Request(url, headers={"User-Agent": "matbench-fetch-fixtures"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    self._seen[url] = resp.read()
            except urllib.error.HTTPError as exc:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise FetchError(f"{url}: {getattr(exc, 'reason', exc)}") from None
        return self._seen[url]

    def json(self, url: str):
        try:
            return json.loads(self.get(url))
        except ValueError as exc:
            raise FetchError(f"{url}: not JSON ({exc})") from None


# -- recipes: each returns the fixture's bytes ------------------------------------------------------------
def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _passages(pairs: list[tuple[str, str]]) -> bytes:
    """FlashRAG corpus rows ``{id, title, contents: '"Title"\\ntext'}``, one per distinct (title, text)."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for title, text in pairs:
        if (title, text) in seen:
            continue
        seen.add((title, text))
        rows.append({"id": str(len(rows)), "title": title, "contents": f'"{title}"\n{text}'})
    return _jsonl(rows)


def copy_of(url: str) -> Callable[[Downloader], bytes]:
    return lambda dl: dl.get(url)


def without_metadata(url: str) -> Callable[[Downloader], bytes]:
    """The FlashRAG rows minus their ``metadata`` field (the fixture's multi-hop question sets)."""

    def make(dl: Downloader) -> bytes:
        rows = [json.loads(line) for line in dl.get(url).decode("utf-8").splitlines() if line.strip()]
        return _jsonl([{k: v for k, v in r.items() if k != "metadata"} for r in rows])

    return make


def first_lines(url: str, n: int) -> Callable[[Downloader], bytes]:
    return lambda dl: b"".join(dl.get(url).splitlines(keepends=True)[:n])


def string_constant(url: str, line: int) -> Callable[[Downloader], bytes]:
    """The string literal that starts at ``line`` of a Python file (the authors' instruction texts)."""

    def make(dl: Downloader) -> bytes:
        for node in ast.walk(ast.parse(dl.get(url))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.lineno == line:
                return node.value.encode("utf-8")
        raise FetchError(f"{url}: no string literal at line {line}")

    return make


def coding_answers(dl: Downloader) -> bytes:
    """All 200 MAT-Coding ids: gold answers from the authors' result file, split by id (1-70 simple), and
    the demo rows' question, type and images."""
    rows = dl.json(github_raw(VISUAL_RFT, f"{CODING_RESULTS}/7b_mat_coding_grpo_step1400.json"))
    demo = {r["id"]: r for r in dl.json(github_raw(VISUAL_RFT, f"{DEMO}/coding_case.json"))}
    out = []
    for r in rows:
        item = {"id": r["id"], "answers": r["gt"], "split": "simple" if r["id"] <= 70 else "hard"}
        if r["id"] in demo:
            d = demo[r["id"]]
            item.update(question=d["question"], type=d["type"],
                        processed_image_path=d["processed_image_path"], ori_image_path=d["ori_image_path"])
        out.append(item)
    return json.dumps(out, indent=1, ensure_ascii=False).encode("utf-8")


def search_questions(dl: Downloader) -> bytes:
    """All 150 MAT-Search questions with gold answers, in id order (1-75 simple), from the result file."""
    rows = dl.json(github_raw(VISUAL_RFT, f"{SEARCH_RESULTS}/MAT-Search/7b_step200_mat_search_web_n4.json"))
    out = [{"id": i + 1, "question": r["query"], "answer": r["gt"], "split": "simple" if i < 75 else "hard"}
           for i, r in enumerate(rows)]
    return json.dumps(out, indent=1, ensure_ascii=False).encode("utf-8")


def hotpot_paragraphs(dl: Downloader) -> bytes:
    rows = dl.json(github_raw(HOTPOT_100, "data/hotpot_dev_distractor_100.json"))
    return _passages([(c["title"], c["text"]) for r in rows for c in r["context"]])


def hotpot_first100(dl: Downloader) -> bytes:
    """HotpotQA dev questions 0-99 (FlashRAG ids and answers) with their hotpot id, type, level and the
    titles of their supporting paragraphs."""
    hub = dl.get(hub_file(FLASHRAG_DATA, "hotpotqa/dev.jsonl")).decode("utf-8").splitlines()[:100]
    out = []
    for line in hub:
        r = json.loads(line)
        meta = r.get("metadata") or {}
        titles = (meta.get("supporting_facts") or {}).get("title") or []
        out.append({"id": r["id"], "question": r["question"], "golden_answers": r["golden_answers"],
                    "metadata": {"hotpot_id": meta.get("id"), "type": meta.get("type"),
                                 "level": meta.get("level"), "supporting_titles": sorted(set(titles))}})
    return _jsonl(out)


def musique_paragraphs(dl: Downloader) -> bytes:
    rows = dl.json(github_raw(HIPPORAG, "data/musique_train_corpus.json"))
    return _passages([(r["title"], r["text"]) for r in rows])


def musique_train100(dl: Downloader) -> bytes:
    out = []
    for r in dl.json(github_raw(HIPPORAG, "data/musique_train.json")):
        paragraphs = {p["idx"]: p["title"] for p in r["paragraphs"]}
        titles = [paragraphs[d["paragraph_support_idx"]] for d in r.get("question_decomposition", [])]
        out.append({"id": r["id"], "question": r["question"],
                    "golden_answers": [r["answer"], *r.get("answer_aliases", [])],
                    "metadata": {"supporting_titles": titles}})
    return _jsonl(out)


@dataclass(frozen=True)
class Fixture:
    path: str
    make: Callable[[Downloader], bytes]
    source: str  # for messages


def fixtures() -> list[Fixture]:
    out: list[Fixture] = []

    def add(path: str, make: Callable[[Downloader], bytes], source: str) -> None:
        out.append(Fixture(path, make, source))

    for f in AUTHORS_FILES:
        url = github_raw(VISUAL_RFT, f)
        add(f"visual-arft-repo/{f}", copy_of(url), url)
    for size in ("3b", "7b"):
        for suffix in ("", "_v2"):
            name = f"{size}_mat_coding_grpo_step1400{suffix}.json"
            url = github_raw(VISUAL_RFT, f"{CODING_RESULTS}/{name}")
            add(f"predictions/visual-arft/{name}", copy_of(url), url)
        for key, folder in SEARCH_RESULT_DIRS.items():
            if size == "3b" and key != "mat_search":
                continue  # the fixtures keep the 3B model's MAT results only
            name = f"{size}_step200_{key}_web_n4.json"
            url = github_raw(VISUAL_RFT, f"{SEARCH_RESULTS}/{folder}/{name}")
            add(f"predictions/visual-arft/{name}", copy_of(url), url)
    url = github_raw(VISUAL_RFT, f"{DEMO}/coding_case.json")
    add("mat/coding-demo/MAT-Coding.json", copy_of(url), url)
    for image in ("crop_13_ori.png", "crop_8_ori.png", "dark_1_proc.png", "none_2_proc.png",
                  "rotation180_1_proc.png", "rotation90+dark_0_proc.png"):
        url = github_raw(VISUAL_RFT, f"{DEMO}/{image}")
        add(f"mat/coding-demo/{image}", copy_of(url), url)
    for image in ("23.jpg", "annotation2.jpg"):
        url = github_raw(VISUAL_RFT, f"{DEMO}/{image}")
        add(f"mat/search-demo/{image}", copy_of(url), url)
    add("mat/mat-coding-answers.json", coding_answers, "the authors' MAT-Coding result file and demo rows")
    add("mat/mat-search-questions.json", search_questions, "the authors' MAT-Search result file")
    for kind, script, line in (
        ("search", "evaluation_search/MAT-Search-Benchmark/evaluation_mat_search_ngpu_7b_visual_arft.py", 29),
        ("coding", "evaluation_coding/evaluation_mat_coding_visual_arft.py", 139),
    ):
        url = github_raw(VISUAL_RFT, f"Visual-ARFT/{script}")
        add(f"protocol/visual-arft-{kind}-instructions.txt", string_constant(url, line), url)
    for f in ("verl/verl/utils/reward_score/tool.py", "LICENSE"):
        url = github_raw(SENSENOVA, f)
        add(f"sensenova-mars-repo/{f}", copy_of(url), url)
    for config, split in (("2wikimultihopqa", "dev"), ("hotpotqa", "dev"), ("musique", "dev"),
                          ("bamboogle", "test")):
        url = hub_file(FLASHRAG_DATA, f"{config}/{split}.jsonl")
        add(f"multihop/{config}/{split}.jsonl", without_metadata(url), url)
    add("multihop/hotpotqa/dev-first100-with-titles.jsonl", hotpot_first100, "FlashRAG_datasets hotpotqa dev")
    add("multihop/musique/train-100.jsonl", musique_train100, "HippoRAG data/musique_train.json")
    url = github_raw(FLASHRAG, "examples/quick_start/dataset/nq/test.jsonl")
    add("multihop/nq/test.jsonl", copy_of(url), url)
    add("corpora/hotpotqa-dev-first100-paragraphs.jsonl", hotpot_paragraphs, "kudo2022 hotpot_dev_distractor_100")
    add("corpora/musique-train100-paragraphs.jsonl", musique_paragraphs, "HippoRAG data/musique_train_corpus.json")
    url = github_raw(FLASHRAG, "examples/quick_start/indexes/general_knowledge.jsonl")
    add("corpora/wiki18-first1000-passages.jsonl", first_lines(url, 1000), url)
    return out


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    expected = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            digest, _, name = line.partition("  ")
            if len(digest) != 64 or not name:
                raise FetchError(f"{path}, line {n}: expected 'SHA256  PATH'")
            expected[name] = digest
    return expected


def write(dest: Path, rel: str, data: bytes) -> None:
    target = dest / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)


def assemble(dest: Path, *, copy_from: Path | None = None, only: list[str] | None = None) -> list[str]:
    """Fetch, derive, check and write every fixture; returns the problems (one line each)."""
    expected = read_manifest()
    known = {f.path for f in fixtures()} | set(BY_HAND)
    unlisted = sorted(set(expected) - known)
    if unlisted:
        raise FetchError(f"{MANIFEST}: no recipe for {', '.join(unlisted)}")
    dl = Downloader()
    problems: list[str] = []
    for fx in fixtures():
        if only and not any(fx.path.startswith(o) for o in only):
            continue
        if fx.path not in expected:
            problems.append(f"{fx.path}: not in {MANIFEST.name}")
            continue
        target = dest / fx.path
        if target.is_file() and _sha(target.read_bytes()) == expected[fx.path]:
            continue  # already there and intact: a rerun only fetches what is missing
        try:
            data = fx.make(dl)
        except FetchError as exc:
            problems.append(f"{fx.path}: {exc}")
            continue
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{fx.path}: {fx.source} is not laid out as expected ({type(exc).__name__}: {exc})")
            continue
        got = _sha(data)
        if got != expected[fx.path]:
            problems.append(f"{fx.path}: sha256 {got[:12]}... from {fx.source}, expected {expected[fx.path][:12]}... "
                            "(the source moved or the recipe is wrong; nothing written)")
            continue
        write(dest, fx.path, data)
    for rel in BY_HAND:
        if only and not any(rel.startswith(o) for o in only):
            continue
        target = dest / rel
        if target.is_file() and _sha(target.read_bytes()) == expected.get(rel):
            continue
        src = copy_from / rel if copy_from else None
        if src is not None and src.is_file() and _sha(src.read_bytes()) == expected.get(rel):
            write(dest, rel, src.read_bytes())
        elif src is not None and src.is_file():
            problems.append(f"{rel}: {src} differs from the expected sha256; nothing written")
        else:
            problems.append(f"{rel}: written by hand (no public source): copy it with --from DIR from a fixture set")
    return problems


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fetch-fixtures.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("dest", type=Path, help="the fixtures folder to fill (e.g. ../shared/fixtures)")
    p.add_argument("--from", dest="copy_from", type=Path, help="a fixture set to copy the hand-written notes from")
    p.add_argument("--only", action="append", help="only fixtures under this relative path (repeatable)")
    args = p.parse_args(argv)
    try:
        problems = assemble(args.dest, copy_from=args.copy_from, only=args.only)
    except FetchError as exc:
        print(f"fetch-fixtures: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"fetch-fixtures: {line}", file=sys.stderr)
    if problems:
        print(f"fetch-fixtures: {len(problems)} fixture(s) missing in {args.dest}", file=sys.stderr)
        return 1
    print(f"fixtures complete in {args.dest}; run the tests with MATBENCH_FIXTURES={args.dest.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
