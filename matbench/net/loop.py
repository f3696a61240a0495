"""One background event loop for the blocking callers of the transport (search tools run in threads, the
preflight and the authors'-scripts download run before the run's loop exists): they hand their coroutine to
this loop and wait, so every network call runs through the same async code and the same deadline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="matbench-net", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def in_background_loop() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and wait for its result (its exception is raised here)."""
    if in_background_loop():
        coro.close()
        raise RuntimeError("run_sync called from the transport's own loop")
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
