"""Fork server for the code sandbox: a warm interpreter that runs one untrusted snippet per forked child.

This file is run as a script (``python -I -B -c <this source> <config-json>``), inside bubblewrap when
available, never imported by the harness for execution: it must stay standard-library only (cv2, numpy
and PIL are imported once, optionally, so that every forked job starts warm).

Protocol (JSON lines): the harness writes one request per line on our stdin; we answer on our stdout
with ``{"event": "ready"}`` once, then per job ``{"event": "started", "pid": ...}`` and
``{"event": "done", ...}``. Our own fds 0/1 are moved away at start so stray prints cannot corrupt it.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import linecache
import os
import re
import resource
import select
import signal
import stat
import sys
import time
import traceback

STATUS_FD = 3
JOB_FD = 4
EXCHANGE_FD = 5
STREAMS = ("stdout.txt", "stderr.txt")
STATUS_CAP = 64 * 1024
TRACEBACK_CAP = 16 * 1024
SCRIPT_NAME = "snippet.py"

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _prctl(option: int, value: int) -> None:
    """Best-effort prctl through libc (no third-party module may be used here)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _load_seccomp(encoded: str) -> None:
    """Install a seccomp program (BPF exported by libseccomp in the harness, base64); raises on failure.

    Needs PR_SET_NO_NEW_PRIVS first; the filter stays for this process and everything it starts."""
    program = base64.b64decode(encoded)
    if not program or len(program) % 8:
        raise OSError("seccomp program has a bad size")
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"could not load the seccomp filter: {os.strerror(code)}")


def _drop_privileges(uid: int, gid: int) -> None:
    """Leave root for good: supplementary groups, gid, then uid (which clears every capability)."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("could not drop root privileges")


def _count_own_processes() -> int:
    """Processes (threads included, as RLIMIT_NPROC counts them) of our uid visible in /proc."""
    uid = os.getuid()
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


def _children() -> list[int]:
    """Direct children of this process (orphans of a job land here: we are a child subreaper)."""
    me = os.getpid()
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as fh:
                kids.extend(int(p) for p in fh.read().split())
        return kids
    except OSError:
        pass
    for name in os.listdir("/proc"):  # kernels without CONFIG_PROC_CHILDREN
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            kids.append(int(name))
    return kids


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _sweep(pgid: int) -> int:
    """Kill the job's process group and every process it left behind, until none is left.

    Returns how many stray processes had to be killed outside the group kill.
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    strays = 0
    for _ in range(500):
        _reap()
        kids = _children()
        if not kids:
            break
        for pid in kids:
            strays += 1
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)
    return strays


def _open_dir(name: str, dir_fd: int | None) -> int:
    """A descriptor for directory ``name`` (never through a link), made searchable first if need be."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, flags, dir_fd=dir_fd)


def _is_dir(name: str, dir_fd: int) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)


def _flatten_once(top: int, serial: list[int]) -> bool:
    """One pass over ``top``: delete files, and for each subdirectory move its own subdirectories up into
    ``top`` (so the depth shrinks by one level per pass, with two descriptors and short names) and delete
    the rest. Returns False when nothing could be changed."""
    progress = False
    for name in os.listdir(top):
        try:
            if not _is_dir(name, top):
                os.unlink(name, dir_fd=top)
                progress = True
                continue
            try:
                os.rmdir(name, dir_fd=top)
                progress = True
                continue
            except OSError:
                pass
            os.chmod(name, 0o700, dir_fd=top)
            sub = _open_dir(name, top)
            try:
                for child in os.listdir(sub):
                    if _is_dir(child, sub):
                        os.chmod(child, 0o700, dir_fd=sub)  # moving a directory rewrites its ".."
                        for _ in range(100):
                            serial[0] += 1  # a name taken by a non-empty entry fails: try the next
                            try:
                                os.rename(child, f".rm{serial[0]}", src_dir_fd=sub, dst_dir_fd=top)
                                break
                            except FileNotFoundError:
                                raise
                            except OSError:
                                continue
                    else:
                        os.unlink(child, dir_fd=sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=top)
            progress = True
        except FileNotFoundError:
            progress = True
        except OSError:
            continue
    return progress


def empty_dir(path: str) -> bool:
    """Delete everything inside directory ``path``, however deep or unreadable; True when it is empty.

    No recursion and a constant number of descriptors, so 3,000 nested directories cannot crash it
    (``shutil.rmtree`` and ``os.walk`` recurse once per level). Never raises.
    """
    try:
        top = _open_dir(path, None)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    serial = [0]
    try:
        while os.listdir(top):
            if not _flatten_once(top, serial):
                return False
        return True
    except OSError:
        return False
    finally:
        os.close(top)


def remove_tree(path: str) -> bool:
    """Delete ``path`` (a file or a whole directory tree); True when nothing is left. Never raises."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return True
        if not empty_dir(path):
            return False
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _mount_points() -> set[str]:
    """Mount points of this mount namespace (the private /tmp may hold read-only binds of python)."""
    points: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 4:
                    points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    except OSError:
        pass
    return points


