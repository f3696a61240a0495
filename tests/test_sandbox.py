"""The code sandbox on real images: contract, placeholders, files, concurrency, API and CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import run_cli

from matbench.tools import sandbox as sandbox_mod
from matbench.tools.sandbox import INPUT_PLACEHOLDER, OUTPUT_PLACEHOLDER, CodeResult, Sandbox


def _bwrap_usable() -> bool:
    """bwrap installed *and* working here (user namespaces may be disabled for unprivileged users)."""
    if shutil.which("bwrap") is None:
        return False
    with Sandbox(workers=1, isolation="auto") as probe:
        return probe.isolation == "bwrap"


HAS_BWRAP = _bwrap_usable()
ROOT = Path(__file__).resolve().parents[1]

ROTATE = """
import cv2
img = cv2.imread('path_to_input_image.jpg')
print('shape', img.shape)
cv2.imwrite('path_to_output_image.jpg', cv2.rotate(img, cv2.ROTATE_180))
"""


@pytest.fixture(scope="module", params=["auto", "none"])
def sb(request):
    with Sandbox(timeout=10.0, workers=2, isolation=request.param) as box:
        yield box


@pytest.fixture(scope="module")
def image(fixtures_dir) -> Path:
    return fixtures_dir / "mat" / "coding-demo" / "rotation180_1_proc.png"


def test_placeholders_are_the_mat_coding_names():
    assert INPUT_PLACEHOLDER == "path_to_input_image.jpg"
    assert OUTPUT_PLACEHOLDER == "path_to_output_image.jpg"


def test_rotate_matches_opencv_in_process(sb, image):
    res = sb.run(ROTATE, image)
    assert res.ok, res.error
    assert res.error is None and res.exception is None
    assert res.output_image is not None and res.output_image.is_file()
    assert res.output_image.suffix == ".jpg"
    original = cv2.imread(str(image))
    assert f"shape {original.shape}" in res.stdout
    # imwrite to .jpg is lossy but deterministic: encode the reference the same way
    expected = cv2.imdecode(cv2.imencode(".jpg", cv2.rotate(original, cv2.ROTATE_180))[1], cv2.IMREAD_COLOR)
    got = cv2.imread(str(res.output_image))
    assert got.shape == original.shape
    assert np.array_equal(got, expected)
    assert res.wall_time > 0 and res.exec_time is not None and 0 < res.exec_time < res.wall_time
    assert res.isolation == ("bwrap" if sb.requested_isolation == "auto" and HAS_BWRAP else "none")


def test_workdir_keeps_input_and_output(sb, image, tmp_path):
    target = tmp_path / "episode" / "turn-1"
    res = sb.run(ROTATE, image, workdir=target)
    assert res.ok, res.error
    assert res.workdir == target.resolve()
    assert res.output_image == target.resolve() / "output.jpg"
    assert (target / "input.png").read_bytes() == image.read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["input.png", "output.jpg"]


def test_fresh_directory_per_call(sb, image):
    # one worker, so both calls run in the same fork server: nothing may carry over
    private_tmp = sb.isolation == "bwrap"  # without bwrap /tmp is the host's: do not litter it
    with Sandbox(workers=1, isolation=sb.requested_isolation) as box:
        first = box.run(
            "import os, tempfile\nopen('leftover.txt', 'w').write('x')\n"
            "open(os.path.join(tempfile.gettempdir(), 'tmp-leftover'), 'w').write('x')\n"
            + (
                "os.mkdir('/tmp/d')\nopen('/tmp/d/f', 'w').write('x')\nos.chmod('/tmp/d', 0)\n"
                if private_tmp
                else ""
            )
            + "print(os.getcwd())",
            image,
        )
        assert first.error and "no output image written" in first.error, first.error
        second = box.run(
            "import os, tempfile\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\n"
            "print(os.path.exists(os.path.join(tempfile.gettempdir(), 'tmp-leftover')))\n"
            # entries that only hold the read-only python binds (a checkout under /tmp) do not count
            + (
                "import sys\nprint([e for e in os.listdir('/tmp') if not sys.prefix.startswith('/tmp/' + e + '/')])"
                if private_tmp
                else ""
            ),
            image,
        )
    lines = second.stdout.splitlines()
    assert lines[0] != first.stdout.strip()
    # with bwrap the work dir is a private tmpfs; stdout/stderr are written straight to the host
    assert lines[1] == ("['input.png']" if private_tmp else "['input.png', 'stderr.txt', 'stdout.txt']")
    assert lines[2] == "False"
    if private_tmp:
        assert lines[3] == "[]"  # the sandbox-private /tmp was wiped, unsearchable directories too


def test_copied_png_named_jpg_is_still_an_image(sb, image):
    # PIL identifies by content, so a PNG saved under the .jpg name is a readable image
    res = sb.run("import shutil\nshutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')", image)
    assert res.ok, res.error
    assert res.output_image is not None


def test_traceback_shows_the_snippet_line(sb, image):
    res = sb.run("import cv2\nvalue = 1\nvalue = value / 0\n", image)
    assert not res.ok
    assert res.exception == "ZeroDivisionError: division by zero"
    assert res.error == res.exception
    assert 'File "snippet.py", line 3' in res.traceback
    assert "value = value / 0" in res.traceback
    assert "sandbox_worker" not in res.traceback


def test_stdout_and_stderr_are_separate(sb, image):
    res = sb.run(
        "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n"
        "import shutil\nshutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')",
        image,
    )
    assert res.ok, res.error
    assert res.stdout == "to out\n"
    assert res.stderr == "to err\n"


def test_long_output_is_truncated_with_a_note(sb, image):
    res = sb.run("print('y' * 20000)", image)
    assert res.stdout.startswith("y" * 8192)
    assert "[truncated 11809 bytes]" in res.stdout  # 20001 bytes written, 8192 kept


def test_runs_as_nobody_with_limits_and_clean_env(sb, image):
    res = sb.run(
        "import os, resource, json\n"
        "print(json.dumps({'uid': os.getuid(), 'as': resource.getrlimit(resource.RLIMIT_AS)[0],"
        " 'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0], 'env': sorted(os.environ),"
        " 'cwd': os.getcwd(), 'home': os.environ['HOME']}))",
        image,
    )
    info = json.loads(res.stdout)
    if os.geteuid() == 0 or res.isolation == "bwrap":
        assert info["uid"] == 65534
    assert info["as"] == 2048 * 1024 * 1024
    assert info["fsize"] == 64 * 1024 * 1024
    assert info["home"] == info["cwd"]
    assert set(info["env"]) <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    }


def test_no_image_maps_placeholder_to_missing_file(sb):
    res = sb.run("import os\nprint(os.path.exists('path_to_input_image.jpg'))", None)
    assert res.stdout.strip() == "False"
    assert "no output image written" in res.error


def test_threads_share_the_pool(sb, image):
    results: list[CodeResult] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        res = sb.run(ROTATE + f"\nprint('job', {i})", image)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    assert all(r.ok for r in results), [r.error for r in results]
    assert len({r.workdir for r in results}) == 6
    assert sorted(r.stdout.split("job ")[1].strip() for r in results) == [str(i) for i in range(6)]


def test_arun(sb, image):
    async def main() -> list[CodeResult]:
        return await asyncio.gather(*(sb.arun(ROTATE, image) for _ in range(3)))

    results = asyncio.run(main())
    assert [r.ok for r in results] == [True, True, True]


def test_to_dict_is_json(sb, image):
    res = sb.run(ROTATE, image)
    data = json.loads(json.dumps(res.to_dict()))
    for key in ("ok", "error", "stdout", "stderr", "wall_time", "output_image", "isolation"):
        assert key in data
    assert data["output_image"] == str(res.output_image)
    assert "Code ran successfully" in res.feedback()


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap not installed or not usable")
def test_forced_bwrap():
    with Sandbox(isolation="bwrap", workers=1) as box:
        assert box.run("print(1)", None).isolation == "bwrap"


def test_none_warns_once(caplog):
    sandbox_mod._warned_weak = False
    with caplog.at_level(logging.WARNING, logger="matbench.tools.sandbox"):
        for _ in range(2):
            with Sandbox(isolation="none", workers=1) as box:
                assert box.isolation == "none"
    warnings = [r for r in caplog.records if "isolation is weaker" in r.message]
    assert len(warnings) == 1


def test_close_stops_workers_and_removes_root(image):
    box = Sandbox(workers=1)
    res = box.run(ROTATE, image)
    assert res.ok
    pid = box._workers[0].proc.pid
    root = box.root
    box.close()
    assert not root.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(sandbox_mod.SandboxError):
        box.run(ROTATE, image)


def test_old_call_directories_are_pruned(image):
    with Sandbox(workers=1, keep_calls=2) as box:
        results = [box.run(ROTATE, image) for _ in range(4)]
        assert all(r.ok for r in results)
        assert [r.workdir.exists() for r in results] == [False, False, True, True]
        assert results[-1].output_image.is_file()


def test_bad_arguments(image):
    with pytest.raises(ValueError):
        Sandbox(isolation="docker")  # type: ignore[arg-type]
    with Sandbox(workers=1) as box, pytest.raises(FileNotFoundError):
        box.run(ROTATE, image.with_name("missing.png"))


# -- CLI ---------------------------------------------------------------------------------------------


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(["sandbox", "run", *args], input=stdin)


def test_cli_json_and_out(tmp_path, image):
    code = tmp_path / "rotate.py"
    code.write_text(ROTATE)
    out = tmp_path / "result" / "rotated.jpg"
    proc = _cli(str(code), "--image", str(image), "--json", "--out", str(out), "--timeout", "10")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["error"] is None
    assert data["output_image"] == str(out)
    assert data["isolation"] in ("bwrap", "none")
    assert cv2.imread(str(out)).shape == cv2.imread(str(image)).shape


def test_cli_text_keep_and_failure(tmp_path, image):
    keep = tmp_path / "kept"
    proc = _cli(
        "-", "--image", str(image), "--keep", str(keep), stdin="print('hello')\nraise ValueError('bad')\n"
    )
    assert proc.returncode == 1
    assert "hello" in proc.stdout
    assert "ValueError: bad" in proc.stdout
    assert (keep / "input.png").is_file()


def test_cli_missing_file(tmp_path):
    proc = _cli(str(tmp_path / "nope.py"))
    assert proc.returncode == 2
    assert "code file not found" in proc.stderr


@pytest.fixture
def open_tmp():
    """A temporary directory uid 65534 can reach (without bwrap jobs run as nobody), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="matbench-test-"))
    tmp.chmod(0o755)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ROOT), TMPDIR=str(tmp), **extra)
    return env


