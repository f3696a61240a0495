"""`matbench eval` and the code sandbox: no isolation means no model code unless the user says so.

MATBENCH_BWRAP (read only to locate bubblewrap) pointing nowhere stands for a machine without bubblewrap.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from fake_openai_server import FakeOpenAIServer, request_text
from runtime_helpers import read_jsonl, run_dir_of, run_eval

SECRET = "sk-test-secret-never-logged"
NO_BWRAP = {"MATBENCH_BWRAP": "/nonexistent/bwrap"}

# Model-written code that goes for the harness: its environment (the API key) and its life.
ATTACK = """<code>
```python
import os, signal, shutil
def parent(pid):
    with open(f'/proc/{pid}/stat') as fh:
        return int(fh.read().rsplit(')', 1)[1].split()[1])
server = os.getppid()
harness = parent(server) if server > 1 else 0
print('harness', harness)
for pid in {harness, parent(harness) if harness > 1 else 0} - {0, 1}:
    try:
        print('ENVIRON', pid, open(f'/proc/{pid}/environ', 'rb').read())
    except OSError as exc:
        print('ENVIRON-DENIED', pid, type(exc).__name__)
    try:
        os.kill(pid, signal.SIGKILL)
        print('KILLED', pid)
    except OSError as exc:
        print('KILL-DENIED', pid, type(exc).__name__)
shutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')
```
</code>"""


def attack_policy(req: dict) -> str:
    text = request_text(req)
    if "<tips>" not in text:
        return "<think> look </think>\n<problem> {'rotation180'} </problem>"
    if "ENVIRON" not in text and "KILL" not in text and "/proc/" not in text:
        return ATTACK
    return "<answer> 1 Can </answer>"


@pytest.fixture()
def coding_dir(fixtures_dir):
    return fixtures_dir / "mat" / "coding-demo"


def _eval(srv, tmp_path, coding_dir, *extra: str, env: dict | None = None):
    return run_eval(
        ["--model", "openai:fake", "--base-url", srv.base_url, "--task", "mat-coding"]
        + ["--data-dir", str(coding_dir), "--ids", "12", "--runs-root", str(tmp_path / "runs"), *extra],
        env_extra={"OPENAI_API_KEY": SECRET, **(env or {})},
        cache_dir=tmp_path / "cache",
        timeout=300,
    )


def test_without_bubblewrap_eval_refuses_model_code(tmp_path, coding_dir):
    with FakeOpenAIServer(attack_policy) as srv:
        out = _eval(srv, tmp_path, coding_dir, env=NO_BWRAP)
        assert srv.calls == 0  # not one model call
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "bubblewrap" in lines[0] and "apt-get install bubblewrap" in lines[0]
    assert "--unsafe-no-sandbox" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_search_tasks_need_no_bubblewrap(tmp_path, coding_dir):
    """Only tasks that run model code are refused: `--protocol direct` runs none."""
    with FakeOpenAIServer("<answer> 1 Can </answer>") as srv:
        out = _eval(srv, tmp_path, coding_dir, "--protocol", "direct", env=NO_BWRAP)
    assert out.returncode == 0, out.stderr
    config = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    assert config["sandbox"] is None


def _attack_output(out) -> str:
    assert out.returncode == 0, out.stderr  # the harness survived and finished
    run = run_dir_of(out.stdout)
    rec = read_jsonl(run / "predictions.jsonl")[0]
    tool = rec["trajectory"][1]["tool_calls"][-1]
    assert tool["name"] == "code" and tool["ok"], tool
    everything = "".join(p.read_text() for p in run.glob("*.json*"))
    assert SECRET not in everything and SECRET not in out.stdout + out.stderr
    return tool["stdout"]


def test_unsafe_no_sandbox_is_recorded_and_still_blocks_the_attack(tmp_path, coding_dir):
    if os.geteuid() != 0:
        pytest.skip("without bubblewrap only a root harness can run jobs as another uid")
    with FakeOpenAIServer(attack_policy) as srv:
        out = _eval(srv, tmp_path, coding_dir, "--unsafe-no-sandbox", env=NO_BWRAP)
    stdout = _attack_output(out)
    # as root without bubblewrap the job runs as uid 65534 in its own session
    assert "ENVIRON-DENIED" in stdout and "KILL-DENIED" in stdout, stdout
    assert "ENVIRON " not in stdout.replace("ENVIRON-DENIED", "") and "KILLED" not in stdout
    config = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    assert config["sandbox"]["isolation"] == "none"
    assert config["sandbox"]["unsafe"] is True
    assert config["sandbox"]["namespaces"] == "seccomp"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_with_bubblewrap_the_harness_is_out_of_reach(tmp_path, coding_dir):
    with FakeOpenAIServer(attack_policy) as srv:
        out = _eval(srv, tmp_path, coding_dir)
        resumed = _eval(srv, tmp_path, coding_dir, "--unsafe-no-sandbox", "--retry-errors", env=NO_BWRAP)
    stdout = _attack_output(out)
    assert "KILLED" not in stdout and "ENVIRON " not in stdout.replace("ENVIRON-DENIED", "")
    config = json.loads((run_dir_of(out.stdout) / "config.json").read_text())
    assert config["sandbox"]["isolation"] == "bwrap" and config["sandbox"]["unsafe"] is False
    assert config["sandbox"]["namespaces"] == "seccomp"
    assert config["sandbox"]["memory_cap"].startswith(("cgroup-v1", "cgroup-v2", "one process per job"))
    assert config["sandbox"]["disk_cap"].startswith("tmpfs 512 MiB (/sandbox 256 MiB, /tmp 128 MiB")
    # an official run is never continued without isolation
    assert resumed.returncode == 2
    assert "cannot be resumed without isolation" in resumed.stderr.strip().splitlines()[-1]
