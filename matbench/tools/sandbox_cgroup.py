"""A cgroup per sandbox worker: memory and process caps for a job as a whole, not per process.

RLIMIT_AS bounds one process; a job that forks could hold memory_mb in each child. A cgroup bounds the
worker (its fork server, the spare child and the running job) together: memory.max / memory.limit_in_bytes
set to what the warm server holds plus the job's budget (tmpfs pages the job writes count too), swap off,
and pids.max. Job processes raise their oom_score_adj so that the OOM killer takes them, not the server.

Made only inside this process's own cgroup (cgroup v2 when memory and pids are delegated to it, or the
cgroup v1 memory and pids hierarchies), never elsewhere; where neither works the caller falls back to one
process per job (see ``sandbox_seccomp.single_process_filter``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

# Runs the given command inside the cgroups: the shell joins them, then execs (so nothing escapes).
JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
)


@dataclass(frozen=True)
class CgroupSupport:
    """Where worker cgroups go: ``memory`` (and ``pids``, v1 only a separate hierarchy) parent dirs."""

    version: int
    memory_parent: Path
    pids_parent: Path | None

    @property
    def caps_pids(self) -> bool:
        return self.version == 2 or self.pids_parent is not None

    @property
    def mechanism(self) -> str:
        if self.version == 2:
            return "cgroup-v2 (memory.max, memory.swap.max=0, pids.max per worker)"
        pids = ", pids.max" if self.pids_parent else ""
        return f"cgroup-v1 (memory.limit_in_bytes, memory.memsw.limit_in_bytes{pids} per worker)"


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup file system."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) > 4 and rest and rest[0] in ("cgroup", "cgroup2"):
            opts = set(rest[2].split(",")) if len(rest) > 2 else set()
            out.append((fields[4], rest[0], opts))
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per controller ('' for the v2 unified hierarchy)."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _writable(parent: Path) -> bool:
    probe = parent / f"matbench-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        probe.rmdir()
    except OSError:
        pass
    return True


def _v2(mounts: list, own: dict[str, str]) -> CgroupSupport | None:
    root = next((m for m, kind, _ in mounts if kind == "cgroup2"), None)
    if root is None or "" not in own:
        return None
    parent = Path(root + own[""].rstrip("/"))
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    if not {"memory", "pids"} <= enabled or not _writable(parent):
        return None
    return CgroupSupport(2, parent, None)


def _v1(mounts: list, own: dict[str, str]) -> CgroupSupport | None:
    def parent_of(controller: str) -> Path | None:
        mount = next((m for m, kind, opts in mounts if kind == "cgroup" and controller in opts), None)
        if mount is None or controller not in own:
            return None
        path = Path(mount + own[controller].rstrip("/"))
        return path if path.is_dir() and _writable(path) else None

    memory = parent_of("memory")
    if memory is None:
        return None
    return CgroupSupport(1, memory, parent_of("pids"))


@lru_cache(maxsize=1)
def detect() -> tuple[CgroupSupport | None, str]:
    """(support, why not): can this process make child cgroups with memory and pids limits?"""
    mounts, own = _mounts(), _own_paths()
    if not mounts:
        return None, "no cgroup file system mounted"
    support = _v2(mounts, own) or _v1(mounts, own)
    if support is None:
        return None, "no writable cgroup with the memory controller below this process's own cgroup"
    for parent in (support.memory_parent, support.pids_parent):
        if parent is not None:
            _sweep_stale(parent)
    return support, ""


def _sweep_stale(parent: Path) -> None:
    """Remove the empty worker cgroups of harnesses that died without cleaning up (SIGKILL)."""
    try:
        names = [p.name for p in parent.iterdir() if p.name.startswith("matbench-")]
    except OSError:
        return
    for name in names:
        pid = name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                (parent / name).rmdir()
            except OSError:
                pass


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError as exc:
        log.debug("cgroup write %s=%s failed: %s", path, value, exc)
        return False


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text == "max" else int(text)


class WorkerCgroup:
    """The cgroup(s) of one worker; removed (after killing anything left in it) by ``remove``."""

    def __init__(self, support: CgroupSupport, name: str) -> None:
        self.support = support
        self.memory = support.memory_parent / name
        self.pids = (support.pids_parent / name) if support.pids_parent else None
        for path in (self.memory, self.pids):
            if path is not None:
                path.mkdir(exist_ok=True)
        self.limit: int | None = None

    def procs_files(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in (self.memory, self.pids) if p is not None]

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started inside this cgroup from its very first instruction."""
        files = self.procs_files()
        return ["/bin/sh", "-c", JOIN_SCRIPT, "sh", str(len(files)), *files, *command]

    # -- limits ----------------------------------------------------------------------------------
    def set_memory(self, limit: int) -> bool:
        m = self.memory
        if self.support.version == 2:
            ok = _write(m / "memory.max", str(limit))
            _write(m / "memory.swap.max", "0")
        else:
            memsw = m / "memory.memsw.limit_in_bytes"
            raising = self.limit is None or limit > self.limit
            if raising and memsw.exists():  # memsw must stay >= the memory limit at every step
                _write(memsw, str(limit))
            ok = _write(m / "memory.limit_in_bytes", str(limit))
            if memsw.exists():
                _write(memsw, str(limit))
        if ok:
            self.limit = limit
        return ok

    def set_pids(self, count: int) -> None:
        target = self.memory if self.support.version == 2 else self.pids
        if target is not None:
            _write(target / "pids.max", str(count))

    # -- accounting ------------------------------------------------------------------------------
    def usage(self) -> int | None:
        name = "memory.current" if self.support.version == 2 else "memory.usage_in_bytes"
        return _read_int(self.memory / name)

    def reset_peak(self) -> None:
        if self.support.version == 1:
            _write(self.memory / "memory.max_usage_in_bytes", "0")

    def peak(self) -> int | None:
        """Peak memory since the last ``reset_peak`` (v1) or since the worker started (v2)."""
        name = "memory.peak" if self.support.version == 2 else "memory.max_usage_in_bytes"
        return _read_int(self.memory / name)

    def oom_kills(self) -> int:
        name = "memory.events" if self.support.version == 2 else "memory.oom_control"
        try:
            for line in (self.memory / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    # -- teardown --------------------------------------------------------------------------------
    def _pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            try:
                found.update(int(p) for p in Path(procs).read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL everything still in the cgroup (strays of a job killed with its server)."""
        if self.support.version == 2 and _write(self.memory / "cgroup.kill", "1"):
            return
        for _ in range(100):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup dirs (retrying while the dying processes exit)."""
        self.kill_all()
        for path in (self.memory, self.pids):
            if path is None:
                continue
            for _ in range(200):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
            else:
                log.warning("could not remove cgroup %s", path)
