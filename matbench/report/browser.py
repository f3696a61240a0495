"""Headless screenshots of the generated pages (README images, browser tests), with Debian's chromium:
playwright drives ``/usr/bin/chromium`` (never a downloaded browser)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from matbench.errors import ConfigError

CHROMIUM = os.environ.get("MATBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable_reason() -> str | None:
    """Why a headless browser cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return f"chromium not found at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


def launch(pw: object, env: dict[str, str] | None = None) -> object:
    """Headless chromium from a running ``sync_playwright()``; ``env`` replaces the browser's environment
    (e.g. a ``FONTCONFIG_FILE`` that hides some fonts). Callers that open many pages share one browser."""
    return pw.chromium.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=env
    )


@contextmanager
def open_page(width: int = 1400, height: int = 900, env: dict[str, str] | None = None) -> Iterator[object]:
    """A playwright page in its own headless chromium; closed on exit."""
    reason = unavailable_reason()
    if reason:
        raise ConfigError(f"cannot take a screenshot: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw, env)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()  # type: ignore[attr-defined]


def screenshot(html_path: str | Path, png_path: str | Path, *, full_page: bool = False) -> Path:
    """Open a local HTML file and save a PNG of it."""
    html_path, png_path = Path(html_path).resolve(), Path(png_path)
    with open_page() as page:
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(png_path), full_page=full_page)
    return png_path
