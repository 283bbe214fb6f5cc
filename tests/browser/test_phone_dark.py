"""The built HTML book on a phone and in dark mode, in headless Chromium, offline.

At a phone's width (390 x 844 CSS px) no page scrolls sideways: its document is exactly as
wide as the viewport (wide equations and tables scroll inside their own box, figures fit the
column). Every figure is readable there and at a desktop's width, light and dark: no two of its
texts overlap (titles, subplot titles, annotations, axis titles, tick labels of every axis, legend
entries, slider labels), none runs out of the figure, the title is not under plotly's mode bar,
the legend stays inside the figure, and a plotly table's columns stay in the figure and its texts
in their cells. No HTML table is clipped: it shows whole, or its box scrolls and a keyboard can
reach it. The desktop load also runs the accessibility checks of a11y.py (axe-core, text
alternatives of figures, headers of table cells). A control page made to break each rule shows
that the checks find what they are for.

Each page opens in dark mode, as after the reader chose it on an earlier page: every figure
draws dark from its first frame, with legible text and marks; toggling the theme to light, as
a reader does, redraws them light. In auto mode on a dark system the figures start dark too.

Every page is also checked offline here, on the same load as its desktop dark check: no console
error, no uncaught exception, no request leaving 127.0.0.1, every figure drawn.

Screenshots land in _build/screenshots/: <page>-phone-dark.png, <page>-phone.png (light),
<page>-desktop-dark.png and <page>.png (desktop, light). Run with `make browser` (smoke build) or
`make browser-book` (full build).
"""

import contextlib
import json
import sys

import a11y
import pandas as pd
import pytest
from conftest import REPO, open_tab
from test_book import DRAW_TIMEOUT_MS, FIGURES, load, screenshot_name, wait_figures_drawn

pytestmark = [pytest.mark.browser, pytest.mark.pages]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# On the page: WCAG luminance and contrast of any CSS colour (normalised by a canvas).
COLOR_JS = """
window.__rgb = (c) => { const x = document.createElement('canvas').getContext('2d');
    x.fillStyle = '#000'; x.fillStyle = String(c); const s = x.fillStyle;
    if (s[0] === '#') return [1, 3, 5].map(i => parseInt(s.slice(i, i + 2), 16));
    return s.match(/[\\d.]+/g).map(Number).slice(0, 3); };
window.__luminance = (c) => { const [r, g, b] = __rgb(c).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
window.__contrast = (a, b) => { const [x, y] = [__luminance(a), __luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
"""

# Every background a figure's drawing (svg.main-svg) had before its present one: plotly sets it
# in the svg's style, so the style's old values tell whether a figure was ever drawn light.
FIRST_BACKGROUNDS = """window.__svgBackgrounds = [];
new MutationObserver((records) => { for (const r of records) if (r.target.matches && r.target.matches('svg.main-svg')
    && r.oldValue) window.__svgBackgrounds.push(r.oldValue); })
    .observe(document, {subtree: true, attributes: true, attributeFilter: ['style'], attributeOldValue: true});"""

PAGE_WIDTH = """() => {
    const root = document.documentElement, vw = root.clientWidth, out = [];
    const clipped = (el) => { for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        const s = getComputedStyle(a); if (s.overflowX !== 'visible' || s.position === 'fixed') return true; }
        return false; };
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > vw + 1 && !clipped(el) && el.parentElement.getBoundingClientRect().right <= vw + 1)
            out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} `
                     + `(${Math.round(r.left)}..${Math.round(r.right)} px)`);
    }
    return {scrollWidth: root.scrollWidth, body: document.body.scrollWidth, viewport: vw, offenders: out.slice(0, 8)};
}"""

