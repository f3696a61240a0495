"""Browser checks with playwright driving /usr/bin/chromium: the leaderboard page renders and sorts on a header
click; a 200-sample MAT-Coding report opens, filters, opens a sample and screenshots to a PNG; a 12,576-sample
report opens and filters fast from a local file; Chinese MAT-Coding items render as glyphs, not boxes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from report_helpers import authors_references, make_coding_run, make_search_run

from matbench.cli import main
from matbench.report.browser import launch, unavailable_reason

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no headless browser: {REASON}")


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    """One playwright driver and ONE chromium for the module (a launch costs seconds); a page per test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        yield pw, browser
        browser.close()


@pytest.fixture()
def open_page(playwright_driver):
    """``open_page()`` as matbench.report.browser has it: a fresh 1400x900 page, closed after use; with
    ``env``, in a browser of its own started with that environment."""
    pw, shared = playwright_driver

    @contextmanager
    def page_of(env: dict[str, str] | None = None) -> Iterator[object]:
        browser = shared if env is None else launch(pw, env)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            yield page
        finally:
            page.close()
            if browser is not shared:
                browser.close()

    return page_of


def test_leaderboard_page_renders_and_sorts(fixtures_dir, tmp_path, open_page):
    authors_references(fixtures_dir, tmp_path)
    assert main(["leaderboard", "--write", "--leaderboard-dir", str(tmp_path)]) == 0
    with open_page() as page:
        page.goto((tmp_path / "index.html").as_uri())
        names = page.locator("#leaderboard tbody tr td:first-child b")
        assert names.all_inner_texts() == ["Visual-ARFT-7B", "Visual-ARFT-3B"]
        page.locator('#leaderboard th[data-col="0"]').click()  # System, ascending
        assert names.all_inner_texts() == ["Visual-ARFT-3B", "Visual-ARFT-7B"]
        header = page.locator("#leaderboard thead tr").nth(1).locator("th")
        f1 = header.filter(has_text="F1").first  # MAT-Search F1: numeric, descending first
        f1.click()
        assert f1.get_attribute("aria-sort") == "descending"
        assert names.all_inner_texts() == ["Visual-ARFT-7B", "Visual-ARFT-3B"]
        f1.click()
        assert names.all_inner_texts() == ["Visual-ARFT-3B", "Visual-ARFT-7B"]
        assert page.locator(".chart svg").count() == 6


def test_view_report_screenshot(fixtures_dir, tmp_path, open_page):
    run = make_coding_run(fixtures_dir, tmp_path / "run", None, trajectories=True, errors=("5",))
    assert main(["view", str(run)]) == 0
    png = tmp_path / "report.png"
    with open_page() as page:
        page.goto((run / "report.html").as_uri())
        page.wait_for_selector("body[data-ready]")
        assert page.locator("#shown").inner_text() == "200"
        assert page.locator("tr.row").count() == 100  # the first page of the list
        ids = page.locator("tr.row td.id").all_inner_texts()
        assert ids[:3] == ["#1", "#2", "#3"] and ids == sorted(ids, key=lambda t: int(t[1:]))
        for row in page.locator("tr.row").all()[:20]:
            assert row.locator(".badge").count() == 1  # one status badge per sample
        page.click("#next")
        assert page.locator("tr.row").count() == 100 and page.locator("#page").inner_text() == "101–200"
        page.select_option("#f-outcome", "error")
        assert page.locator("#shown").inner_text() == "1"
        assert page.locator("tr.row .badge").all_inner_texts() == ["error"]
        page.select_option("#f-outcome", "")
        page.select_option("#f-type", "crop")
        shown = int(page.locator("#shown").inner_text())
        assert 0 < shown < 200
        page.select_option("#f-type", "")
        page.fill("#f-text", "serving size")
        assert page.locator("tr.row td.id").all_inner_texts() == ["#12"]
        page.click("tr.row")  # opens the sample: its trajectory and images, loaded from report_data/
        detail = page.locator("tr.detail .sample")
        detail.wait_for()
        assert detail.locator(".turn").count() == 3
        assert "cv2.rotate(img, cv2.ROTATE_180)" in detail.inner_text()
        thumb = detail.locator(".imgs img").first
        thumb.wait_for()
        page.wait_for_function("document.querySelector('tr.detail .imgs img').complete")
        assert thumb.evaluate("i => i.naturalWidth") > 0
        page.screenshot(path=str(png))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


