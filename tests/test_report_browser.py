"""Browser checks with playwright driving /usr/bin/chromium: the leaderboard page renders and sorts on a header
click; a 200-sample MAT-Coding report opens, filters, and screenshots to a PNG."""

from __future__ import annotations

import pytest
from report_helpers import PRED, make_coding_run

from matbench.cli import main
from matbench.report.browser import open_page, unavailable_reason

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no headless browser: {REASON}")


def test_leaderboard_page_renders_and_sorts(fixtures_dir, tmp_path):
    assert (
        main(["submit", "--authors-references", str(fixtures_dir / PRED), "--leaderboard-dir", str(tmp_path)])
        == 0
    )
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


def test_view_report_screenshot(fixtures_dir, tmp_path):
    run = make_coding_run(fixtures_dir, tmp_path / "run", None, trajectories=True, errors=("5",))
    assert main(["view", str(run)]) == 0
    png = tmp_path / "report.png"
    with open_page() as page:
        page.goto((run / "report.html").as_uri())
        assert page.locator("section.sample").count() == 200
        page.select_option("#f-outcome", "error")
        assert page.locator("#shown").inner_text() == "1"
        page.select_option("#f-outcome", "")
        page.select_option("#f-type", "crop")
        shown = int(page.locator("#shown").inner_text())
        assert 0 < shown < 200
        page.screenshot(path=str(png))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
