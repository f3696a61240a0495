"""Nothing crosses from one sandbox job to the next through a kernel object (issue 20.8): the seccomp
allowlist (``sandbox_seccomp.namespace_filter``) is at least as strict as Docker's default profile, so the
keyring, SysV IPC, POSIX message queues, io_uring, perf, bpf, userfaultfd, ptrace, the mount and kexec
families and the like fail with EPERM, while ordinary snippets (numpy, OpenCV, PIL, threads, fork) run."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
from pathlib import Path

import pytest

from matbench.tools.sandbox import Sandbox
from matbench.tools.sandbox_seccomp import available

pytestmark = pytest.mark.skipif(available() is not None, reason=f"no seccomp here: {available()}")


def _nr(name: str) -> int:
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib.seccomp_syscall_resolve_name(name.encode())


@pytest.fixture(scope="module", params=["auto", "none"])
def box(request):
    with Sandbox(timeout=10.0, workers=1, isolation=request.param) as sb:
        yield sb


@pytest.fixture(scope="module")
def image(fixtures_dir) -> Path:
    return fixtures_dir / "mat" / "coding-demo" / "rotation180_1_proc.png"


PRELUDE = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *args)
    return rc if rc >= 0 else -ctypes.get_errno()
L = ctypes.c_long
"""

# job A leaves a key in every keyring it can reach, a SysV shared memory segment and a message queue
LEAVE = PRELUDE + """
out = {}
for ring in (-3, -4, -5):  # session, user, user-session keyrings
    out[f"key{ring}"] = call(ADD_KEY, b"user", b"matbench-leak", b"secret", L(6), L(ring))
out["shm"] = call(SHMGET, L(0x4D42), L(4096), L(0o1666))
out["msg"] = call(MSGGET, L(0x4D42), L(0o1666))
print(json.dumps(out))
"""
# job B looks for them (and removes what it finds, so that a failing run leaves nothing on the host)
FIND = PRELUDE + """
out = {}
for ring in (-3, -4, -5):
    found = call(KEYCTL, L(10), L(ring), b"user", b"matbench-leak", L(0))  # KEYCTL_SEARCH
    if found > 0:
        call(KEYCTL, L(3), L(found))  # KEYCTL_REVOKE
    out[f"key{ring}"] = found
shm = call(SHMGET, L(0x4D42), L(0), L(0))
if shm >= 0:
    call(SHMCTL, L(shm), L(0), L(0))  # IPC_RMID
msg = call(MSGGET, L(0x4D42), L(0))
if msg >= 0:
    call(MSGCTL, L(msg), L(0), L(0))
out["shm"], out["msg"] = shm, msg
print(json.dumps(out))
"""


def _numbers() -> str:
    names = ("add_key", "keyctl", "shmget", "shmctl", "msgget", "msgctl")
    return "".join(f"{n.upper()} = {_nr(n)}\n" for n in names)


def test_no_keyring_or_ipc_object_crosses_to_the_next_job(box, image):
    left = box.run(_numbers() + LEAVE, None)
    found = box.run(_numbers() + FIND, None)
    assert found.exception is None, found.traceback
    seen = json.loads(found.stdout)
    assert all(v < 0 for v in seen.values()), (box.isolation, json.loads(left.stdout), seen)
    made = json.loads(left.stdout)
    assert all(v == -errno.EPERM for v in made.values()), made  # refused, not merely hidden


# (name, arguments): harmless arguments; what matters is that the filter answers before the kernel does
FORBIDDEN = {
    "add_key": (0, 0, 0, 0, 0), "request_key": (0, 0, 0, 0), "keyctl": (0, 0, 0, 0, 0),
    "io_uring_setup": (0, 0), "io_uring_enter": (0, 0, 0, 0, 0, 0), "io_uring_register": (0, 0, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0), "bpf": (0, 0, 0), "userfaultfd": (0,), "ptrace": (0, 0, 0, 0),
    "process_vm_readv": (1, 0, 0, 0, 0, 0), "mount": (0, 0, 0, 0, 0), "umount2": (0, 0),
    "pivot_root": (0, 0), "move_mount": (0, 0, 0, 0, 0), "open_tree": (0, 0, 0), "fsopen": (0, 0),
    "fsmount": (0, 0, 0), "fspick": (0, 0, 0), "mount_setattr": (0, 0, 0, 0, 0), "kexec_load": (0, 0, 0, 0),
    "kexec_file_load": (0, 0, 0, 0, 0), "init_module": (0, 0, 0), "finit_module": (0, 0, 0),
    "delete_module": (0, 0), "acct": (0,), "swapon": (0, 0), "swapoff": (0,), "reboot": (0, 0, 0, 0),
    "settimeofday": (0, 0), "clock_settime": (0, 0), "unshare": (0x10000000,), "setns": (0, 0),
    "chroot": (0,), "syslog": (0, 0, 0), "lookup_dcookie": (0, 0, 0), "shmget": (0, 0, 0),
    "msgget": (0, 0), "semget": (0, 0, 0), "mq_open": (0, 0, 0, 0), "quotactl": (0, 0, 0, 0),
    "name_to_handle_at": None, "personality": (0x0040000,), "socket": (40, 1, 0),
}


