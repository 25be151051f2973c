"""The HTML report in a real browser: Debian's headless Chromium loads the file (file:// only, no
network), renders it without a console error or exception, runs no script even for a workload
named `<script>`, requests nothing else, and the screenshot is a non-blank PNG of the viewport.

Chromium must be installed (/usr/bin/chromium): without it this test fails, saying so."""

from __future__ import annotations

from pathlib import Path

from tests.support.chromium import png_distinct_bytes, png_size, render_page
from tests.unit.test_report import HOSTILE, hostile_report

from aigis.oversight.report import render_html

WIDTH, HEIGHT = 1280, 900
QUERIES = {
    "scripts": "document.scripts.length",
    "elements": "document.getElementsByTagName('*').length",
    "title": "document.title",
    "hostile_shown": f"document.body.innerText.includes({HOSTILE!r})",
    "rows": "document.querySelectorAll('tbody tr').length",
    "board_bottom": "document.querySelector('section.board').getBoundingClientRect().bottom",
    "pillars": "document.querySelectorAll('section.board .pillar').length",
}


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(hostile_report()), encoding="utf-8")

    seen = render_page(page, tmp_path / "profile", width=WIDTH, height=HEIGHT, queries=QUERIES)

    assert seen.errors == []
    assert seen.requests == [page.resolve().as_uri()]
    assert seen.facts["scripts"] == 0
    assert seen.facts["hostile_shown"] is True
    assert seen.facts["title"] == "aigis compliance report"
    assert seen.facts["rows"] > 10
    assert seen.facts["pillars"] == 3
    assert seen.facts["board_bottom"] <= HEIGHT  # the board view is the first screen
    assert png_size(seen.screenshot) == (WIDTH, HEIGHT)
    assert png_distinct_bytes(seen.screenshot) > 64  # not a blank page
