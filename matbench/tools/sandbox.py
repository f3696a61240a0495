"""Run model-written Python/OpenCV code (MAT-Coding) outside the harness, isolated and bounded.

The code reads ``path_to_input_image.jpg`` and writes ``path_to_output_image.jpg``; we map those
placeholders to files in a fresh per-call directory and run it in a warm fork server (see
``sandbox_worker.py``) started inside bubblewrap when available: no network, no view of the project or
home, a non-root uid, a scrubbed environment and rlimits on CPU, memory, file size, files and processes.
A wall-clock timeout kills the job's whole process group; a worker the code managed to kill is restarted.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import math
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from matbench.errors import MatbenchError
from matbench.tools.sandbox_bwrap import (
    NOBODY,
    PRELOAD,
    SANDBOX_MOUNT,
    bwrap_args,
    find_bwrap,
    inside_path,
    minimal_env,
    module_dirs,
)
from matbench.tools.sandbox_cgroup import CgroupSupport, WorkerCgroup
from matbench.tools.sandbox_files import (
    MAX_OUTPUT_PIXELS,
    OUTPUT_NAME,
    OUTPUT_PLACEHOLDER,
    copy_from,
    is_plain_file,
    output_problem,
    read_capped,
    rmtree,
    same_dir,
)

log = logging.getLogger(__name__)

INPUT_PLACEHOLDER = "path_to_input_image.jpg"
DEFAULT_CODE_TIMEOUT = 60.0  # seconds per snippet: eval's --code-timeout and `sandbox run --timeout`
# Standard-library modules snippets often use, imported before the worker drops root: as root without
# bubblewrap, the interpreter may live where uid 65534 cannot read (e.g. /root/.pyenv).
STDLIB_PRELOAD = (
    "base64 bisect collections colorsys copy dataclasses datetime decimal fractions functools glob hashlib "
    "heapq io itertools json logging math operator pathlib random re shutil statistics string struct tempfile "
    "textwrap typing"
).split()

Isolation = Literal["auto", "bwrap", "none"]
MemoryCap = Literal["auto", "cgroup", "single-process"]

_warned_weak = False
_warn_lock = threading.Lock()


class SandboxError(MatbenchError):
    """The sandbox itself cannot run (bubblewrap requested but unusable, worker fails to start)."""


class _WorkerDied(Exception):
    """The fork server went away (or stopped answering) during a job."""


@dataclass
class CodeResult:
    """What one run of a snippet produced; ``ok`` means it finished cleanly and wrote a readable image."""

    ok: bool
    error: str | None
    stdout: str
    stderr: str
    exception: str | None
    traceback: str | None
    wall_time: float
    exec_time: float | None
    output_image: Path | None
    workdir: Path | None
    isolation: str
    timed_out: bool = False
    returncode: int | None = None
    signal: str | None = None
    memory_peak: int | None = None  # bytes the job held at most, all its processes (cgroup mode)
    disk_used: int | None = None  # bytes the job left in its writable space (work dir, /tmp, /dev/shm)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_image"] = str(self.output_image) if self.output_image else None
        data["workdir"] = str(self.workdir) if self.workdir else None
        return data

    def feedback(self) -> str:
        """The text an agent shows the model after the call."""
        parts = []
        if self.ok:
            parts.append(f"Code ran successfully; output image written ({self.wall_time:.2f}s).")
        else:
            parts.append(f"Error: {self.error}")
        if self.stdout:
            parts.append(f"stdout:\n{self.stdout}")
        if self.traceback:
            parts.append(f"traceback:\n{self.traceback}")
        elif self.stderr:
            parts.append(f"stderr:\n{self.stderr}")
        return "\n".join(parts)


@dataclass(frozen=True)
class _Limits:
    timeout: float
    memory_mb: int
    file_size_mb: int
    max_processes: int
    max_open_files: int

    def rlimits(self) -> dict[str, int]:
        """Limits fixed for a worker's life; the CPU limit follows each call's timeout."""
        return {
            "as": self.memory_mb * 1024 * 1024,
            "fsize": self.file_size_mb * 1024 * 1024,
            "nofile": self.max_open_files,
            "nproc": self.max_processes,  # the worker adds the processes its uid already has
        }


def _hide_harness() -> None:
    """Without bubblewrap and without root, jobs run as the harness's own uid: make this process
    non-dumpable so that its /proc entries (environ with the API keys, mem) belong to root and a job
    cannot read them or ptrace it. (It can still signal it; that is why eval needs --unsafe-no-sandbox.)"""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError) as exc:
        log.warning("could not make the harness non-dumpable: %s", exc)


def _namespace_guard() -> tuple[str | None, str]:
    """(the seccomp program that denies namespaces, base64, or None; how namespaces are denied)."""
    from matbench.tools.sandbox_seccomp import SeccompUnavailable, namespace_filter

    try:
        return base64.b64encode(namespace_filter()).decode("ascii"), "seccomp"
    except (SeccompUnavailable, OSError) as exc:
        log.warning("job code may create namespaces: %s", exc)
        return None, f"not denied ({exc})"


def _memory_cap(wanted: str, memory_mb: int) -> tuple[CgroupSupport | None, str | None, str]:
    """How a job's memory is capped as a whole: (cgroup support, job seccomp program, description)."""
    from matbench.tools.sandbox_cgroup import detect
    from matbench.tools.sandbox_seccomp import SeccompUnavailable, single_process_filter

    if wanted not in ("auto", "cgroup", "single-process"):
        raise ValueError(f"memory_cap must be auto, cgroup or single-process, not {wanted!r}")
    why = "single-process requested"
    if wanted != "single-process":
        support, why = detect()
        if support is not None:
            return support, None, f"{support.mechanism}: {memory_mb} MiB for the job"
        if wanted == "cgroup":
            raise SandboxError(f"no cgroup for the job's memory cap: {why}")
    try:
        program = base64.b64encode(single_process_filter()).decode("ascii")
    except (SeccompUnavailable, OSError) as exc:
        log.warning("a job's memory is capped per process only (%s; %s)", why, exc)
        return None, None, f"RLIMIT_AS {memory_mb} MiB per process only ({why}; {exc})"
    return None, program, f"one process per job (seccomp: no fork) x RLIMIT_AS {memory_mb} MiB ({why})"


