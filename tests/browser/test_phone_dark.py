"""The built HTML book on a phone and in dark mode, in headless Chromium, offline.

At a phone's width (390 x 844 CSS px) no page scrolls sideways: its document is exactly as
wide as the viewport (wide equations and tables scroll inside their own box, figures fit the
column). Every figure is readable there: no two tick labels of an axis overlap, the title is
neither cut off nor under plotly's mode bar, the legend stays inside the figure, and a table's
text stays inside its cells.

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

import pytest
from conftest import open_tab
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

READABLE = """() => {
    const box = (el) => el.getBoundingClientRect();
    const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    return [...document.querySelectorAll('.plotly-graph-div')].map((gd, index) => {
        const problems = [], svg = box(gd.querySelector('svg.main-svg') || gd);
        for (const layer of gd.querySelectorAll('g.xaxislayer-above, g.yaxislayer-above')) {
            const labels = [...layer.querySelectorAll('g.xtick > text, g.ytick > text')]  // angled: plotly spaces them
                .filter(t => box(t).width > 0 && !/rotate\\((?!0[ ,)])/.test(t.getAttribute('transform') || ''));
            for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++)
                if (meet(box(labels[i]), box(labels[j])))
                    problems.push(`tick labels ${JSON.stringify(labels[i].textContent)} and `
                                  + `${JSON.stringify(labels[j].textContent)} overlap`);
        }
        const title = gd.querySelector('g.g-gtitle text.gtitle'), modebar = gd.querySelector('.modebar');
        if (title && box(title).width > 0) {
            const t = box(title);
            if (t.left < svg.left - 1 || t.right > svg.right + 1) problems.push('the title is cut off at the side');
            if (modebar && box(modebar).width > 0 && meet(t, box(modebar)))
                problems.push('the title lies under the mode bar');
        }
        const legend = gd.querySelector('g.legend');
        if (legend && box(legend).width > 0) {
            const l = box(legend);
            if (l.left < svg.left - 1 || l.right > svg.right + 1 || l.bottom > svg.bottom + 1 || l.top < svg.top - 1)
                problems.push('the legend sticks out of the figure');
        }
        for (const cell of gd.querySelectorAll('g.table g.column-cell')) {
            const rect = cell.querySelector('rect.cell-rect'), text = cell.querySelector('text.cell-text');
            if (rect && text && box(text).width > 0 && box(text).right > box(rect).right + 1)
                problems.push(`table text runs out of its cell: ${JSON.stringify(text.textContent.slice(0, 40))}`);
        }
        if (svg.right > document.documentElement.clientWidth + 1)
            problems.push(`the figure is ${Math.round(svg.width)} px wide`);
        return {index, problems: [...new Set(problems)]};
    }).filter(f => f.problems.length);
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
    return [f"figure #{f['index']}: {p}" for f in page.evaluate(READABLE) for p in f["problems"]]


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
    does not scroll sideways and its figures are readable; after toggling to light, the same."""
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
                                                          screenshots):
    """One load per page at a desktop's width, in dark mode: no console error, no uncaught exception, no
    request to anything but 127.0.0.1, every figure drawn, and drawn dark with legible text and marks;
    after toggling to light, every figure light and still no error. (One load serves the offline
    check and the dark one: a page's errors and blocked requests do not depend on its theme, and the
    toggle draws every figure light too.)"""
    with opened(browser, book_server, book_page, "dark", "light", DESKTOP) as (tab, problems):
        page = tab.page
        figures = page.evaluate(FIGURES)
        if any(f["slider"] for f in figures) and book_page not in slider_pages:
            problems.append("a plotly slider is on the page but conftest's has_plotly_slider() missed it, so "
                            "test_slider_click_changes_figure does not check it")
        problems += [f"dark: {p}" for p in dark_problems(page) + readable(page)]
        page.screenshot(path=str(screenshots / screenshot_name(book_page, "-desktop-dark")), full_page=True)
        switch_theme(page, "light")
        problems += [f"light: figure #{f['index']}: background {f['paper']} is not light"
                     for f in page.evaluate(THEME_STATE) if f["paperLuminance"] < 0.8]
        page.screenshot(path=str(screenshots / screenshot_name(book_page)), full_page=True)
        problems += tab.problems()
    fail_if(problems, f"{book_page} at {DESKTOP['width']} px")


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
