"""Seccomp programs for the code sandbox, built by libseccomp (the maintained C library, through ctypes).

``namespace_filter``: an allowlist at least as strict as Docker's default seccomp profile (moby
``profiles/seccomp/default.json``, without any capability), stricter where jobs could leave something
behind for the next job or a later run: every call outside :data:`ALLOWED` fails with EPERM, so no keyring
(add_key, request_key, keyctl), no SysV IPC or POSIX message queues (objects that outlive the process), no
io_uring, perf_event_open, bpf, userfaultfd, ptrace or process_vm_*, no mount family, kexec, modules,
acct, swap, reboot or clock setting, ``personality`` only with the values Docker allows, no AF_VSOCK
sockets. It also means no new namespaces of any kind. A root harness cannot give bubblewrap a user
namespace (see ``_bwrap_args``), so ``--disable-userns`` does not apply there, and without bubblewrap
there is nothing else in the way: job code could create a user namespace (uid 0 inside) and, with a
mount namespace, mount file systems. ``unshare``/``clone`` with any CLONE_NEW* flag and ``setns`` fail
with EPERM; ``clone3`` (its flags live in memory a filter cannot read) fails with ENOSYS, so that the C
library falls back to ``clone``.

``single_process_filter``: no new processes (threads stay allowed): the job-wide memory cap where no
cgroup can be made, since the address-space limit is per process.

The worker loads the exported BPF bytes with ``prctl(PR_SET_SECCOMP)`` after ``PR_SET_NO_NEW_PRIVS``;
filters are inherited by every child and cannot be removed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import lru_cache

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE = 1
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_OPTIMIZE = 8  # libseccomp >= 2.5: 2 = a binary tree, so a long allowlist stays cheap
CLONE_THREAD = 0x00010000
NAMESPACE_FLAGS = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
# Architectures where clone's first argument is the flags word (s390 swaps the first two).
_CLONE_FLAGS_ARG0 = {"x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "loongarch64"}


# Docker's unconditional allowlist (moby default.json), less what can outlive a job (SysV IPC, POSIX message
# queues) and io_uring; plus a few newer plain calls (fchmodat2, cachestat, futex_wait/wake/requeue,
# map_shadow_stack) that later Docker profiles allow too. Names unknown on this architecture are skipped.
ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futex_wait futex_wake futex_requeue futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mremap msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32
setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
cachestat
""".split()
# Per architecture, as Docker allows them.
ALLOWED_ON = {
    "x86_64": ["arch_prctl", "modify_ldt"],
    "aarch64": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                "set_tls"],
    "ppc64le": ["sync_file_range2", "swapcontext"],
    "riscv64": ["riscv_flush_icache"],
}
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # Docker's: linux, linux32, + ADDR_NO_RANDOMIZE, query
AF_VSOCK = 40
# Docker's mask of namespace flags for clone (CLONE_NEWNS|CLONE_NEWCGROUP|...|CLONE_NEWNET)
CLONE_NAMESPACES = 0x7E020000


class SeccompUnavailable(RuntimeError):
    """libseccomp is not installed or refused the program."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp not found ({exc}); install libseccomp2") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


class _Program:
    """A filter for the native architecture (other architectures' calls are killed) whose calls are allowed
    by default, or with ``default_errno``, fail with it unless a rule allows them."""

    def __init__(self, default_errno: int | None = None) -> None:
        self.lib = _lib()
        self.ctx = self.lib.seccomp_init(SCMP_ACT_ALLOW if default_errno is None else _act_errno(default_errno))
        if not self.ctx:
            raise SeccompUnavailable("seccomp_init failed")
        self.lib.seccomp_attr_set(ctypes.c_void_p(self.ctx), SCMP_FLTATR_CTL_OPTIMIZE, 2)  # best effort

    def _add(self, action: int, syscall: str, cmp: _ArgCmp | None) -> None:
        number = self.lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:
            return  # not a system call on this architecture
        if cmp is None:
            rc = self.lib.seccomp_rule_add_array(self.ctx, action, number, 0, None)
        else:
            rc = self.lib.seccomp_rule_add_array(self.ctx, action, number, 1, ctypes.byref(cmp))
        if rc < 0:
            raise SeccompUnavailable(f"seccomp rule for {syscall} refused: {os.strerror(-rc)}")

    def deny(self, syscall: str, code: int, *, mask: int | None = None, equals: int | None = None) -> None:
        """``syscall`` fails with ``code``; with ``mask``, only when (arg0 & mask) == ``equals``."""
        cmp = None if mask is None else _ArgCmp(0, SCMP_CMP_MASKED_EQ, mask, mask if equals is None else equals)
        self._add(_act_errno(code), syscall, cmp)

    def allow(self, syscall: str, *, op: int | None = None, value: int = 0, mask: int = 0) -> None:
        """Allow ``syscall``; with ``op``, only when its first argument compares so with ``value``."""
        if op is None:
            cmp = None
        elif op == SCMP_CMP_MASKED_EQ:
            cmp = _ArgCmp(0, op, mask, value)
        else:
            cmp = _ArgCmp(0, op, value, 0)
        self._add(SCMP_ACT_ALLOW, syscall, cmp)

    def export(self) -> bytes:
        fd = os.memfd_create("matbench-seccomp")
        try:
            rc = self.lib.seccomp_export_bpf(self.ctx, fd)
            if rc < 0:
                raise SeccompUnavailable(f"seccomp_export_bpf failed: {os.strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
            self.lib.seccomp_release(self.ctx)


def _clone_flags_checkable() -> bool:
    return os.uname().machine in _CLONE_FLAGS_ARG0


@lru_cache(maxsize=1)
def namespace_filter() -> bytes:
    """BPF of the container-default allowlist (module doc): everything else fails with EPERM, namespaces,
    keyrings and kernel objects that outlive a job included."""
    prog = _Program(default_errno=errno.EPERM)
    for name in [*ALLOWED, *ALLOWED_ON.get(os.uname().machine, [])]:
        prog.allow(name)
    if _clone_flags_checkable():  # threads and forks, never a namespace (unshare and setns are not allowed)
        prog.allow("clone", op=SCMP_CMP_MASKED_EQ, mask=CLONE_NAMESPACES | NAMESPACE_FLAGS["CLONE_NEWTIME"])
    prog.deny("clone3", errno.ENOSYS)  # flags in memory a filter cannot read: the C library falls back to clone
    for value in PERSONALITIES:
        prog.allow("personality", op=SCMP_CMP_EQ, value=value)
    prog.allow("socket", op=SCMP_CMP_NE, value=AF_VSOCK)
    return prog.export()


@lru_cache(maxsize=1)
def single_process_filter() -> bytes:
    """BPF that refuses new processes (fork, vfork, clone without CLONE_THREAD) with EAGAIN."""
    prog = _Program()
    prog.deny("fork", errno.EAGAIN)
    prog.deny("vfork", errno.EAGAIN)
    if _clone_flags_checkable():
        prog.deny("clone", errno.EAGAIN, mask=CLONE_THREAD, equals=0)
    prog.deny("clone3", errno.ENOSYS)
    return prog.export()


def available() -> str | None:
    """None when the filters can be built here, else why not."""
    try:
        namespace_filter()
    except (SeccompUnavailable, OSError) as exc:
        return str(exc)
    return None