# Every figure readable: no two of its texts overlap (titles, subplot titles and annotations, axis titles,
# tick labels of every axis, legend entries, slider labels, point labels, a table's texts against the
# others), no text runs out of the figure, the title is not under the mode bar, the legend is inside, a
# table's columns stay in the figure and its texts in their cells, and the figure fits the page. A text's
# box is its glyph box (getBBox) through its transforms, so an angled tick label is the rotated rectangle
# it covers, not the upright box around it; hidden and empty texts, the hover layer and a text's own
# background are not texts here. Two boxes overlap when they share more than 3 px across every side: a glyph
# box holds about 2 px of line gap and side bearing around the ink at the book's 12-13 px fonts, so boxes
# that share less do not touch in ink (a y axis's "0" beside the x axis's first label shares 1.9 px).
READABLE = """() => {
    const box = (el) => el.getBoundingClientRect();
    const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    const corners = (t) => { const b = t.getBBox(), m = t.getScreenCTM();
        return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
            .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]); };
    const overlap = (p, q) => [p, q].every(poly => poly.every(([x0, y0], i) => {  // separating axes
        const [x1, y1] = poly[(i + 1) % 4], length = Math.hypot(x1 - x0, y1 - y0);
        if (length < 1e-6) return true;
        const along = (pts) => pts.map(([x, y]) => (x * (y0 - y1) + y * (x1 - x0)) / length);
        const a = along(p), b = along(q);
        return Math.min(Math.max(...a), Math.max(...b)) - Math.max(Math.min(...a), Math.min(...b)) > 3; }));
    const shown = (t, gd) => {
        if (!t.textContent.trim() || t.closest('.hoverlayer') || box(t).width < 1 || box(t).height < 1) return false;
        for (let e = t; e && e !== gd; e = e.parentElement) {
            const s = getComputedStyle(e);
            if (s.display === 'none' || s.visibility === 'hidden' || Number(s.opacity) < 0.05) return false;
        }
        return true;
    };
    const kind = (t) => /^[xy]\\d*tick$/.test(t.parentElement.getAttribute('class')) ? 'tick label'
        : t.matches('.gtitle') ? 'the title'
        : /^[xy]\\d*title$/.test(t.getAttribute('class') || '') ? 'axis title'
        : t.closest('g.annotation') ? 'annotation'
        : t.closest('g.legend') ? 'legend entry' : t.closest('g.slider-container') ? 'slider label'
        : t.closest('g.updatemenu-container') ? 'menu label' : t.closest('g.table') ? 'table text'
        : t.closest('g.colorbar') ? 'colour bar label' : 'text';
    const say = (t) => `${kind(t)} ${JSON.stringify(t.textContent.slice(0, 40))}`;
    return [...document.querySelectorAll('.plotly-graph-div')].map((gd, index) => {
        const problems = [], svg = box(gd.querySelector('svg.main-svg') || gd);
        const texts = [...gd.querySelectorAll('svg.main-svg text')].filter(t => shown(t, gd)).map(t => {
            const table = t.closest('g.table'), view = table && table.querySelector('rect.scroll-background');
            if (!view) return {t, box: box(t), corners: corners(t), table};
            const b = box(t), v = box(view);  // a table's text as far as its table shows it (it scrolls)
            const c = {left: Math.max(b.left, v.left), right: Math.min(b.right, v.right),
                       top: Math.max(b.top, v.top), bottom: Math.min(b.bottom, v.bottom)};
            return c.right - c.left < 1 || c.bottom - c.top < 1 ? null : {t, box: c, table, corners:
                [[c.left, c.top], [c.right, c.top], [c.right, c.bottom], [c.left, c.bottom]]};
        }).filter(Boolean);
        for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
            const a = texts[i], b = texts[j];
            if (a.table && a.table === b.table) continue;  // a table's own texts: the cell checks below
            if (meet(a.box, b.box) && overlap(a.corners, b.corners))
                problems.push(`${say(a.t)} and ${say(b.t)} overlap`);
        }
        for (const {t, corners: c, table} of texts) {
            const xs = c.map(p => p[0]), ys = c.map(p => p[1]);
            if (!table && (Math.min(...xs) < svg.left - 1 || Math.max(...xs) > svg.right + 1
                           || Math.min(...ys) < svg.top - 1 || Math.max(...ys) > svg.bottom + 1))
                problems.push(`${say(t)} runs out of the figure`);
        }
        const title = gd.querySelector('g.g-gtitle text.gtitle'), modebar = gd.querySelector('.modebar');
        if (title && box(title).width > 0 && modebar && box(modebar).width > 0 && meet(box(title), box(modebar)))
            problems.push('the title lies under the mode bar');
        const legend = gd.querySelector('g.legend');
        if (legend && box(legend).width > 0) {
            const l = box(legend);
            if (l.left < svg.left - 1 || l.right > svg.right + 1 || l.bottom > svg.bottom + 1 || l.top < svg.top - 1)
                problems.push('the legend sticks out of the figure');
        }
        for (const column of gd.querySelectorAll('g.table g.y-column')) {
            const header = column.querySelector('#header text.cell-text'), name = JSON.stringify(
                header ? header.textContent.slice(0, 40) : '');
            const cells = [...column.querySelectorAll('g.column-cell')]
                .map(cell => [cell.querySelector('rect.cell-rect'), cell.querySelector('text.cell-text')])
                .filter(([rect]) => rect && box(rect).width > 0);
            if (cells.some(([rect]) => box(rect).right > svg.right + 1 || box(rect).left < svg.left - 1))
                problems.push(`table column ${name} runs out of the figure`);
            for (const [rect, text] of cells) {
                if (!text || !shown(text, gd)) continue;
                const r = box(rect), t = box(text);
                if (t.left < r.left - 1 || t.right > r.right + 1 || t.top < r.top - 1 || t.bottom > r.bottom + 1)
                    problems.push(`table text runs out of its cell: ${JSON.stringify(text.textContent.slice(0, 40))}`);
            }
        }
        if (svg.right > document.documentElement.clientWidth + 1)
            problems.push(`the figure is ${Math.round(svg.width)} px wide`);
        const named = gd.querySelector('text.gtitle') || {textContent: gd.getAttribute('aria-label') || ''};
        return {index, name: named.textContent.slice(0, 50), problems: [...new Set(problems)]};
    }).filter(f => f.problems.length);
}"""

