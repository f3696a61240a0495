"""When `matbench eval` may run model-written code: with bubblewrap, or only if the user opts out explicitly.

Without isolation a job running as the harness's user can read the harness's environment (the API keys)
from /proc and kill it; so a coding task without a working bubblewrap is refused in one line unless
``--unsafe-no-sandbox`` is passed. Such a run records ``sandbox.unsafe: true`` in its config: it is not
an official run (``matbench submit`` can tell by that key), and an official run is never resumed without
isolation.
"""

from __future__ import annotations

from typing import Any

from matbench.errors import ConfigError
from matbench.tools.sandbox import Sandbox, SandboxError

INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)"
)


UNOFFICIAL = " (the run is then marked unofficial)"


def open_code_sandbox(
    task: str, timeout: float, workers: int, unsafe: bool, *, after: str = UNOFFICIAL, **options: Any
) -> Sandbox:
    """A sandbox for ``task``'s model code; refuses (ConfigError, one line) when isolation is missing.
    ``after``: what the refusal says --unsafe-no-sandbox means; ``options``: more Sandbox settings."""
    sandbox = Sandbox(timeout=timeout, workers=workers, isolation="auto" if unsafe else "bwrap", **options)
    try:
        sandbox.isolation  # noqa: B018 - decides (and probes) now, before any model call
    except SandboxError as exc:
        sandbox.close()
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"{task} runs model-written code, which needs bubblewrap for isolation ({reason}): {INSTALL_HINT}, "
            f"or pass --unsafe-no-sandbox to run it without isolation{after}"
        ) from None
    return sandbox


def sandbox_config(sandbox: Sandbox, timeout: float) -> dict[str, Any]:
    """What the run config records about the sandbox (``unsafe``: model code ran without isolation)."""
    return {
        "timeout": timeout,
        "isolation": sandbox.isolation,
        "unsafe": sandbox.isolation != "bwrap",
        "max_output_pixels": sandbox.max_output_pixels,
        "namespaces": sandbox.namespace_guard,
        "memory_cap": sandbox.memory_cap,
        "disk_cap": sandbox.disk_cap,
    }


def check_resume(old_config: dict, new_info: dict | None, path: object) -> None:
    """Refuse to continue an isolated (official) run without isolation: its samples would be mixed."""
    old = old_config.get("sandbox") or {}
    if new_info and new_info.get("unsafe") and old and not old.get("unsafe"):
        raise ConfigError(
            f"{path} was run with bubblewrap isolation; it cannot be resumed without isolation "
            f"(--unsafe-no-sandbox): {INSTALL_HINT}, or pass --run-dir DIR for a new, unofficial run"
        )