def _count_tasks(uid: int) -> int:
    """Tasks (threads included, as RLIMIT_NPROC counts them) that ``uid`` runs on this host now."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue
    return count


def _warn_weak_once(reason: str) -> None:
    global _warned_weak
    with _warn_lock:
        if _warned_weak:
            return
        _warned_weak = True
    log.warning(
        "code sandbox runs without bubblewrap (%s): isolation is weaker (no mount/network/pid namespaces); "
        "rlimits, a scrubbed environment, a non-root uid and process-group kills still apply",
        reason,
    )


class _Worker:
    """One fork server process; used by one thread at a time (checked out of the pool)."""

    def __init__(self, index: int, sandbox: Sandbox) -> None:
        self.index = index
        self.sandbox = sandbox
        self.dir = sandbox.root / f"w{index}"
        self.dir.mkdir(mode=0o755, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.isolation: str = "none"
        self.job_pgid: int | None = None
        self._buffer = b""
        self._log_path = sandbox.root / f"w{index}.log"
        self.cgroup: WorkerCgroup | None = None
        self.baseline = 0  # bytes the warm server holds in its cgroup
        self._starts = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, isolation: str) -> None:
        self.kill()
        self.dir.mkdir(mode=0o755, exist_ok=True)
        sb = self.sandbox
        config: dict[str, Any] = {
            "preload": [*PRELOAD, *STDLIB_PRELOAD],
            "paths": module_dirs(),
            "private_pid_ns": isolation == "bwrap",
            "private_tmp": isolation == "bwrap",
            "env": minimal_env(),
            "limits": sb.limits.rlimits(),
        }
        if sb._cgroups is not None and sb._cgroups.caps_pids:
            # pids.max counts this worker's tasks alone; RLIMIT_NPROC would count every task of uid 65534
            # on the host (other sandboxes included) and make forks fail at random.
            del config["limits"]["nproc"]
        if sb._seccomp is not None:
            config["seccomp"] = sb._seccomp
        worker_src = Path(__file__).with_name("sandbox_worker.py").read_text()
        command = [sb.python, "-I", "-B", "-c", worker_src]
        if isolation == "bwrap":  # python and its packages as the job sees them (see sandbox_bwrap.RELOCATED)
            command[0] = inside_path(sb.python)
            config["paths"] = [inside_path(p) for p in config["paths"]]
        if sb.as_root:
            config["drop_to"] = [NOBODY, NOBODY]
            if "nproc" in config["limits"]:
                config["nproc_base"] = _count_tasks(NOBODY) + 4  # + this worker's own server and spare
        if isolation == "bwrap":
            confine = bwrap_args(sb.bwrap or "bwrap", sb.python, sb.as_root, sb.disk)
            command = [*confine, "--", *command]
            # The job's files live on the tmpfs; the server alone reaches the host directory, through
            # this descriptor (never mounted, closed in every job), to copy the input in and results out.
            exchange_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            config.update(
                exchange_fd=exchange_fd,
                private_mounts=list(sb.disk),
                output_max_bytes=sb.limits.file_size_mb * 1024 * 1024,
                output_name=OUTPUT_NAME,
            )
        if sb._job_seccomp is not None:
            config["job_seccomp"] = sb._job_seccomp
        if sb._cgroups is not None:
            config["oom_score_adj"] = 1000  # the OOM killer takes job processes, never the server
        command.append(json.dumps(config))
        if sb._cgroups is not None:
            self._starts += 1
            self.cgroup = WorkerCgroup(
                sb._cgroups, f"matbench-{os.getpid()}-{id(sb):x}-w{self.index}-{self._starts}"
            )
            # Room for the start (imports), narrowed to the warm server's own use + the job's budget below.
            self.cgroup.set_memory(sb.limits.memory_mb * 1024 * 1024 + (1 << 30))
            self.cgroup.set_pids(sb.limits.max_processes + 16)
            command = self.cgroup.wrap(command)
        log_fh = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        passed = (config["exchange_fd"],) if "exchange_fd" in config else ()
        try:
            # Spawned from one long-lived thread: --die-with-parent follows the spawning *thread*.
            self.proc = sb._spawner.submit(
                subprocess.Popen,
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_fh,
                env=minimal_env(),
                cwd=str(self.dir) if isolation != "bwrap" else "/",
                start_new_session=True,
                close_fds=True,
                pass_fds=passed,
            ).result()
        finally:
            log_fh.close()
            for fd in passed:
                os.close(fd)
        self.isolation = isolation
        self._buffer = b""
        try:
            ready = self._read_message(time.monotonic() + sb.start_timeout)
        except _WorkerDied as exc:
            self.kill()
            raise SandboxError(
                f"sandbox worker failed to start ({isolation}): {exc}; {self.log_tail()}"
            ) from None
        if ready.get("event") != "ready":
            self.kill()
            raise SandboxError(f"sandbox worker sent {ready!r} instead of ready")
        if self.cgroup is not None:
            self.baseline = self.cgroup.usage() or 0
            if not self.cgroup.set_memory(self.baseline + sb.limits.memory_mb * 1024 * 1024):
                self.kill()
                raise SandboxError(f"could not set the memory limit of cgroup {self.cgroup.memory}")

    def kill(self) -> None:
        """Kill the server (its whole session; bwrap takes the pid namespace down with it)."""
        proc, self.proc = self.proc, None
        if proc is None:
            if self.cgroup is not None:
                self.cgroup.remove()
                self.cgroup = None
            return
        for pgid in (proc.pid, self.job_pgid):
            if pgid:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.job_pgid = None
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("sandbox worker %d did not die", proc.pid)
        if self.cgroup is not None:
            self.cgroup.remove()  # anything the job left behind dies with it
            self.cgroup = None
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def log_tail(self, size: int = 2000) -> str:
        try:
            data = self._log_path.read_bytes()[-size:]
        except OSError:
            return "no worker log"
        return "worker log: " + data.decode("utf-8", errors="replace").strip()

    # -- protocol --------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerDied("no answer in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.proc.wait(timeout=5)
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                raise _WorkerDied(how)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, request: dict[str, Any], grace: float) -> dict[str, Any]:
        """Send one job and wait for its result; raises _WorkerDied if the server is lost."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerDied(f"could not send the job ({exc})") from None
        deadline = time.monotonic() + float(request["timeout"]) + grace
        while True:
            message = self._read_message(deadline)
            if message.get("event") == "started":
                self.job_pgid = int(message["pid"]) if self.isolation == "none" else None
            elif message.get("event") == "done":
                self.job_pgid = None
                return message