# No HTML table of the article is clipped: walking out from the table, a box that hides what overflows it
# (overflow hidden or clip) must hold what it holds whole, a box that scrolls (auto or scroll) lets the reader
# reach its content, so from there on only the box itself must show, and a keyboard must be able to scroll it
# (it takes focus, or holds something that does); in the end nothing may lie past the page's left or right
# edge. A table in a closed dropdown is measured with the dropdown opened for the while, as a reader opens
# it; plotly's tables are READABLE's.
TABLES = """() => {
    const problems = [], vw = document.documentElement.clientWidth;
    const closed = [...document.querySelectorAll('.bd-article details:not([open])')]
        .filter(d => d.querySelector('table'));
    closed.forEach(d => { d.open = true; });
    const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + [...el.classList].map(c => '.' + c).join('');
    const focusable = (el) => el.tabIndex >= 0
        || el.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])');
    document.querySelectorAll('.bd-article table').forEach((table, index) => {
        let shown = table.getBoundingClientRect();
        if (shown.width < 1 || shown.height < 1 || !table.checkVisibility()) return;
        const first = ([...table.querySelectorAll('th, td')].map(c => c.textContent.trim()).find(Boolean) || '')
            .slice(0, 30);
        const where = `table #${index} (${JSON.stringify(first)})`;
        for (let box = table.parentElement; box && box !== document.body; box = box.parentElement) {
            const s = getComputedStyle(box), r = box.getBoundingClientRect();
            const inner = {left: r.left + box.clientLeft, top: r.top + box.clientTop};
            Object.assign(inner, {right: inner.left + box.clientWidth, bottom: inner.top + box.clientHeight});
            const scrolls = [s.overflowX, s.overflowY].some(o => o === 'auto' || o === 'scroll');
            const hides = {x: s.overflowX === 'hidden' || s.overflowX === 'clip',
                           y: s.overflowY === 'hidden' || s.overflowY === 'clip'};
            if ((hides.x && (shown.left < inner.left - 1 || shown.right > inner.right + 1))
                || (hides.y && (shown.top < inner.top - 1 || shown.bottom > inner.bottom + 1))) {
                problems.push(`${where} is cut by ${name(box)} (overflow ${s.overflowX} ${s.overflowY})`);
                return;
            }
            if (scrolls && (box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1)) {
                if (!focusable(box)) problems.push(`${where} scrolls in ${name(box)}, which no keyboard can reach`);
                shown = r;
            }
        }
        if (shown.left < -1 || shown.right > vw + 1)
            problems.push(`${where} is cut by the page's edge (${Math.round(shown.left)}..${Math.round(shown.right)} `
                          + `px of ${vw})`);
    });
    closed.forEach(d => { d.open = false; });
    return problems;
}"""