def test_cli_sandbox_run_papercuts(tmp_path, image, open_tmp):
    """#21.9: one line without --image, --out writes the format its suffix names, no folder is left behind
    (failed, --json or not) unless --keep, and the default timeout is eval's."""
    tmp = open_tmp

    def cli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "matbench.cli", "sandbox", "run", *args],
            capture_output=True, text=True, input=stdin, env=_cli_env(tmp, **env), timeout=120,
        )

    proc = cli("-", stdin="import cv2\nprint(cv2.imread('path_to_input_image.jpg').shape)\n")
    assert proc.returncode == 2 and "--image" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    writes_jpeg = "import shutil\nshutil.copy('path_to_input_image.jpg', 'x.png')\nfrom PIL import Image\n"
    writes_jpeg += "Image.open('x.png').save('path_to_output_image.jpg', format='JPEG')\n"
    out = tmp_path / "fixed.png"
    proc = cli("-", "--image", str(image), "--out", str(out), "--json", stdin=writes_jpeg)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # PNG, not JPEG bytes under a .png name
    assert cli("-", "--image", str(image), stdin="raise SystemExit(3)\n").returncode == 1
    assert cli("-", "--image", str(image), "--json", stdin="print(1)\n").returncode == 1  # no output image
    assert list(tmp.iterdir()) == []  # nothing left in the temporary directory
    assert cli("-", "--out", str(tmp_path / "x.xyz"), stdin="pass\n").returncode == 2
    from matbench.tools.sandbox import DEFAULT_CODE_TIMEOUT, Sandbox

    assert DEFAULT_CODE_TIMEOUT == 60 and Sandbox.__init__.__defaults__[0] == DEFAULT_CODE_TIMEOUT
    assert "default 60" in cli("--help").stdout


def test_cli_sandbox_run_refuses_without_isolation(image, open_tmp):
    """#20.8: as eval, `sandbox run` without bubblewrap refuses unless --unsafe-no-sandbox."""
    env = _cli_env(open_tmp, MATBENCH_BWRAP="/nonexistent/bwrap")
    base = [sys.executable, "-m", "matbench.cli", "sandbox", "run", "-", "--image", str(image)]
    copy = "import shutil\nshutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')\n"
    for extra in ([], ["--isolation", "none"]):
        proc = subprocess.run([*base, *extra], input=copy, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2 and "--unsafe-no-sandbox" in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0
    proc = subprocess.run(
        [*base, "--unsafe-no-sandbox", "--json"], input=copy, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["isolation"] == "none"