class Sandbox:
    """A pool of warm, isolated Python workers for MAT-Coding snippets (thread-safe; see module doc)."""

    def __init__(
        self,
        timeout: float = DEFAULT_CODE_TIMEOUT,
        memory_mb: int = 2048,
        workers: int = 2,
        isolation: Isolation = "auto",
        *,
        file_size_mb: int = 64,
        max_processes: int = 64,
        max_open_files: int = 256,
        output_limit: int = 8192,
        root: str | Path | None = None,
        python: str | None = None,
        start_timeout: float = 60.0,
        keep_calls: int = 256,
        max_output_pixels: int = MAX_OUTPUT_PIXELS,
        memory_cap: MemoryCap = "auto",
        disk_mb: int = 512,
    ) -> None:
        if isolation not in ("auto", "bwrap", "none"):
            raise ValueError(f"isolation must be auto, bwrap or none, not {isolation!r}")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = _Limits(
            float(timeout), int(memory_mb), int(file_size_mb), int(max_processes), int(max_open_files)
        )
        self.requested_isolation = isolation
        self.output_limit = int(output_limit)
        self.max_output_pixels = int(max_output_pixels)
        # The job's whole writable space with bubblewrap: half work dir, a quarter each /tmp and /dev/shm.
        self.disk_mb = int(disk_mb)
        quarter = self.disk_mb * 1024 * 1024 // 4
        self.disk = {SANDBOX_MOUNT: 2 * quarter, "/tmp": quarter, "/dev/shm": quarter}
        self.python = python or sys.executable
        self.start_timeout = start_timeout
        self.grace = 5.0  # beyond the timeout, how long we wait for a worker before killing it
        self.as_root = os.geteuid() == 0
        self.bwrap = find_bwrap()
        self._seccomp, self.namespace_guard = _namespace_guard()
        self._cgroups, self._job_seccomp, self.memory_cap = _memory_cap(memory_cap, self.limits.memory_mb)
        base = Path(tempfile.mkdtemp(prefix="matbench-sandbox-", dir=root)).resolve()
        if any(ch in str(base) for ch in "'\"\\\n"):
            shutil.rmtree(base, ignore_errors=True)
            raise ValueError(f"sandbox root path {base} must not contain quotes or backslashes")
        self.root = base
        os.chmod(self.root, 0o755 if self.as_root else 0o700)
        self.calls_dir = self.root / "calls"
        self.calls_dir.mkdir(mode=0o700)
        self._isolation: str | None = None
        self._iso_lock = threading.Lock()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matbench-sandbox-spawn")
        self._workers = [_Worker(i, self) for i in range(workers)]
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for worker in self._workers:
            self._idle.put(worker)
        self._counter = itertools.count(1)
        self.keep_calls = keep_calls
        self._kept: deque[Path] = deque()
        self._kept_lock = threading.Lock()
        self._closed = False

    # -- isolation -------------------------------------------------------------------------------
    @property
    def isolation(self) -> str:
        """The isolation in force ("bwrap" or "none"), deciding it (with a probe) on first use."""
        with self._iso_lock:
            if self._isolation is None:
                self._isolation = self._decide_isolation()
                if self._isolation == "none" and not self.as_root:
                    _hide_harness()
            return self._isolation

    def _decide_isolation(self) -> str:
        wanted = self.requested_isolation
        if wanted == "none":
            _warn_weak_once("isolation='none' requested")
            return "none"
        if not self.bwrap:
            if wanted == "bwrap":
                raise SandboxError("bwrap is not installed")
            _warn_weak_once("bwrap not found")
            return "none"
        probe = self.root / "probe"
        probe.mkdir(mode=0o755, exist_ok=True)
        command = [
            *bwrap_args(self.bwrap, self.python, self.as_root, self.disk),
            "--",
            inside_path(self.python),
            "-I",
            "-c",
            "pass",
        ]
        try:
            result = self._spawner.submit(
                subprocess.run, command, capture_output=True, env=minimal_env(), timeout=30
            ).result()
            failure = result.stderr.decode(errors="replace").strip() if result.returncode else ""
        except (OSError, subprocess.SubprocessError) as exc:
            failure = str(exc)
        shutil.rmtree(probe, ignore_errors=True)
        if not failure:
            return "bwrap"
        if wanted == "bwrap":
            raise SandboxError(f"bwrap does not work here: {failure}")
        _warn_weak_once(f"bwrap failed: {failure}")
        return "none"

    @property
    def disk_cap(self) -> str:
        """How the job's writable space is capped, for the run config."""
        if self.isolation != "bwrap":
            return f"none as a whole without bubblewrap (each file at most {self.limits.file_size_mb} MiB)"
        parts = ", ".join(f"{path} {size >> 20} MiB" for path, size in self.disk.items())
        return f"tmpfs {self.disk_mb} MiB ({parts}); stdout/stderr {self.limits.file_size_mb} MiB each"

    # -- running ---------------------------------------------------------------------------------
    def run(
        self,
        code: str,
        image: str | Path | None,
        workdir: str | Path | None = None,
        *,
        timeout: float | None = None,
        scope: dict | None = None,
    ) -> CodeResult:
        """Run ``code`` on ``image``; files end up in ``workdir`` (a fresh dir under the root if None).

        ``scope``: None runs the code in one fresh namespace; ``{"globals": [[name, module, attr], ...]}``
        runs it like ``exec(code, globals, locals)`` with those imports seeded (see ``sandbox_worker``).

        Without ``workdir`` the files live under the sandbox root until ``close()`` and only for the
        newest ``keep_calls`` calls: copy what you need to keep.
        """
        if self._closed:
            raise SandboxError("sandbox is closed")
        started = time.perf_counter()
        if image is not None and not Path(image).is_file():
            raise FileNotFoundError(f"input image not found: {image}")
        isolation = self.isolation
        worker = self._idle.get()
        try:
            return self._run_on(worker, isolation, code, image, workdir, timeout, started, scope)
        finally:
            self._idle.put(worker)

    async def arun(
        self,
        code: str,
        image: str | Path | None,
        workdir: str | Path | None = None,
        *,
        timeout: float | None = None,
        scope: dict | None = None,
    ) -> CodeResult:
        """``run`` without blocking the event loop."""
        return await asyncio.to_thread(self.run, code, image, workdir, timeout=timeout, scope=scope)

    def warmup(self) -> None:
        """Start every worker now instead of on first use (benchmarks, long evaluations)."""
        isolation = self.isolation
        workers = [self._idle.get() for _ in self._workers]
        try:
            for worker in workers:
                if not worker.alive():
                    worker.start(isolation)
        finally:
            for worker in workers:
                self._idle.put(worker)

    def _run_on(
        self,
        worker: _Worker,
        isolation: str,
        code: str,
        image: str | Path | None,
        workdir: str | Path | None,
        timeout: float | None,
        started: float,
        scope: dict | None = None,
    ) -> CodeResult:
        number = next(self._counter)
        job_dir = worker.dir / f"j{number}"
        job_dir.mkdir(mode=0o700)
        if self.as_root:
            os.chown(job_dir, NOBODY, NOBODY)
        dir_fd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        moved = False
        try:
            seen_dir = f"{SANDBOX_MOUNT}/j{number}" if isolation == "bwrap" else str(job_dir)
            input_name = "input" + (Path(image).suffix.lower() if image is not None else ".jpg")
            if image is not None:
                shutil.copyfile(image, job_dir / input_name)
                os.chmod(job_dir / input_name, 0o644)
            mapped = code.replace(INPUT_PLACEHOLDER, f"{seen_dir}/{input_name}")
            mapped = mapped.replace(OUTPUT_PLACEHOLDER, f"{seen_dir}/{OUTPUT_NAME}")
            limit = float(timeout) if timeout is not None else self.limits.timeout
            input_arg = input_name if image is not None else None
            reply, died = self._execute(worker, isolation, seen_dir, mapped, limit, number, scope, input_arg)
            if reply.get("dirty"):  # its private mounts could not be emptied: never reuse them
                worker.kill()
            result = self._collect(reply, died, dir_fd, isolation, limit)
            self._check_output(dir_fd, result, reply.get("output_problem"))
            result.workdir, moved = self._keep_files(job_dir, dir_fd, input_name, result, workdir, number)
        finally:
            os.close(dir_fd)
            if not moved:
                rmtree(job_dir)
        if workdir is None:
            self._prune(result.workdir)
        result.wall_time = time.perf_counter() - started
        return result

    def _prune(self, kept: Path | None) -> None:
        """Bound the disk use of a long evaluation: only the newest ``keep_calls`` call dirs stay."""
        stale: list[Path] = []
        with self._kept_lock:
            if kept is not None:
                self._kept.append(kept)
            while len(self._kept) > self.keep_calls:
                stale.append(self._kept.popleft())
        for path in stale:
            rmtree(path)

    def _execute(
        self,
        worker: _Worker,
        isolation: str,
        seen_dir: str,
        code: str,
        timeout: float,
        number: int,
        scope: dict | None = None,
        input_name: str | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Run the job on ``worker``, (re)starting it as needed; returns (reply, why-the-worker-died)."""
        for attempt in (1, 2):
            if not worker.alive():
                worker.start(isolation)
            request = {
                "id": number,
                "dir": seen_dir,
                "exchange": f"j{number}",  # the host job dir, relative to the worker's exchange descriptor
                "input": input_name,
                "code": code,
                "timeout": timeout,
                "cpu": int(math.ceil(timeout)) + 1,
                "scope": scope,
            }
            cgroup = worker.cgroup
            if cgroup is not None:
                cgroup.reset_peak()
                ooms = cgroup.oom_kills()
            try:
                reply = worker.execute(request, grace=self.grace)
                if cgroup is not None:
                    reply["memory_peak"] = max(0, (cgroup.peak() or 0) - worker.baseline)
                    reply["oom_killed"] = cgroup.oom_kills() > ooms
                return reply, None
            except _WorkerDied as exc:
                sent = "could not send" not in str(exc)
                worker.kill()
                if sent or attempt == 2:  # the job may have run: never run it twice
                    return {}, str(exc)
        raise AssertionError("unreachable")

    def _collect(
        self, reply: dict[str, Any], died: str | None, dir_fd: int, isolation: str, timeout: float
    ) -> CodeResult:
        report = reply.get("report") or {}
        stdout = read_capped(dir_fd, "stdout.txt", self.output_limit)
        stderr = read_capped(dir_fd, "stderr.txt", self.output_limit)
        sig_num = reply.get("signal")
        sig_name = None
        if sig_num:
            try:
                sig_name = signal.Signals(int(sig_num)).name
            except ValueError:
                sig_name = f"signal {sig_num}"
        result = CodeResult(
            ok=False,
            error=None,
            stdout=stdout,
            stderr=stderr,
            exception=report.get("exception"),
            traceback=report.get("traceback"),
            wall_time=0.0,
            exec_time=report.get("exec_time"),
            output_image=None,
            workdir=None,
            isolation=isolation,
            timed_out=bool(reply.get("timed_out")),
            returncode=reply.get("returncode"),
            signal=sig_name,
            memory_peak=reply.get("memory_peak"),
            disk_used=reply.get("disk_used"),
        )
        if died is not None:
            result.error = f"sandbox worker died during the job ({died}); it is restarted for the next job"
        elif reply.get("server_error"):
            result.error = f"sandbox worker error: {reply['server_error']}"
        elif result.timed_out:
            result.error = f"timed out after {timeout:g} s (the code and all its processes were killed)"
        elif reply.get("oom_killed") and (sig_name or not report.get("ok")):
            result.error = (
                f"the code used more than its memory limit ({self.limits.memory_mb} MiB for all its "
                "processes together) and was killed"
            )
        elif sig_name:
            result.error = f"the code was killed by {sig_name}"
            if sig_name == "SIGXCPU":
                result.error += " (CPU time limit)"
        elif report.get("setup_error"):
            result.error = f"sandbox setup failed: {report['setup_error']}"
        elif result.exception:
            result.error = result.exception
        elif not report.get("ok"):
            result.error = f"the code exited abnormally (exit status {result.returncode})"
        return result

    def _check_output(self, dir_fd: int, result: CodeResult, seen: str | None = None) -> None:
        """Accept the output only as a plain file that PIL can identify and verify."""
        problem = output_problem(dir_fd, self.limits.file_size_mb * 1024 * 1024, self.max_output_pixels)
        if seen is not None:  # what the worker saw in the private work dir (a link, say)
            problem = f"output is not a readable image ({seen})"
        if problem is None:
            if result.error is None:
                result.ok = True
        elif result.error is None:
            result.error = problem
        if problem is not None:
            try:
                os.unlink(OUTPUT_NAME, dir_fd=dir_fd)  # never hand an unverified file to the caller
            except OSError:
                pass

    def _keep_files(
        self,
        job_dir: Path,
        dir_fd: int,
        input_name: str,
        result: CodeResult,
        workdir: str | Path | None,
        number: int,
    ) -> tuple[Path, bool]:
        """Move the input and the verified output to the caller's directory (renames, no copies).

        Returns (that directory, whether the whole job directory became it).
        """
        for name in ("stdout.txt", "stderr.txt"):
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError:
                pass
        keep = [name for name in (input_name, OUTPUT_NAME) if is_plain_file(dir_fd, name)]
        moved = False
        if workdir is None:
            final = self.calls_dir / f"call-{number:06d}"
            if sorted(os.listdir(dir_fd)) == sorted(keep) and same_dir(job_dir, dir_fd):  # one rename
                os.rename(job_dir, final)
                moved = True
            else:
                final.mkdir(mode=0o700)
        else:
            final = Path(workdir).resolve()
            final.mkdir(parents=True, exist_ok=True)
        if moved and self.as_root:
            os.chown(final, os.getuid(), os.getgid())
        for name in keep:
            if not moved:
                try:
                    os.rename(name, final / name, src_dir_fd=dir_fd)
                except OSError:  # another file system: copy through a descriptor
                    copy_from(dir_fd, name, final / name)
            if self.as_root:
                os.chown(final / name, os.getuid(), os.getgid())
        if OUTPUT_NAME in keep and result.ok:
            result.output_image = final / OUTPUT_NAME
        return final, moved

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every worker and delete the sandbox root (including kept call directories)."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            try:
                worker.kill()
            except Exception:  # noqa: BLE001 - closing must never fail: the root goes in any case
                log.exception("could not stop sandbox worker %d", worker.index)
        self._spawner.shutdown(wait=True)
        rmtree(self.root)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten sandbox must not leave servers behind
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


__all__ = [
    "INPUT_PLACEHOLDER",
    "MAX_OUTPUT_PIXELS",
    "OUTPUT_PLACEHOLDER",
    "DEFAULT_CODE_TIMEOUT",
    "CodeResult",
    "Sandbox",
    "SandboxError",
]