THEME_STATE = """() => [...document.querySelectorAll('.plotly-graph-div')].map((gd, index) => {
    const full = gd._fullLayout || {}, svg = gd.querySelector('svg.main-svg'), marks = new Set();
    for (const t of gd._fullData || []) {
        if (t.visible !== true || t.type === 'table') continue;
        for (const c of [t.line && t.line.color, ...[].concat(t.marker && t.marker.color)])
            if (typeof c === 'string') marks.add(c);
    }
    return {index, paper: full.paper_bgcolor, font: full.font && full.font.color,
            svg: svg ? getComputedStyle(svg).backgroundColor : null,
            paperLuminance: full.paper_bgcolor ? __luminance(full.paper_bgcolor) : null,
            textContrast: full.font ? __contrast(full.font.color, full.paper_bgcolor) : 0,
            dim: [...marks].filter(c => __contrast(c, full.paper_bgcolor) < 2)};
})"""

ALL_FIGURES_IN = """(theme) => [...document.querySelectorAll('.plotly-graph-div')].every(gd =>
    gd._fullLayout && (__luminance(gd._fullLayout.paper_bgcolor) < 0.2) === (theme === 'dark'))"""


def switch_theme(page, theme: str) -> None:
    """Click the header's light/dark button, as a reader would, until the page is in `theme`
    (the button cycles through auto, light and dark), then let every figure redraw."""
    for _ in range(4):
        if page.evaluate("() => document.documentElement.dataset.theme") == theme:
            break
        page.locator(".theme-switch-button:visible").first.click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == theme, f"no click turned the page {theme}"
    page.wait_for_function(ALL_FIGURES_IN, arg=theme, timeout=DRAW_TIMEOUT_MS)
    page.wait_for_timeout(300)  # the tick-label tidy after the redraw


def width_problems(page) -> list[str]:
    w = page.evaluate(PAGE_WIDTH)
    if w["scrollWidth"] == w["viewport"] and w["body"] <= w["viewport"]:
        return []
    return [f"the page is {w['scrollWidth']} px wide (body {w['body']}) at a {w['viewport']}-px viewport: it "
            f"scrolls sideways; widest elements: {', '.join(w['offenders']) or 'none found'}"]


def dark_problems(page) -> list[str]:
    out = []
    for f in page.evaluate(THEME_STATE):
        where = f"figure #{f['index']}"
        if f["paperLuminance"] is None or f["paperLuminance"] >= 0.05:
            out.append(f"{where}: background {f['paper']} is not dark")
        if f["svg"] is None or "255, 255, 255" in f["svg"]:
            out.append(f"{where}: the drawn figure's background is {f['svg']}")
        if f["textContrast"] < 4.5:
            out.append(f"{where}: text {f['font']} on {f['paper']} is hard to read (contrast {f['textContrast']:.1f})")
        if f["dim"]:
            out.append(f"{where}: marks in {f['dim']} hardly show on {f['paper']} (contrast under 2)")
    light = [s for s in page.evaluate("() => window.__svgBackgrounds") if "255, 255, 255" in s]
    if light:
        out.append(f"{len(light)} figure(s) were drawn light first, then redrawn dark")
    return out


def readable(page) -> list[str]:
    """What makes a figure or a table hard to read: texts that overlap or are cut, tables clipped."""
    return [f"figure #{f['index']} ({json.dumps(f['name'], ensure_ascii=False)}): {p}" for f in page.evaluate(READABLE)
            for p in f["problems"]] + page.evaluate(TABLES)