def _wipe(path: str, mounts: set[str]) -> bool:
    """Empty ``path`` but keep the mount points below it and the directories leading to them."""
    if not any(m.startswith(path + "/") for m in mounts):
        return empty_dir(path)
    ok = True
    try:
        names = os.listdir(path)
    except OSError:
        return False
    for name in names:
        full = os.path.join(path, name)
        if full in mounts:
            continue
        if any(m.startswith(full + "/") for m in mounts):
            ok = _wipe(full, mounts) and ok
        else:
            ok = remove_tree(full) and ok
    return ok


def _wipe_private(mounts: set[str], extra: list[str]) -> bool:
    """Empty the sandbox-private /tmp, /dev/shm (and work dir) so nothing carries over to the next job."""
    paths = ["/tmp", "/dev/shm", *(p for p in extra if p not in ("/tmp", "/dev/shm"))]
    return all([_wipe(path, mounts) for path in paths])


def _set_limits(limits: dict[str, int]) -> None:
    pairs = {
        "cpu": resource.RLIMIT_CPU,
        "as": resource.RLIMIT_AS,
        "fsize": resource.RLIMIT_FSIZE,
        "nofile": resource.RLIMIT_NOFILE,
        "nproc": resource.RLIMIT_NPROC,
    }
    for key, which in pairs.items():
        if key in limits:
            value = int(limits[key])
            hard = value + 1 if key == "cpu" else value
            resource.setrlimit(which, (value, hard))


class Spare:
    """A child forked ahead of time and confined already; it waits for one job on a pipe.

    Forking and confining off the critical path saves the fork, the copy-on-write faults of the setup
    and the rlimit calls from every job's latency.
    """

    def __init__(self, pid: int, job_w: int, status_r: int) -> None:
        self.pid = pid
        self.job_w = job_w
        self.status_r = status_r

    def close(self) -> None:
        for fd in (self.job_w, self.status_r):
            try:
                os.close(fd)
            except OSError:
                pass


def _fork_spare(config: dict) -> Spare:
    job_r, job_w = os.pipe()
    status_r, status_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _spare(job_r, status_w, config)
        except BaseException as exc:  # noqa: BLE001 - confinement failed: say why, run nothing
            message = json.dumps({"ok": False, "setup_error": f"{type(exc).__name__}: {exc}"}) + "\n"
            for fd in (STATUS_FD, status_w):
                try:
                    os.write(fd, message.encode())
                    break
                except OSError:
                    continue
        finally:
            os._exit(1)
    os.close(job_r)
    os.close(status_w)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child already did it, or is gone
    return Spare(pid, job_w, status_r)


