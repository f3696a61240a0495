"""Paths matbench did not make and files it must not trust (issue 20.1, 20.9): a planted folder or file at
``index build --out``, ``view --out`` (and its data folder) or ``merge --out`` is refused in one line and left
untouched; a predictions file that is a FIFO, a device or a symbolic link is one line for score, compare,
submit and view (never a hang, never an endless read); merge never follows a link and checks each
content-addressed image against its name."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from fixture_paths import FIXTURES

from matbench.cli import main
from matbench.records.outputs import MARKER_NAME, check_dir, check_file, file_marker, write_file
from matbench.records.run_dir import RunDir, SampleRecord

CORPUS = FIXTURES / "corpora" / "hotpotqa-dev-first100-paragraphs.jsonl"


@contextmanager
def no_hang(seconds: int = 20):
    """A blocking open() or an endless read fails the test instead of hanging the suite."""

    def boom(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err and "\n" not in err and "Traceback" not in err, err
    return err


def _precious(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text('{"format": "matbench-bm25"}')  # looks like an index to a lazy check
    (folder / "thesis.tex").write_text("years of work")
    return {p.name: p.read_text() for p in folder.iterdir()}


def _run(tmp_path: Path, name: str = "run") -> RunDir:
    rd = RunDir(tmp_path / name)
    rd.create({"task": {"name": "bamboogle", "version": "1.0"}, "scoring": "visual-arft"})
    rd.append(SampleRecord("1", None, "q", ["a"], "a", 1.0, 1.0))
    return rd


# -- 20.1: never delete what matbench did not make ---------------------------------------------------------


def test_index_build_refuses_a_planted_folder_and_replaces_its_own(tmp_path, capsys, fixtures_dir):
    foreign = tmp_path / "idx"
    before = _precious(foreign)
    code = main(["index", "build", str(CORPUS), "--out", str(foreign), "--no-progress"])
    assert "not one matbench made" in _one_line_error(capsys, code)
    assert {p.name: p.read_text() for p in foreign.iterdir()} == before
    link = tmp_path / "link"
    link.symlink_to(foreign)
    code = main(["index", "build", str(CORPUS), "--out", str(link), "--no-progress"])
    assert "symbolic link" in _one_line_error(capsys, code) and link.is_symlink()
    mine = tmp_path / "mine"
    assert main(["index", "build", str(CORPUS), "--out", str(mine), "--no-progress"]) == 0
    assert (mine / MARKER_NAME).is_file()
    assert main(["index", "build", str(CORPUS), "--out", str(mine), "--no-progress"]) == 0  # its own: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "link", "mine"]


def test_view_refuses_a_foreign_page_or_data_folder(tmp_path, capsys):
    rd = _run(tmp_path)
    page = tmp_path / "out" / "r.html"
    page.parent.mkdir()
    page.write_text("<html>my own notes</html>")
    code = main(["view", str(rd.path), "--out", str(page)])
    assert "not one matbench made" in _one_line_error(capsys, code)
    assert page.read_text() == "<html>my own notes</html>" and not (page.parent / "r_data").exists()
    page.unlink()
    before = _precious(page.parent / "r_data")
    code = main(["view", str(rd.path), "--out", str(page)])
    assert "r_data" in _one_line_error(capsys, code)
    assert {p.name: p.read_text() for p in (page.parent / "r_data").iterdir()} == before
    assert not page.exists()
    shutil.rmtree(page.parent / "r_data")
    assert main(["view", str(rd.path), "--out", str(page)]) == 0
    assert file_marker("view") in page.read_text()[:4096]
    assert main(["view", str(rd.path), "--out", str(page)]) == 0  # its own page and folder: replaced
    # the default page in a run directory someone else made: a link there is refused, never followed
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (rd.path / "report.html").symlink_to(victim)
    code = main(["view", str(rd.path)])
    assert "symbolic link" in _one_line_error(capsys, code)
    assert victim.read_text() == "keep me" and (rd.path / "report.html").is_symlink()


def test_outputs_helpers_refuse_what_they_did_not_make(tmp_path):
    from matbench.errors import ConfigError

    (tmp_path / "f.md").write_text("a leaderboard I wrote by hand")
    with pytest.raises(ConfigError, match="not one matbench made"):
        write_file(tmp_path / "f.md", f"<!-- {file_marker('leaderboard')} -->\n", "leaderboard")
    assert (tmp_path / "f.md").read_text() == "a leaderboard I wrote by hand"
    write_file(tmp_path / "g.md", f"<!-- {file_marker('leaderboard')} -->\nx\n", "leaderboard")
    assert check_file(tmp_path / "g.md", "leaderboard")
    with pytest.raises(ConfigError):  # made by matbench, but for another purpose
        check_file(tmp_path / "g.md", "view")
    os.mkfifo(tmp_path / "fifo")
    with no_hang(), pytest.raises(ConfigError, match="not a plain file"):
        check_file(tmp_path / "fifo", "view")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / MARKER_NAME).write_text(json.dumps({"made_by": "matbench", "kind": "index"}))
    (tmp_path / "d" / "x").write_text("x")
    assert check_dir(tmp_path / "d", "index")
    with pytest.raises(ConfigError):
        check_dir(tmp_path / "d", "merge")


# -- 20.9: predictions that are FIFOs, devices or links -----------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink"])
def test_special_predictions_are_one_line_everywhere(fixtures_dir, tmp_path, capsys, kind):
    from report_helpers import make_coding_run

    rd = RunDir(make_coding_run(fixtures_dir, tmp_path / "run", None))
    other = RunDir(make_coding_run(fixtures_dir, tmp_path / "other", None))
    secret = tmp_path / "secret.jsonl"
    shutil.copyfile(rd.predictions_path, secret)
    rd.predictions_path.unlink()
    if kind == "fifo":
        os.mkfifo(rd.predictions_path)
    elif kind == "symlink":
        rd.predictions_path.symlink_to(secret)
    target = "/dev/zero" if kind == "device" else str(rd.predictions_path)  # /dev/zero would never end
    commands = [["score", target, "--task", "mat-coding"], ["compare", target, str(other.path), "--task", "mat-coding"]]
    if kind != "device":
        commands += [
            ["score", str(rd.path)],
            ["submit", str(rd.path), "--name", "x", "--leaderboard-dir", str(tmp_path / "lb")],
            ["view", str(rd.path)],
        ]
    for argv in commands:
        if kind == "device":  # an endless read happens in C, out of reach of an alarm: a capped child
            res = subprocess.run(
                [sys.executable, "-m", "matbench.cli", *argv], capture_output=True, text=True, timeout=120,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)),
            )
            code, err = res.returncode, res.stderr.strip()
            assert code == 2 and "\n" not in err and "Traceback" not in err, err
        else:
            with no_hang():
                code = main(argv)
            err = _one_line_error(capsys, code)
        assert "predictions.jsonl" in err or "/dev/zero" in err, (argv, err)
        assert any(w in err for w in ("FIFO", "device", "symbolic link")), (argv, err)