@pytest.fixture(scope="session")
def axe(book_root, book_server) -> str | None:
    """axe-core's URL in the served book; None where the build had no npm (a failure under CI=true)."""
    return a11y.axe_url(book_root, book_server)


@contextlib.contextmanager
def opened(browser, book_server, page_path: str, mode: str, system: str, viewport: dict):
    """A tab on the page in `mode` (light, dark or auto) on a system that prefers `system`, once its
    figures have drawn, and the figures that did not. The theme remembered from the last visit is
    the mode's own, or in auto mode the system's opposite."""
    remembered = mode if mode != "auto" else ("light" if system == "dark" else "dark")
    with open_tab(browser, **viewport, color_scheme=system) as tab:
        for script in (COLOR_JS, FIRST_BACKGROUNDS,
                       f"localStorage.setItem('mode', '{mode}'); localStorage.setItem('theme', '{remembered}');"):
            tab.page.add_init_script(script)
        load(tab, book_server + page_path)
        figures = wait_figures_drawn(tab.page)
        tab.page.wait_for_timeout(300)  # the tick-label tidy after the first drawing
        yield tab, [f"figure #{f['index']} has not drawn" for f in figures if not f["drawn"]]


def fail_if(problems: list[str], where: str) -> None:
    if problems:
        pytest.fail(f"{where}: {len(problems)} problem(s):\n  " + "\n  ".join(problems), pytrace=False)


def test_page_on_a_phone_in_dark_and_light(browser, book_server, book_page, screenshots):
    """At 390 x 844, opened in dark mode: every figure is drawn dark from its first frame, the page
    does not scroll sideways, its figures are readable and no table is clipped; after toggling to
    light, the same."""
    with opened(browser, book_server, book_page, "dark", "light", PHONE) as (tab, problems):
        page = tab.page
        problems += [f"dark: {p}" for p in dark_problems(page) + width_problems(page) + readable(page)]
        page.screenshot(path=str(screenshots / screenshot_name(book_page, "-phone-dark")), full_page=True)
        switch_theme(page, "light")
        problems += [f"light: {p}" for p in width_problems(page) + readable(page)]
        problems += [f"light: figure #{f['index']}: background {f['paper']} is not light"
                     for f in page.evaluate(THEME_STATE) if f["paperLuminance"] < 0.8]
        page.screenshot(path=str(screenshots / screenshot_name(book_page, "-phone")), full_page=True)
        problems += tab.problems()
    fail_if(problems, f"{book_page} at {PHONE['width']} px")


def test_page_works_offline_on_a_desktop_in_dark_and_light(browser, book_server, book_page, slider_pages,
                                                          screenshots, axe):
    """One load per page at a desktop's width, in dark mode: no console error, no uncaught exception, no
    request to anything but 127.0.0.1, every figure drawn, and drawn dark with legible text and marks,
    readable, every figure with a text alternative, every table cell with a header, no table clipped and
    no serious or critical axe-core violation but the theme's that a11y.py's docstring lists, with why
    each stays; after toggling to light, every
    figure light and readable, no table clipped, no colour violation and still no error. (One load serves
    the offline check and the dark one: a page's errors and blocked requests do not depend on its theme,
    and the toggle draws every figure light too.) Without axe-core in the build, the other checks run
    and the test then skips, saying so."""
    with opened(browser, book_server, book_page, "dark", "light", DESKTOP) as (tab, problems):
        page = tab.page
        figures = page.evaluate(FIGURES)
        if any(f["slider"] for f in figures) and book_page not in slider_pages:
            problems.append("a plotly slider is on the page but conftest's has_plotly_slider() missed it, so "
                            "test_slider_click_changes_figure does not check it")
        problems += [f"dark: {p}" for p in dark_problems(page) + readable(page)]
        problems += a11y.alternatives(page) + a11y.headers(page)
        page.screenshot(path=str(screenshots / screenshot_name(book_page, "-desktop-dark")), full_page=True)
        problems += [f"dark: axe: {p}" for p in (a11y.audit(page, axe) if axe else [])]
        switch_theme(page, "light")
        problems += [f"light: {p}" for p in readable(page)]
        problems += [f"light: figure #{f['index']}: background {f['paper']} is not light"
                     for f in page.evaluate(THEME_STATE) if f["paperLuminance"] < 0.8]
        page.screenshot(path=str(screenshots / screenshot_name(book_page)), full_page=True)
        problems += [f"light: axe: {p}" for p in (a11y.audit(page, axe, colours_only=True) if axe else [])]
        problems += tab.problems()
    fail_if(problems, f"{book_page} at {DESKTOP['width']} px")
    if axe is None:
        pytest.skip(a11y.NO_AXE)


