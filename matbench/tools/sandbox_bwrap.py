"""The bubblewrap side of the code sandbox: where bwrap is, and the command line that confines a worker.

A minimal read-only root (``/usr``, the libraries, the python installation and the package roots it
needs), private /proc, /dev, no network, and as the only writable space three size-limited tmpfs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

SANDBOX_MOUNT = "/sandbox"  # the job's private work dir (a tmpfs) inside bubblewrap
# Host directories the job needs (python, its packages) that live where the job has private file systems
# (a venv under /tmp, say) are bound here instead, so that the job's /tmp is as empty as anyone else's.
RELOCATED = "/run/matbench-host"
PRIVATE = ("/tmp", "/dev", SANDBOX_MOUNT, "/proc", "/run")
NOBODY = 65534
BWRAP_ENV = "MATBENCH_BWRAP"
PRELOAD = ("numpy", "cv2", "PIL.Image")


def minimal_env() -> dict[str, str]:
    """The only environment the sandbox ever sees: no keys, no proxies, single-threaded math libraries."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    env["VECLIB_MAXIMUM_THREADS"] = "1"
    return env


def module_dirs() -> list[str]:
    """Import roots of the preloaded packages (site-packages, wherever the harness found them)."""
    dirs: list[str] = []
    for name in PRELOAD:
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin:
            continue
        root = Path(spec.origin).resolve().parent.parent
        if str(root) not in dirs:
            dirs.append(str(root))
    return dirs


def python_dirs(python: str) -> list[str]:
    """Directories the interpreter needs read-only: its installation(s), venv and package roots."""
    candidates = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix]
    candidates.append(str(Path(os.path.realpath(python)).parent.parent))
    venv = Path(python).parent.parent  # ``python`` may be another venv's: its packages come from there
    if (venv / "pyvenv.cfg").is_file():
        candidates.append(str(venv))
    candidates += module_dirs()
    dirs: list[str] = []
    for cand in candidates:
        path = os.path.realpath(cand)
        if path in ("/", "/usr") or path.startswith("/usr/"):
            continue
        if not any(path == d or path.startswith(d + "/") for d in dirs):
            dirs = [d for d in dirs if not d.startswith(path + "/")] + [path]
    return sorted(dirs)


def inside_path(path: str) -> str:
    """Where host ``path`` (python, a package root) appears inside bubblewrap: the same path, unless that
    would put it in one of the job's private file systems (then under :data:`RELOCATED`)."""
    if any(path == top or path.startswith(top + "/") for top in PRIVATE):
        return RELOCATED + path
    return path


def bwrap_args(bwrap: str, python: str, as_root: bool, disk: dict[str, int]) -> list[str]:
    """The bubblewrap command line: a minimal read-only root, no network, and as the only writable space
    three size-limited tmpfs (``disk``: mount point -> bytes): the work dir, /tmp and /dev/shm."""
    args = [bwrap]
    if as_root:
        # Real root cannot map a non-root uid into a new user namespace, and a process that is root
        # outside escapes RLIMIT_NPROC; so keep the host user namespace and let the worker drop to
        # nobody itself (it keeps only CAP_SETUID/CAP_SETGID until then).
        args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
        ]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        args += ["--ro-bind-try", etc, etc]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += [
        "--perms",
        "1777",
        "--size",
        str(disk["/dev/shm"]),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
    ]
    args += ["--perms", "1777", "--size", str(disk["/tmp"]), "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/usr", "/etc", "/tmp", "/proc", "/dev"}
    for path in python_dirs(python):
        inside = inside_path(path)  # a venv under /tmp is bound elsewhere: the job's /tmp stays empty
        parts = Path(inside).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in made:  # bwrap would create missing parents 0700, unreadable for nobody
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += ["--ro-bind", path, inside]
    args += ["--perms", "1777", "--size", str(disk[SANDBOX_MOUNT]), "--tmpfs", SANDBOX_MOUNT]
    args += ["--chdir", SANDBOX_MOUNT]
    args += ["--clearenv"]
    for key, value in minimal_env().items():
        args += ["--setenv", key, value]
    return args


def find_bwrap() -> str | None:
    """The bubblewrap binary: ``$MATBENCH_BWRAP`` when set (a path; tests point it nowhere to stand for a
    machine without bubblewrap), else ``bwrap`` on PATH."""
    wanted = os.environ.get(BWRAP_ENV)
    if wanted is not None:
        return wanted if os.path.isfile(wanted) and os.access(wanted, os.X_OK) else None
    return shutil.which("bwrap")