@pytest.fixture(scope="module")
def large_report(tmp_path_factory) -> Path:
    run = make_search_run(tmp_path_factory.mktemp("large") / "run", 12_576)
    assert main(["view", str(run)]) == 0
    return run / "report.html"


def test_large_view_opens_and_filters_fast(large_report, open_page):
    """12,576 samples: the page is an index and opens in well under the old 17 s; bench_view.py prints the
    exact numbers (the target is 2 s to open and 300 ms to filter)."""
    assert large_report.stat().st_size < 8_000_000
    with open_page() as page:
        page.goto(large_report.as_uri())
        page.wait_for_selector("body[data-ready]")
        ready_ms = page.evaluate("window.MB_READY_MS")
        assert ready_ms < 8000, f"opened in {ready_ms:.0f} ms"
        assert page.locator("#shown").inner_text() == "12576"
        start = time.perf_counter()
        page.select_option("#f-outcome", "correct")
        shown = int(page.locator("#shown").inner_text())
        filter_ms = (time.perf_counter() - start) * 1000
        assert 3000 < shown < 7000 and filter_ms < 3000, f"filter took {filter_ms:.0f} ms"
        page.locator("tr.row").nth(5).click()
        page.locator("tr.detail .sample .turn").first.wait_for()
        assert "search" in page.locator("tr.detail").inner_text()


def _glyph_shots(page) -> list[bytes]:
    """Screenshots of single characters typeset with the page's own body font."""
    shots = []
    for ch in ("发", "票", "码"):
        page.evaluate(
            """ch => { var s = document.getElementById('glyph') || document.body.appendChild(
                   Object.assign(document.createElement('span'), {id: 'glyph'}));
                 s.style.fontSize = '40px'; s.textContent = ch; }""",
            ch,
        )
        shots.append(page.locator("#glyph").screenshot())
    return shots


def test_chinese_items_render_as_glyphs_not_boxes(fixtures_dir, tmp_path, open_page):
    run = make_coding_run(fixtures_dir, tmp_path / "run", None, trajectories=True)
    assert main(["view", str(run)]) == 0
    # the control: a fontconfig that knows only DejaVu (no CJK) draws every Chinese character as the same box
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        "<dir>/usr/share/fonts/truetype/dejavu</dir>"
        f"<cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>"
    )
    with open_page(env={"FONTCONFIG_FILE": str(conf), "HOME": str(tmp_path)}) as page:
        page.goto((run / "report.html").as_uri())
        page.wait_for_selector("body[data-ready]")
        boxes = _glyph_shots(page)
    assert boxes[0] == boxes[1] == boxes[2], "the control render should show identical boxes"

    with open_page() as page:
        page.goto((run / "report.html").as_uri() + "#s-22")
        detail = page.locator("tr.detail .sample .q")
        detail.wait_for()
        assert detail.inner_text().startswith("从图中提取: 发票号码, 发票代码")
        font = detail.evaluate("e => getComputedStyle(e).fontFamily")
        assert "Noto Sans CJK SC" in font  # named in the page's font stack
        glyphs = _glyph_shots(page)
        assert len(set(glyphs)) == 3  # three different characters, three different shapes
        assert glyphs[0] != boxes[0]
        page.goto((run / "report.html").as_uri() + "#s-71")
        page.locator('tr.detail[data-id="71"] .q').wait_for()
        page.locator('tr.detail[data-id="71"]').screenshot(path=str(tmp_path / "mat-coding-71.png"))


def test_authors_file_view_filters_without_the_missing_filters(fixtures_dir, tmp_path, open_page):
    """The authors' HotpotQA file: no split, type or tool filter on the page, and the script still filters and
    opens a sample (question, gold and prediction; no trajectory)."""
    src = fixtures_dir / "predictions" / "visual-arft" / "7b_step200_hotpotqa_web_n4.json"
    out = tmp_path / "hq.html"
    assert main(["view", str(src), "--task", "hotpotqa", "--out", str(out)]) == 0
    with open_page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready]")
        assert page.locator("#f-type, #f-split, #f-tool").count() == 0
        assert page.locator("tr.row td.id").all_inner_texts()[:11] == [f"#dev_{i}" for i in range(11)]
        page.select_option("#f-outcome", "correct")
        assert page.locator("#shown").inner_text() == "2701"
        page.fill("#f-text", "dev_0")
        page.click("tr.row")
        detail = page.locator("tr.detail .sample")
        detail.wait_for()
        assert "Scott Derrickson" in detail.inner_text() and detail.locator(".turn").count() == 0
        assert not errors, errors