# The control: a page with a figure whose texts overlap and run out, one that is fine (angled tick labels, a
# legend, an annotation on its own background), a plotly table whose text runs out of its cell, tables cut,
# scrolled with and without keyboard access, in a closed dropdown, a pandas table as pandas writes it and as
# the book mends it, a table without headers, an image without alt text and an element the theme's list excuses.
CONTROL_FIGURES = """() => {
    const common = {width: 600, height: 400, margin: {l: 80, r: 80, t: 60, b: 80}};
    return Promise.all([
        Plotly.newPlot('bad', [{x: [1, 2, 3], y: [1, 3, 2]}], Object.assign({}, common, {
            title: {text: 'A title in the middle', y: 0.5, yref: 'paper', yanchor: 'middle'},
            annotations: [{text: 'An annotation on the title', x: 0.5, y: 0.5, xref: 'paper', yref: 'paper',
                           showarrow: false},
                          {text: 'an annotation past the edge', x: 1.4, y: 0.1, xref: 'paper', yref: 'paper',
                           showarrow: false}]})),
        Plotly.newPlot('good', [{x: ['alpha', 'beta', 'gamma', 'delta', 'epsilon'], y: [3, 1, 2, 5, 4], name: 'one'},
                                {x: ['alpha', 'beta', 'gamma', 'delta', 'epsilon'], y: [2, 2, 3, 1, 1], name: 'two'}],
            Object.assign({}, common, {title: {text: 'A figure that reads well', x: 0.02, xanchor: 'left'},
                xaxis: {tickangle: -45, title: {text: 'the x axis'}}, yaxis: {title: {text: 'the y axis'}},
                annotations: [{text: 'boxed', x: 'gamma', y: 2, showarrow: false, bgcolor: '#eeeeee',
                               bordercolor: '#333333', borderwidth: 1}]})),
        Plotly.newPlot('table', [{type: 'table', columnwidth: [1, 6], header: {values: ['narrow', 'wide']},
            cells: {values: [['averyveryverylongwordthatcannotwrap'], ['fits']]}}], common)]);
}"""


def control_page(base: str) -> str:
    pandas = pd.DataFrame({"raw": [1, 2]}, index=pd.Index([1, 2], name="k")).to_html()
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from accessible_html import mend  # the book's own extension (book/_ext/accessible_html.py)

    wide = '<td style="white-space: nowrap">' + " ".join(["wide"] * 60) + "</td>"
    return f"""<!DOCTYPE html><html lang="en"><head><title>control</title>
        <script src="{base}_static/plotly.min.js"></script></head><body><main><article class="bd-article">
        <h1>Control</h1>
        <div id="bad" class="plotly-graph-div"></div>
        <figure><div id="good" class="plotly-graph-div"></div><figcaption>It reads well.</figcaption></figure>
        <div id="table" class="plotly-graph-div"></div>
        <div style="width: 200px; overflow: hidden"><table><tr><th>cut</th>{wide}</tr></table></div>
        <div style="width: 200px; overflow-x: auto"><table><tr><th>unreachable</th>{wide}</tr></table></div>
        <div style="width: 200px; overflow-x: auto" tabindex="0"><table><tr><th>reachable</th>{wide}</tr></table></div>
        <details><summary>More</summary><div style="width: 200px; overflow: hidden">
            <table><tr><th>dropdown</th>{wide}</tr></table></div></details>
        {pandas}{mend(pandas.replace("raw", "mended"))}
        <table><tr><td>bare</td><td>cells</td></tr></table>
        <img src="{base}_static/file.png">
        <button class="theme-switch-button" aria-label="Color mode">Light</button>
        </article></main></body></html>"""