def test_the_filter_is_at_least_docker_default(box, image):
    calls = {n: a for n, a in FORBIDDEN.items() if a is not None and _nr(n) >= 0}
    code = PRELUDE + "out = {}\n" + "".join(
        f"out[{n!r}] = call({_nr(n)}, *[L(a) for a in {a!r}])\n" for n, a in calls.items()
    ) + "print(json.dumps(out))\n"
    res = box.run(code, None)
    assert res.exception is None, res.traceback
    got = json.loads(res.stdout)
    wrong = {n: rc for n, rc in got.items() if rc != -errno.EPERM}
    assert wrong == {}, f"{box.isolation}: not refused by the filter: {wrong}"
    clone3 = box.run(PRELUDE + f"print(call({_nr('clone3')}, L(0), L(0)))\n", None)
    assert int(clone3.stdout) == -errno.ENOSYS  # the C library falls back to clone


ORDINARY = """
import os, threading, subprocess, tempfile, numpy as np, cv2
from PIL import Image
img = cv2.imread('path_to_input_image.jpg')
t = threading.Thread(target=lambda: None); t.start(); t.join()
with tempfile.TemporaryDirectory() as d:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(os.path.join(d, 'x.png'))
if FORK:
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    print(os.WEXITSTATUS(status), subprocess.run(['true']).returncode)
cv2.imwrite('path_to_output_image.jpg', cv2.flip(img, 0))
"""


def test_ordinary_snippets_still_run(box, image):
    fork = not box.memory_cap.startswith("one process")  # else new processes are refused on purpose
    res = box.run(f"FORK = {fork}\n" + ORDINARY, image)
    assert res.ok, (res.error, res.stderr)
    assert res.stdout.split() == (["7", "0"] if fork else [])


JOB_SEES = """
import os, numpy
print(sorted(os.listdir('/tmp')), sorted(os.listdir('/dev/shm')), sorted(os.listdir('.')))
"""
HARNESS = """
import json, sys
from matbench.tools.sandbox import Sandbox
with Sandbox(workers=1, isolation="bwrap", disk_mb=64) as sb:
    res = sb.run(sys.argv[1], None)
    print(json.dumps([res.stdout, res.stderr, res.disk_used]))
"""


def test_a_python_under_tmp_does_not_change_the_jobs_tmp(tmp_path):
    """A harness whose venv lives under /tmp (a CI clone, say): the job's /tmp is still empty and its
    whole writable space still counts from zero."""
    import shutil
    import subprocess
    import sys
    import sysconfig
    import tempfile

    from matbench.tools.sandbox_bwrap import find_bwrap

    if find_bwrap() is None:
        pytest.skip("needs bubblewrap")
    root = Path(tempfile.mkdtemp(prefix="matbench-venv-", dir="/tmp"))
    try:
        root.chmod(0o755)
        venv = root / "v"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                       check=True, timeout=120)
        site = next(venv.glob("lib/python*/site-packages"))
        repo = Path(__file__).resolve().parents[1]
        (site / "matbench-test.pth").write_text(f"{repo}\n{sysconfig.get_paths()['purelib']}\n")
        proc = subprocess.run([str(venv / "bin" / "python"), "-c", HARNESS, JOB_SEES], capture_output=True,
                              text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "HOME": str(root)})
        assert proc.returncode == 0, proc.stderr
        stdout, stderr, used = json.loads(proc.stdout.strip().splitlines()[-1])
        assert "Traceback" not in stderr, stderr
        assert stdout.strip() == "[] [] []", stdout
        assert used is not None and used < 1 << 20
    finally:
        shutil.rmtree(root, ignore_errors=True)
