"""`matbench view`: one self-contained report with thumbnails, filters, every turn, and escaped model text."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PIL import Image
from report_helpers import make_coding_run
from view_helpers import read_details, read_index

from matbench.cli import main
from matbench.records.run_dir import RunDir, SampleRecord

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def coding_run(fixtures_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("view")
    return make_coding_run(
        fixtures_dir, root / "run", None, trajectories=True, errors=("5", "6"), overrides={"7": XSS}
    )


def test_report_of_200_samples(coding_run, capsys):
    start = time.perf_counter()
    assert main(["view", str(coding_run)]) == 0
    elapsed = time.perf_counter() - start
    page = (coding_run / "report.html").read_text(encoding="utf-8")
    index = read_index(coding_run / "report.html")
    assert len(index["rows"]) == 200 and len(read_details(coding_run / "report.html")) == 200
    assert len(page) < 2_000_000 and "base64" not in page
    assert elapsed < 20
    thumbs = sorted((coding_run / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 400  # input + code output per sample
    for t in thumbs[:10]:
        with Image.open(t) as img:
            assert img.format == "JPEG" and max(img.size) <= 256
    # thumbnails open the full-size image by relative path
    (first, *_) = read_details(coding_run / "report.html")["12"]["images"]
    assert first["full"] == "images/12/input.png" and re.fullmatch(r"thumbs/[^/]+\.jpg", first["thumb"])


def test_report_shows_turns_and_filters(coding_run):
    main(["view", str(coding_run)])
    page = (coding_run / "report.html").read_text(encoding="utf-8")
    for fid in ("f-outcome", "f-split", "f-type", "f-tool"):
        assert f'id="{fid}"' in page
    assert '<option value="rotation90">' in page and '<option value="code">' in page
    rows = {r["id"]: r for r in read_index(coding_run / "report.html")["rows"]}
    assert {r["outcome"] for r in rows.values()} == {"error", "correct", "wrong"}
    details = read_details(coding_run / "report.html")
    assert details["12"]["question"] == "What is the serving size of the beverage?"  # a real demo question
    turns = details["12"]["turns"]
    assert "cv2.rotate(img, cv2.ROTATE_180)" in turns[1]["tool_calls"][0]["input"]
    assert turns[0]["tool_calls"][0]["tips"].startswith("<tips> Fix the image")
    assert details["5"]["error"] == "model server returned HTTP 500" and rows["5"]["badge"] == "error"
    assert rows["71"]["types"] == ["rotation90", "dark"]


def test_model_text_is_escaped(coding_run):
    main(["view", str(coding_run)])
    page = (coding_run / "report.html").read_text(encoding="utf-8")
    assert XSS not in page and "<img src=x" not in page and "</script><img" not in page
    # inside the page's JSON index, < and > are escaped so the text cannot end the script element
    assert "\\u003cscript\\u003ealert" in page
    rows = {r["id"]: r for r in read_index(coding_run / "report.html")["rows"]}
    assert rows["7"]["p"] == XSS and read_details(coding_run / "report.html")["7"]["prediction"] == XSS
    assert page.count("<script>") == 1  # only the report's own script (the index is type=application/json)
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page  # text only goes in as textContent


def test_thumbnails_are_made_once(coding_run):
    main(["view", str(coding_run)])
    thumb = next((coding_run / "thumbs").glob("*.jpg"))
    stamp = thumb.stat().st_mtime_ns
    main(["view", str(coding_run)])
    assert thumb.stat().st_mtime_ns == stamp


def test_search_run_with_snippets_and_out(tmp_path, capsys):
    rd = RunDir(tmp_path / "run")
    rd.create(
        {
            "task": {"name": "mat-search", "version": "1.0"},
            "scoring": "visual-arft",
            "search": {"backend": "local"},
        }
    )
    tool = {
        "name": "search",
        "input": "LEGO meaning",
        "results": [
            {"title": "LEGO", "url": "https://en.wikipedia.org/wiki/Lego", "snippet": "from Danish leg godt"},
            {"title": "bad", "url": "javascript:alert(1)", "snippet": "<b>bold</b>"},
        ],
        "error": None,
        "cached": True,
    }
    traj = [
        {
            "turn": 1,
            "image": "images/1/missing.png",
            "output": "<search> LEGO meaning </search>",
            "action": "search",
            "think": "look it up",
            "answer": None,
            "tool": tool,
        }
    ]
    rd.append(
        SampleRecord(
            "1",
            "simple",
            "What does the brand mean?",
            ["Play well."],
            "Play well",
            1.0,
            1.0,
            turns=1,
            tool_calls={"search": 1},
            trajectory=traj,
        )
    )
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["view", str(rd.path), "--out", str(out)]) == 0
    assert (tmp_path / "elsewhere" / "r_data" / "c00000.js").is_file()
    (turn,) = read_details(out)["1"]["turns"]
    lego, bad = turn["tool_calls"][0]["results"]
    assert lego["snippet"] == "from Danish leg godt" and turn["tool_calls"][0]["input"] == "LEGO meaning"
    assert turn["tool_calls"][0]["cached"] is True
    assert lego["href"] == "https://en.wikipedia.org/wiki/Lego"
    assert "href" not in bad and bad["snippet"] == "<b>bold</b>"  # text, rendered with textContent
    assert turn["images"] == [
        {"ref": "images/1/missing.png", "caption": "input", "why": "missing"}
    ]