def test_the_checks_catch_what_they_are_for(browser, book_server, axe):
    """The figure, table and accessibility checks each find what they are for on a page made to have it, and
    pass what is fine: a check that cannot fail would let every page through."""
    with open_tab(browser, **DESKTOP) as tab:
        page = tab.page
        page.set_content(control_page(book_server), wait_until="load")
        page.evaluate(CONTROL_FIGURES)
        found = readable(page) + a11y.alternatives(page) + a11y.headers(page)
        expected = [
            'figure #0 ("A title in the middle"): the title "A title in the middle" and annotation "An annotation ',
            'figure #0 ("A title in the middle"): annotation "an annotation past the edge" runs out of the figure',
            'figure #2 (""): table text runs out of its cell: "averyveryverylongwordthatcannotwrap"',
            'table #0 ("cut") is cut by div', 'table #1 ("unreachable") scrolls in div, which no keyboard',
            'table #3 ("dropdown") is cut by div', 'figure #0 ("A title in the middle") has no text alternative',
            'figure #2 ("") has no text alternative', 'table #4 ("raw"): 2 empty header cell(s)',
            'table #6 ("bare"): 2 data cell(s) without a header', f"image {book_server}_static/file.png has no alt"]
        missed = [e for e in expected if not any(line.startswith(e) for line in found)]
        wrong = [line for line in found if not any(line.startswith(e) for e in expected)]
        assert not missed and not wrong, f"the checks missed {missed} and found what is fine: {wrong}"
        assert not tab.problems(), tab.problems()
        if axe is None:
            pytest.skip(a11y.NO_AXE)
        everything = "\n".join(a11y.audit(page, axe, chrome=()))
        assert "image-alt" in everything and "label-content-name-mismatch" in everything, everything
        excused = "\n".join(a11y.audit(page, axe))
        assert "image-alt" in excused and "label-content-name-mismatch" not in excused, excused


def test_figures_follow_the_system_in_auto_mode(browser, book_server, slider_pages):
    """In auto mode on a dark system the figures start dark, even where the theme remembered from
    the last visit is light. One page with a slider twin suffices."""
    assert slider_pages, "no page of the book has a plotly figure with a slider"
    with opened(browser, book_server, slider_pages[0], "auto", "dark", PHONE) as (tab, problems):
        problems += dark_problems(tab.page) + tab.problems()
    fail_if(problems, f"{slider_pages[0]} in auto mode")


def test_a_slider_keeps_its_step_when_the_theme_changes(browser, book_server, slider_pages):
    """A figure redrawn for the other theme shows the slider's step the reader chose, not the first."""
    assert slider_pages, "no page of the book has a plotly figure with a slider"
    with opened(browser, book_server, slider_pages[0], "light", "light", DESKTOP) as (tab, problems):
        page = tab.page
        gd = page.locator(".plotly-graph-div").filter(has=page.locator("g.slider-container")).first
        gd.evaluate("gd => Plotly.relayout(gd, {'sliders[0].active': 0}).then(() => "
                    "Plotly.restyle(gd, {visible: gd.layout.sliders[0].steps[0].args[0].visible}))")
        before = gd.evaluate("gd => JSON.stringify([gd.data.map(t => t.visible), gd.layout.sliders[0].active])")
        switch_theme(page, "dark")
        after = gd.evaluate("gd => JSON.stringify([gd.data.map(t => t.visible), gd.layout.sliders[0].active])")
        if after != before:
            problems.append(f"the slider's step and visible traces were {before}, after the switch {after}")
        problems += tab.problems()
    fail_if(problems, f"{slider_pages[0]}, theme toggled")
