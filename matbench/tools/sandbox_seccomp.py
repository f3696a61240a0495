"""Seccomp programs for the code sandbox, built by libseccomp (the maintained C library, through ctypes).

``namespace_filter``: no new namespaces of any kind. A root harness cannot give bubblewrap a user
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
SCMP_CMP_MASKED_EQ = 7
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
    """A default-allow filter for the native architecture (other architectures' calls are killed)."""

    def __init__(self) -> None:
        self.lib = _lib()
        self.ctx = self.lib.seccomp_init(SCMP_ACT_ALLOW)
        if not self.ctx:
            raise SeccompUnavailable("seccomp_init failed")

    def deny(self, syscall: str, code: int, *, mask: int | None = None, equals: int | None = None) -> None:
        """``syscall`` fails with ``code``; with ``mask``, only when (arg0 & mask) == ``equals``."""
        number = self.lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:
            return  # not a system call on this architecture
        if mask is None:
            rc = self.lib.seccomp_rule_add_array(self.ctx, _act_errno(code), number, 0, None)
        else:
            cmp = _ArgCmp(0, SCMP_CMP_MASKED_EQ, mask, mask if equals is None else equals)
            rc = self.lib.seccomp_rule_add_array(self.ctx, _act_errno(code), number, 1, ctypes.byref(cmp))
        if rc < 0:
            raise SeccompUnavailable(f"seccomp rule for {syscall} refused: {os.strerror(-rc)}")

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
    """BPF that refuses every way of entering or creating a namespace."""
    prog = _Program()
    for flag in NAMESPACE_FLAGS.values():
        prog.deny("unshare", errno.EPERM, mask=flag)
        if _clone_flags_checkable():
            prog.deny("clone", errno.EPERM, mask=flag)
    if not _clone_flags_checkable():
        prog.deny("clone", errno.EPERM)  # cannot tell threads from namespaces here: refuse all
    prog.deny("clone3", errno.ENOSYS)
    prog.deny("setns", errno.EPERM)
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