def _spare(job_r: int, status_w: int, config: dict) -> None:
    """Runs in the forked child: confine now, wait for the job, run it, report, never return."""
    me = os.getpid()
    os.setpgid(0, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over-size writes raise EFBIG instead of killing
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    high_status = fcntl.fcntl(status_w, fcntl.F_DUPFD, 100)
    high_job = fcntl.fcntl(job_r, fcntl.F_DUPFD, 100)
    exchange = config.get("exchange_fd")
    high_exchange = fcntl.fcntl(exchange, fcntl.F_DUPFD, 100) if exchange is not None else None
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(high_status, STATUS_FD)
    os.dup2(high_job, JOB_FD)
    if high_exchange is not None:  # kept only until stdout/stderr are open, closed before the job runs
        os.dup2(high_exchange, EXCHANGE_FD)
    last = JOB_FD if high_exchange is None else EXCHANGE_FD
    os.closerange(last + 1, 65536)  # nothing of the server (its protocol pipes) stays reachable
    os.environ.clear()
    os.environ.update(config.get("env", {}))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _set_limits(config.get("limits", {}))
    if config.get("oom_score_adj") is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write(str(int(config["oom_score_adj"])))
        except OSError:
            pass
    if config.get("job_seccomp"):  # e.g. one process per job, where no cgroup caps the job's memory
        _load_seccomp(config["job_seccomp"])
    data = b""
    while b"\n" not in data:
        chunk = os.read(JOB_FD, 1 << 20)
        if not chunk:
            os._exit(0)  # the server went away: nothing to run
        data += chunk
    os.close(JOB_FD)
    req = json.loads(data)
    report: dict = {"ok": False}
    try:
        workdir = req["dir"]
        os.chdir(workdir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        if req.get("exchange"):  # straight to the host: a full work dir must not swallow the output
            streams = [os.open(f"{req['exchange']}/{n}", flags, 0o600, dir_fd=EXCHANGE_FD) for n in STREAMS]
        else:
            streams = [os.open(name, flags, 0o600) for name in STREAMS]
        os.dup2(streams[0], 1)
        os.dup2(streams[1], 2)
        os.closerange(JOB_FD, 65536)
        os.environ["HOME"] = workdir
        os.environ["TMPDIR"] = workdir
        _set_limits({"cpu": req["cpu"]})
        if config.get("private_pid_ns"):
            _prctl(PR_SET_DUMPABLE, 1)  # only the server stays unreadable; nobody else shares the pid ns
        sys.argv = [SCRIPT_NAME]
        source = req["code"]
    except BaseException as exc:  # noqa: BLE001 - the harness must get a reason, whatever it is
        report["setup_error"] = f"{type(exc).__name__}: {exc}"
        _finish(me, report, 1)
    _execute(me, source, report, req.get("scope"))


class _Imported:
    """A name the authors' script had imported, imported on first use (torch or transformers would cost
    seconds per snippet if imported eagerly, and most snippets never touch them)."""

    def __init__(self, module: str, attribute: str | None) -> None:
        object.__setattr__(self, "_spec", (module, attribute))

    def _target(self):
        import importlib

        module, attribute = object.__getattribute__(self, "_spec")
        value = importlib.import_module(module)
        if attribute:
            found = getattr(value, attribute, None)
            value = found if found is not None else importlib.import_module(f"{module}.{attribute}")
        return value

    def __getattr__(self, name: str):
        return getattr(self._target(), name)

    def __call__(self, *args, **kwargs):
        return self._target()(*args, **kwargs)

    def __repr__(self) -> str:
        return repr(self._target())


def _namespaces(scope: dict | None) -> tuple[dict, dict]:
    """(globals, locals) for the snippet's exec.

    Default: one fresh namespace. ``{"globals": [[name, module, attribute], ...]}``: the authors'
    ``exec(code, globals(), local_vars)``: a globals dict holding what their script had imported, under
    the same names, and a separate, empty locals dict (so functions and comprehensions defined in the
    snippet do not see the names it bound).
    """
    env = {"__name__": "__main__", "__file__": SCRIPT_NAME, "__builtins__": __builtins__}
    if not scope:
        return env, env
    for name, module, attribute in scope.get("globals", []):
        loaded = sys.modules.get(module) if not attribute else None
        env[name] = loaded if loaded is not None else _Imported(module, attribute)
    return env, {}


def _execute(me: int, source: str, report: dict, scope: dict | None = None) -> None:
    env, local_vars = _namespaces(scope)
    # Tracebacks quote the snippet's lines without a file on disk (mtime None: never invalidated).
    linecache.cache[SCRIPT_NAME] = (len(source), None, source.splitlines(True), SCRIPT_NAME)
    code_rc = 0
    started = time.perf_counter()
    try:
        compiled = compile(source, SCRIPT_NAME, "exec")
        started = time.perf_counter()
        exec(compiled, env, local_vars)
        report["ok"] = True
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            report["ok"] = True
        else:
            report["exit_code"] = code if isinstance(code, int) else 1
            report["exception"] = f"SystemExit: {code}"
            code_rc = 1
    except BaseException as exc:  # noqa: BLE001 - any failure of the snippet is reported, not raised
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_code is _execute.__code__:
            tb = tb.tb_next  # hide this function's frame: the model sees only its own code
        lines = traceback.format_exception(type(exc), exc, tb)
        text = "".join(lines)
        if len(text) > TRACEBACK_CAP:
            text = "...\n" + text[-TRACEBACK_CAP:]
        report["traceback"] = text
        report["exception"] = lines[-1].strip() if lines else type(exc).__name__
        code_rc = 1
    report["exec_time"] = time.perf_counter() - started
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException as exc:  # noqa: BLE001 - e.g. EFBIG when stdout hit the file-size limit
            report.setdefault("flush_error", f"{type(exc).__name__}: {exc}")
    _finish(me, report, code_rc)


def _finish(me: int, report: dict, rc: int) -> None:
    """Report on the status fd and exit without running any cleanup of the server's state."""
    if os.getpid() == me:  # a grandchild that fell out of the snippet must not report for the job
        try:
            os.write(STATUS_FD, (json.dumps(report) + "\n").encode()[:STATUS_CAP])
        except OSError:
            pass
    os._exit(rc)


def _descendants_left(pid: int) -> bool:
    """True if anything besides ``pid`` could still run: children of it, or other children of ours."""
    try:
        if _children() != [pid]:
            return True
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                if fh.read().strip():
                    return True
    except OSError:
        return True
    return False


def _wait(spare: Spare, timeout: float) -> tuple[int | None, bool, bytes]:
    """Wait for the job's report or exit, killing its process group at the deadline.

    Returns (wait status or None if the child reported and was killed but not reaped yet, timed out,
    report bytes).
    """
    pid, status_r = spare.pid, spare.status_r
    deadline = time.monotonic() + timeout
    data = b""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    watch = [status_r] + ([pidfd] if pidfd is not None else [])
    timed_out = False
    status: int | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait = remaining if pidfd is not None else min(remaining, 0.002)
            ready, _, _ = select.select(watch, [], [], wait)
            if status_r in ready:
                chunk = os.read(status_r, 65536)
                if chunk:
                    if len(data) < STATUS_CAP:
                        data += chunk
                    if b"\n" in data:
                        break  # the report is the child's last act: no need to wait for its exit
                else:
                    watch.remove(status_r)
            if pidfd is not None and pidfd in ready:
                break
            if pidfd is None:
                done, raw = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = raw
                    break
    finally:
        if pidfd is not None:
            os.close(pidfd)
    for kill, target in ((os.killpg, pid), (os.kill, pid)):  # the child may have left its group
        try:
            kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    os.set_blocking(status_r, False)
    try:
        while len(data) < STATUS_CAP:
            chunk = os.read(status_r, 65536)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    return status, timed_out, data


def _dispatch(spare: Spare, req: dict) -> bool:
    payload = (json.dumps(req) + "\n").encode()
    try:
        while payload:
            payload = payload[os.write(spare.job_w, payload) :]
    except OSError:
        return False
    return True


def _alive(spare: Spare) -> bool:
    try:
        pid, _ = os.waitpid(spare.pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return pid == 0


def _discard(spare: Spare) -> None:
    spare.close()
    try:
        os.kill(spare.pid, signal.SIGKILL)
        os.waitpid(spare.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _copy(src_fd: int, dst_fd: int, cap: int) -> None:
    left = cap
    while left > 0:
        chunk = os.read(src_fd, min(left, 1 << 20))
        if not chunk:
            return
        os.write(dst_fd, chunk)
        left -= len(chunk)


def _import_input(req: dict, config: dict) -> None:
    """Private work dir mode: make the job's directory on the tmpfs and copy its input in."""
    os.mkdir(req["dir"], 0o700)
    name = req.get("input")
    if not name:
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW
    src = os.open(f"{req['exchange']}/{name}", flags, dir_fd=config["exchange_fd"])
    try:
        dst = os.open(os.path.join(req["dir"], name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _copy(src, dst, 1 << 40)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _used_bytes(paths: list[str]) -> int:
    total = 0
    for path in paths:
        try:
            info = os.statvfs(path)
        except OSError:
            continue
        total += (info.f_blocks - info.f_bfree) * info.f_frsize
    return total


def _export(req: dict, config: dict, reply: dict) -> None:
    """Private work dir mode, after the job: copy the output image to the exchange directory if it is a
    plain file within the size limit (else say why in the reply), and count the space the job left in
    its writable file systems."""
    reply["disk_used"] = max(0, _used_bytes(config["private_mounts"]) - config["private_baseline"])
    name = config["output_name"]
    try:
        src = os.open(os.path.join(req["dir"], name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError:  # a link, say: never followed
        reply["output_problem"] = "not a regular file"
        return
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            reply["output_problem"] = "not a regular file"
        elif info.st_size > config["output_max_bytes"]:
            reply["output_problem"] = "larger than the file-size limit"
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            dst = os.open(f"{req['exchange']}/{name}", flags, 0o600, dir_fd=config["exchange_fd"])
            try:
                _copy(src, dst, info.st_size)
            finally:
                os.close(dst)
    except OSError as exc:
        reply["output_problem"] = f"could not be copied: {exc.strerror}"
    finally:
        os.close(src)


def _run_job(req: dict, spare: Spare | None, config: dict, send) -> dict:
    """Hand the job to a (fresh if need be) spare, wait, and build the reply; the spare is consumed."""
    started = time.perf_counter()
    private = config.get("exchange_fd") is not None
    if private:
        try:
            _import_input(req, config)
        except OSError as exc:
            return {"event": "done", "id": req.get("id"), "server_error": f"could not prepare the job: {exc}"}
    job = {"dir": req["dir"], "code": req["code"], "cpu": int(req.get("cpu", 30)), "scope": req.get("scope")}
    if private:
        job["exchange"] = req["exchange"]
    for _ in range(3):
        if spare is None or not _alive(spare):
            if spare is not None:
                _discard(spare)
            spare = _fork_spare(config)
        if _dispatch(spare, job):
            break
        _discard(spare)
        spare = None
    else:
        return {"event": "done", "id": req.get("id"), "server_error": "could not hand the job to a child"}
    assert spare is not None
    send({"event": "started", "id": req.get("id"), "pid": spare.pid})
    status, timed_out, data = _wait(spare, float(req.get("timeout", 20.0)))
    spare.close()
    wall = time.perf_counter() - started
    report: dict = {}
    line = data.split(b"\n", 1)[0]
    if line:
        try:
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                report = parsed
        except ValueError:
            report = {}
    reply = {"event": "done", "id": req.get("id"), "wall": wall, "timed_out": timed_out, "report": report}
    fast = status is None and bool(report) and not timed_out and not _descendants_left(spare.pid)
    if fast:  # killed right after its last act and alone: answer now, reap after
        if private:
            _export(req, config, reply)
        reply["returncode"] = 0 if report.get("ok") else 1
        send(reply)
    if status is None:
        _, status = os.waitpid(spare.pid, 0)
    reply["strays"] = _sweep(spare.pid)
    if private and not fast:
        _export(req, config, reply)
    if config.get("private_tmp") and not _wipe_private(config["mounts"], config.get("private_mounts", [])):
        reply["dirty"] = True  # the harness replaces this worker: its next job gets fresh mounts
    if fast:
        return {}
    if os.WIFSIGNALED(status) and not (report and os.WTERMSIG(status) == signal.SIGKILL and not timed_out):
        reply["signal"] = os.WTERMSIG(status)
    elif os.WIFEXITED(status):
        reply["returncode"] = os.WEXITSTATUS(status)
    else:
        reply["returncode"] = 0 if report.get("ok") else 1
    return reply


def main(argv: list[str]) -> int:
    config = json.loads(argv[1]) if len(argv) > 1 else {}
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a job come back to us so the sweep finds them
    requests = os.dup(0)
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # anything printed by accident goes to the log, not into the protocol
    for path in reversed(config.get("paths", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    warm: list[str] = []
    for module in config.get("preload", []):
        try:
            __import__(module)
            warm.append(module)
        except Exception as exc:  # noqa: BLE001 - a missing optional module only costs speed
            print(f"sandbox worker: could not preload {module}: {exc}", file=sys.stderr)
    if "PIL.Image" in warm:  # every image format plugin now, while the interpreter is still readable
        sys.modules["PIL.Image"].init()
    drop = config.get("drop_to")
    if drop is not None:  # after the preload: the interpreter may live where nobody cannot read
        _drop_privileges(int(drop[0]), int(drop[1]))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if config.get("seccomp"):  # no namespaces, for this server and every job it forks
        _load_seccomp(config["seccomp"])
    _prctl(PR_SET_DUMPABLE, 0)  # jobs run under our uid: they must not ptrace or read our memory
    import gc

    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the children: the collector leaves old objects alone
    limits = dict(config.get("limits", {}))
    if "nproc" in limits:  # RLIMIT_NPROC counts every process of the uid: allow ours on top of those
        # Without a user namespace the count is host-wide, beyond what our /proc shows: the harness
        # then counts for us.
        base = config.get("nproc_base")
        limits["nproc"] = int(limits["nproc"]) + (int(base) if base is not None else _count_own_processes())
    config["limits"] = limits

    def send(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(replies, data) :]

    if config.get("private_tmp"):
        config["mounts"] = _mount_points()
    if config.get("exchange_fd") is not None:
        config["private_baseline"] = _used_bytes(config["private_mounts"])
    spare: Spare | None = _fork_spare(config)
    send({"event": "ready", "pid": os.getpid(), "uid": os.getuid(), "warm": warm, "limits": limits})
    buffer = b""
    while True:
        chunk = os.read(requests, 1 << 20)
        if not chunk:
            return 0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("op") == "exit":
                return 0
            try:
                reply = _run_job(req, spare, config, send)
                spare = None
                if reply:
                    send(reply)
                spare = _fork_spare(config)
            except BrokenPipeError:
                return 0
            except Exception as exc:  # noqa: BLE001 - report and keep serving
                send({"event": "done", "id": req.get("id"), "server_error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
