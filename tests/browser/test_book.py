"""The built HTML book in headless Chromium, offline: a plotly slider moved by a mouse click changes
what the figure shows, and every notebook page links to its notebook on Colab. (That every page
loads offline with no JS error and every figure draws is checked with its desktop dark and light
views, on one load, in test_phone_dark.py.)

Run with `make browser` (smoke build) or `make browser-book` (the full build in _build/html).
Full-page screenshots land in _build/screenshots/.
"""

import json
import os
import re
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.pages]

REPO = Path(__file__).resolve().parents[2]
COLAB = "https://colab.research.google.com/github/"
DRAW_TIMEOUT_MS = 20_000

FIGURES = """() => [...document.querySelectorAll('.plotly-graph-div')].map((gd, i) => ({
    index: i, id: gd.id, drawn: !!gd.querySelector('svg.main-svg'),
    slider: !!gd.querySelector('g.slider-container .slider-group')}))"""

FIGURE_STATE = """(gd) => ({
    visible: (gd.data || []).map(t => t.visible === undefined ? true : t.visible),
    legend: [...gd.querySelectorAll('g.legend text.legendtext')].map(t => t.textContent),
    traces: gd.querySelectorAll('g.trace').length,
    drawn: [...gd.querySelectorAll('g.scatterlayer path.js-line, g.barlayer path, g.table text')]
        .map(p => p.getAttribute('d') || p.textContent),
    current: (gd.querySelector('g.slider-group > text.slider-label') || {}).textContent || null})"""


def load(tab, url: str) -> None:
    """Open a page and wait until it has loaded and the network is quiet. Playwright's
    network idle can come before `load` (the parser is still busy running plotly.min.js),
    so both are awaited."""
    tab.page.goto(url, wait_until="networkidle", timeout=60_000)
    tab.page.wait_for_load_state("load", timeout=60_000)


def wait_figures_drawn(page) -> list[dict]:
    """The page's plotly figures, once every one has drawn (or after DRAW_TIMEOUT_MS)."""
    try:
        page.wait_for_function("""() => [...document.querySelectorAll('.plotly-graph-div')]
                                      .every(gd => gd.querySelector('svg.main-svg'))""", timeout=DRAW_TIMEOUT_MS)
    except Exception:  # noqa: BLE001 - the assertion below says which figure did not draw
        pass
    return page.evaluate(FIGURES)


def screenshot_name(page_path: str, suffix: str = "") -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", page_path.removesuffix(".html").replace("/", "-")) + suffix + ".png"


