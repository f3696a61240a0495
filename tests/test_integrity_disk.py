"""The environment is never blamed on the data, and the data never reaches outside its folder: a full disk
stops the run in one line and a rerun finishes it; image paths that leave the data folder are input errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from fake_openai_server import FakeOpenAIServer
from runtime_helpers import ROOT, error_lines, read_jsonl, run_dir_of, run_eval


def _coding_args(data, *extra: str) -> list[str]:
    return [
        "--model",
        "openai:fake",
        "--task",
        "mat-coding",
        "--data-dir",
        str(data),
        "--protocol",
        "direct",
        "--max-concurrency",
        "1",
        "--no-response-cache",
        *extra,
    ]


def test_image_paths_must_stay_inside_the_data_folder(tmp_path, fixtures_dir):
    data = tmp_path / "data"
    shutil.copytree(fixtures_dir / "mat" / "coding-demo", data)
    shutil.copyfile(data / "dark_1_proc.png", tmp_path / "host-secret.png")
    rows = json.loads((data / "MAT-Coding.json").read_text())
    rows[0]["processed_image_path"] = str(tmp_path / "host-secret.png")  # id 12: absolute
    rows[1]["processed_image_path"] = "../host-secret.png"  # id 22: leaves the folder
    rows[2]["processed_image_path"] = "sub/../none_2_proc.png"  # id 63: stays inside, fine
    (data / "MAT-Coding.json").write_text(json.dumps(rows, ensure_ascii=False))
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        out = run_eval(
            ["--base-url", srv.base_url, *_coding_args(data, "--runs-root", str(tmp_path / "runs"))],
            cache_dir=tmp_path / "cache",
        )
        assert out.returncode == 0, out.stderr
        assert srv.calls == 4  # nothing was sent for the two escaping rows
    run = run_dir_of(out.stdout)
    recs = {r["id"]: r for r in read_jsonl(run / "predictions.jsonl")}
    assert recs["12"]["status"] == "input_error" and recs["22"]["status"] == "input_error"
    assert (
        "MAT-Coding.json, row 1: image path" in recs["12"]["error"] and "is absolute" in recs["12"]["error"]
    )
    assert (
        "MAT-Coding.json, row 2: image path '../host-secret.png' leaves the data folder"
        in recs["22"]["error"]
    )
    assert recs["63"]["status"] == "ok"
    assert not (run / "images" / "12").exists() and not (run / "images" / "22").exists()


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || exit 1"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _namespaces_work(), reason="needs `unshare -rm` to mount a small tmpfs (user namespaces)"
)
def test_disk_full_stops_in_one_line_and_a_rerun_finishes(tmp_path, fixtures_dir):
    """A 4 MiB disk holds the first sample's image copy but not the second's: the run stops with one line,
    the finished sample is intact, nothing is marked input_error, and after freeing space the rerun finishes."""
    small, out = tmp_path / "small", tmp_path / "out"
    small.mkdir()
    out.mkdir()
    data = fixtures_dir / "mat" / "coding-demo"
    with FakeOpenAIServer("<answer> x </answer>") as srv:
        cmd = " ".join(
            [sys.executable, "-m", "matbench.cli", "eval", "--no-progress", "--base-url", srv.base_url]
            + _coding_args(data, "--run-dir", str(small / "run"))
        )
        script = f"""
            mount -t tmpfs -o size=4m tmpfs {small}
            head -c 2600000 /dev/zero > {small}/filler
            {cmd} > {out}/1.out 2> {out}/1.err; echo $? > {out}/1.rc
            cp -r {small}/run {out}/run1
            rm {small}/filler
            {cmd} > {out}/2.out 2> {out}/2.err; echo $? > {out}/2.rc
            cp -r {small}/run {out}/run2
        """
        env = dict(os.environ, OPENAI_API_KEY="sk-x", MATBENCH_CACHE_DIR=str(tmp_path / "cache"))
        done = subprocess.run(["unshare", "-rm", "bash", "-c", script], cwd=ROOT, env=env, timeout=300)
        assert done.returncode == 0
    err1 = error_lines((out / "1.err").read_text())
    assert (out / "1.rc").read_text().strip() != "0"
    assert len(err1) == 1 and "No space left on device while writing" in err1[0], err1
    need = (data / "dark_1_proc.png").stat().st_size / 1024  # id 22's image
    assert f"{small}/run/images (needs {need:.1f} KiB more" in err1[0]
    assert "rerun the same command" in err1[0]
    raw = (out / "run1" / "predictions.jsonl").read_bytes()
    first = [json.loads(line) for line in raw.splitlines()]
    assert raw.endswith(b"\n") and [(r["id"], r["status"]) for r in first] == [("12", "ok")]
    assert (out / "2.rc").read_text().strip() == "0", (out / "2.err").read_text()
    assert "resuming: 1/6 done" in (out / "2.err").read_text()
    final = read_jsonl(out / "run2" / "predictions.jsonl")
    assert sorted(r["id"] for r in final) == ["119", "12", "124", "22", "63", "71"]
    assert {r["status"] for r in final} == {"ok"}


def test_a_full_disk_at_the_predictions_line_is_disk_full_and_leaves_whole_lines(tmp_path):
    """The disk fills exactly when a record is appended (not at an image copy): DiskFull (one line at the CLI),
    and no torn bytes left in predictions.jsonl (a buffered file used to keep a 4 KiB fragment and raise a bare
    OSError from its close)."""
    small = tmp_path / "small"
    small.mkdir()
    snippet = tmp_path / "append.py"
    snippet.write_text(
        "import sys\n"
        "from matbench.records.run_dir import DiskFull, RunDir, SampleRecord\n"
        "run = RunDir(sys.argv[1]); run.path.mkdir(); run.predictions_path.touch()\n"
        "rec = SampleRecord(id='1', split=None, question='q' * 6000, gold=['a'], prediction='a', f1=1.0, em=1.0)\n"
        "try:\n"
        "    run.append(rec)\n"
        "except DiskFull:\n"
        "    print('DiskFull', run.predictions_path.stat().st_size)\n"
    )
    script = f"""
        mount -t tmpfs -o size=64k tmpfs {small}
        head -c 61440 /dev/zero > {small}/filler 2>/dev/null
        {sys.executable} {snippet} {small}/run
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        ["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stdout.strip() == "DiskFull 0", done.stdout + done.stderr
