"""`matbench view` on a run directory someone else made: image references that leave the run directory
(absolute, ``..``, symlinks) are never followed, FIFOs and devices are never opened, samples come in id
order, the header is text and each sample has one status badge."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from view_helpers import read_details, read_index

from matbench.records.run_dir import RunDir, SampleRecord

ROOT = Path(__file__).resolve().parents[1]


def _traj(image: str | None, output_image: str | None = None) -> list[dict]:
    return [
        {
            "turn": 1,
            "image": image,
            "output": "<code>x</code>",
            "action": "code",
            "think": None,
            "answer": None,
            "tool": {"name": "code", "input": "x", "ok": True, "output_image": output_image},
        }
    ]


def _record(rid: str, image: str | None, output_image: str | None = None, **kw) -> SampleRecord:
    return SampleRecord(
        rid, "simple", f"question {rid}", ["a"], "a", 1.0, 1.0, turns=1, tool_calls={"code": 1},
        trajectory=_traj(image, output_image), **kw,
    )


def _png(path: Path, color: str = "red") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), color).save(path)
    return path


def _view(run: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Through the CLI in a child process: a viewer that opens a FIFO would hang, and must not hang the suite."""
    return subprocess.run(
        [sys.executable, "-m", "matbench.cli", "view", str(run), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture()
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "host"
    secret = _png(outside / "secret.png", "blue")
    rd = RunDir(tmp_path / "run")
    rd.create({"task": {"name": "mat-coding", "version": "1.0"}, "scoring": "visual-arft"})
    _png(rd.path / "images" / "1" / "input.png")
    (rd.path / "images" / "2").mkdir(parents=True)
    os.symlink(secret, rd.path / "images" / "2" / "input.png")  # a symlinked file
    os.symlink(outside, rd.path / "images" / "linkdir")  # a symlinked directory
    rd.append(_record("1", "images/1/input.png", str(secret)))  # absolute
    rd.append(_record("2", "images/2/input.png", "../host/secret.png"))  # symlink, then ..
    rd.append(_record("3", "images/linkdir/secret.png", "images/1/../../../host/secret.png"))
    return rd.path, secret


def _all_refs(details: dict) -> list[dict]:
    return [img for d in details.values() for img in d["images"]] + [
        img for d in details.values() for t in d["turns"] for img in t["images"]
    ]


def test_image_refs_outside_the_run_are_not_followed(hostile):
    run, secret = hostile
    res = _view(run)
    assert res.returncode == 0, res.stderr
    page = run / "report.html"
    thumbs = sorted((run / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 1  # only images/1/input.png, the one real file inside the run
    from PIL import Image

    with Image.open(thumbs[0]) as img:
        r, g, b = img.convert("RGB").getpixel((5, 5))
    assert r > 200 and b < 50  # red: the run's own image, never the host's blue one
    details = read_details(page)
    refs = _all_refs(details)
    followed = [r for r in refs if r.get("full") or r.get("thumb")]
    assert {r["ref"] for r in followed} == {"images/1/input.png"}
    refused = {r["ref"]: r["why"] for r in refs if r.get("why")}
    assert refused[str(secret)] == "absolute path"
    assert refused["../host/secret.png"] == "leaves the run directory"
    assert refused["images/2/input.png"] == "symlink"
    assert refused["images/linkdir/secret.png"] == "symlink"
    assert refused["images/1/../../../host/secret.png"] == "leaves the run directory"
    assert str(secret) not in json.dumps([r.get("full") for r in refs])


def test_fifo_and_device_are_skipped_never_opened(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({"task": {"name": "mat-coding", "version": "1.0"}, "scoring": "visual-arft"})
    (rd.path / "images").mkdir()
    os.mkfifo(rd.path / "images" / "fifo.png")  # opening it for reading blocks until a writer comes
    rd.append(_record("1", "images/fifo.png"))
    kinds = {"1": "FIFO"}
    try:
        os.mknod(rd.path / "images" / "null.png", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (PermissionError, OSError):
        pass
    else:
        rd.append(_record("2", "images/null.png"))
        kinds["2"] = "device"
    res = _view(rd.path, timeout=60)
    assert res.returncode == 0, res.stderr
    details = read_details(rd.path / "report.html")
    for rid, kind in kinds.items():
        (img,) = details[rid]["images"]
        assert img["why"] == f"not a regular file ({kind})" and "full" not in img
    assert not list(rd.path.glob("thumbs/*.jpg"))


def test_a_fifo_in_place_of_the_records_is_one_line(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({"task": {"name": "mat-coding", "version": "1.0"}, "scoring": "visual-arft"})
    rd.predictions_path.unlink()
    os.mkfifo(rd.predictions_path)
    res = _view(rd.path, timeout=60)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "predictions.jsonl: not a regular file (FIFO)" in res.stderr


def test_symlinked_thumbs_dir_or_report_never_write_outside(hostile, tmp_path):
    run, _ = hostile
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, run / "thumbs")
    res = _view(run)
    assert res.returncode == 0, res.stderr
    assert not list(target.iterdir())  # no thumbnail written through the link
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (run / "report.html").unlink()
    os.symlink(victim, run / "report.html")
    res = _view(run)  # a link where the report goes: refused in one line, neither followed nor replaced
    assert res.returncode == 2 and "symbolic link" in res.stderr and res.stderr.strip().count("\n") == 0
    assert victim.read_text() == "keep me" and (run / "report.html").is_symlink()


def test_samples_in_id_order_one_badge_and_header_as_text(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({"task": {"name": "2wikimultihopqa", "version": "1.0"}, "scoring": "visual-arft"})
    for rid, status in (("10", "ok"), ("2", "error"), ("b", "ok"), ("1", "input_error"), ("a", "ok")):
        rd.append(
            SampleRecord(rid, None, f"q{rid}", ["x"], "x" if status == "ok" else None, *[float(status == "ok")] * 2,
                         status=status)
        )
    rd.write_summary(
        {
            "task": "2wikimultihopqa",
            "run": {
                "model": "m",
                "errors": 1,
                "duration_s": 83.25,
                "tokens": {"input": 1234567, "output": 8910},
                "time": {"model_s": 70.5, "tools_s": 3.0},
                "search_cache": {"hits": 3, "misses": 4, "errors": 0},
                "finished": True,
            },
        }
    )
    res = _view(rd.path)
    assert res.returncode == 0, res.stderr
    index = read_index(rd.path / "report.html")
    assert [r["id"] for r in index["rows"]] == ["1", "2", "10", "a", "b"]
    assert [r["badge"] for r in index["rows"]] == ["input error", "error", "correct", "correct", "correct"]
    page = (rd.path / "report.html").read_text(encoding="utf-8")
    header = page[page.index('<div class="meta run">') :].split("</div>", 1)[0]
    assert "{" not in header and "&quot;" not in header
    assert "tokens 1,234,567 in / 8,910 out" in header and "duration 1 min 23 s" in header
    assert "time model 1 min 10 s, tools 3 s" in header and "search cache hits 3, misses 4, errors 0" in header


def test_copied_run_keeps_its_images(tmp_path):
    """A run directory copied with its images (no links) renders the same images."""
    rd = RunDir(tmp_path / "run")
    rd.create({"task": {"name": "mat-coding", "version": "1.0"}, "scoring": "visual-arft"})
    _png(rd.path / "images" / "5" / "in put#1.png")
    rd.append(_record("5", "images/5/in put#1.png"))
    copy = tmp_path / "copy"
    shutil.copytree(rd.path, copy)
    assert _view(copy).returncode == 0
    (img,) = read_details(copy / "report.html")["5"]["images"]
    assert img["full"] == "images/5/in%20put%231.png" and img["thumb"].startswith("thumbs/")