def test_slider_click_changes_figure(tab, book_server, slider_page, screenshots):
    """Click another step of each plotly slider, as a person would; the visible traces must change."""
    assert slider_page is not None, "no page of the book has a plotly figure with a slider (chapter 1 has one)"
    book_page = slider_page
    load(tab, book_server + book_page)
    page = tab.page
    figures = [f for f in wait_figures_drawn(page) if f["slider"]]
    assert figures, f"{book_page}: its HTML has a plotly figure with a slider, but no slider has drawn"
    tab.clear()  # what went wrong while loading is the desktop check's to report (test_phone_dark.py); here,
    # what the clicks cause
    for fig in figures:
        gd = page.locator(".plotly-graph-div").nth(fig["index"])
        gd.scroll_into_view_if_needed()
        before = gd.evaluate(FIGURE_STATE)
        labels = gd.locator("g.slider-labels text.slider-label")
        n_steps = labels.count()
        assert n_steps >= 2, f"{book_page}: figure #{fig['index']}'s slider has {n_steps} step label(s)"
        # the active step is the one whose label the slider's "current value" shows; aim at another
        current = (before["current"] or "").split("=")[-1].strip()
        texts = labels.all_text_contents()
        target = n_steps - 1 if texts[-1].strip() != current else 0
        rail = gd.locator("rect.slider-rail-rect").first
        rail.scroll_into_view_if_needed()  # a tall figure's slider may lie below the screen: scroll to it
        label_box = labels.nth(target).bounding_box()
        rail_box = rail.bounding_box()
        assert label_box and rail_box, f"{book_page}: figure #{fig['index']}'s slider is not on screen"
        # the rail's touch area lies over the labels: press on the rail, above the target step's label
        page.mouse.click(label_box["x"] + label_box["width"] / 2, rail_box["y"] + rail_box["height"] / 2)
        try:
            page.wait_for_function(
                "([gd, before]) => JSON.stringify((gd.data || []).map(t => t.visible === undefined ? true"
                " : t.visible)) !== JSON.stringify(before)",
                arg=[gd.element_handle(), before["visible"]], timeout=10_000)
        except Exception:  # noqa: BLE001 - the assertion below reports the states
            pass
        page.wait_for_timeout(300)  # let plotly finish redrawing the legend
        after = gd.evaluate(FIGURE_STATE)
        gd.screenshot(path=str(screenshots / screenshot_name(book_page, f"-slider{fig['index']}")))
        assert after["visible"] != before["visible"], (
            f"{book_page}: clicking slider step {texts[target]!r} of figure #{fig['index']} did not change the "
            f"visible traces: {before['visible']} (legend {before['legend']}); now {after}")
        assert after["current"] != before["current"] and texts[target].strip() in (after["current"] or ""), (
            f"{book_page}: the slider's current value did not move to {texts[target]!r}: "
            f"{before['current']!r} -> {after['current']!r}")
        # what the reader sees must change: the lines drawn (a slider over a step t keeps the same legend)
        assert after["drawn"] != before["drawn"], (
            f"{book_page}: what is drawn did not change with the slider (legend {before['legend']})")
    problems = tab.problems()
    if problems:
        pytest.fail(f"{book_page}: errors while using the slider:\n  " + "\n  ".join(problems), pytrace=False)


class Links(HTMLParser):
    """Every <a href> of a page's HTML, as the server sends it."""

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.hrefs = []
        parser.feed(html)
        return parser.hrefs

    def handle_starttag(self, tag, attrs):
        if tag == "a" and (href := dict(attrs).get("href")):
            self.hrefs.append(href)


def test_notebook_page_links_to_colab(book_server, notebook_page):
    """A page made from a notebook has a Colab launch link to that notebook at the commit the book
    was built from (book/_ext/pin_commit.py), and the notebook it serves for download installs lmlab
    at that commit. The link sits in the header's launch dropdown, in the page's HTML as served (the
    theme writes it there; no script adds it), so it is read from that HTML, not clicked."""
    assert notebook_page is not None, "no page of the book is made from a notebook (_sources/**/*.ipynb)"
    repo_url = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    repo = repo_url.removeprefix("https://github.com/")
    notebook = notebook_page.removesuffix(".html") + ".ipynb"  # the book's root is the repository's
    served = json.loads(urllib.request.urlopen(f"{book_server}_sources/{notebook}").read())
    first = "".join(next(c for c in served["cells"] if c["cell_type"] == "code")["source"])
    ref = re.search(r'^    LMLAB_REF = "([^"]+)"', first, re.M)
    assert ref, f"the downloadable {notebook} does not pin LMLAB_REF:\n{first}"
    built_from = os.environ.get("LMLAB_BOOK_REF") or subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    assert ref[1] == built_from, f"the download pins {ref[1]}, the book was built from {built_from}"
    expected = f"{COLAB}{repo}/blob/{built_from}/{notebook}"
    hrefs = Links.of(urllib.request.urlopen(book_server + notebook_page).read().decode())
    colab = [h for h in hrefs if h.startswith(COLAB)]
    assert colab, f"{notebook_page}: no Colab launch link (no <a href> starting with {COLAB})"
    assert expected in colab, f"{notebook_page}: Colab link(s) {colab} are not {expected}"


def test_the_root_sends_readers_to_the_intro(book_root):
    """The root index.html is a redirect, left out of the page checks (conftest.is_redirect): it must
    lead to a page of the book that exists."""
    html = (book_root / "index.html").read_text(encoding="utf-8")
    target = re.search(r"""url=([^"'\s>]+)""", html, re.IGNORECASE)
    assert target, f"index.html is not a redirect: {html[:200]!r}"
    assert (book_root / target[1]).is_file(), f"index.html sends readers to {target[1]}, which is not built"
