"""One writer per run directory: an advisory ``flock`` on ``<run>/.lock``, held while `matbench eval` runs.

The kernel drops the lock when its process dies (even by kill -9), so a lock file left by a dead process is
simply taken over; a live holder makes the second `eval` refuse in one line naming its pid. The file is
removed on release; after locking, the path is checked to still be the locked file (another process may have
removed it in between).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from matbench.errors import ConfigError

LOCK_FILE = ".lock"


class RunLock:
    def __init__(self, directory: str | Path):
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`ConfigError` saying who holds it."""
        if self._fd is not None:
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise ConfigError(
                    f"{self.path.parent} is in use by another `matbench eval` ({holder or 'pid unknown'}); "
                    "wait for it to finish, or pass --run-dir DIR for a separate run"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the file we locked was removed by its releasing holder: lock the new one
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
