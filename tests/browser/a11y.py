"""Accessibility checks of a page already open in the browser (test_phone_dark.py runs them on its
desktop load, in dark mode and after the toggle to light): axe-core's audit, and two checks of our own
that axe makes only in part.

- axe-core (the npm package that package.json pins; make copies its axe.min.js into the book's
  assets, so it is served from `_static/axe/`) runs the WCAG 2.1 A and AA rules and its best
  practices; a serious or critical violation fails, unless it is one of THEME_CHROME below. In dark
  mode every rule runs; after the toggle to light only the rules that depend on colours, since
  nothing else changes with the theme. A book built without npm has no axe: the audit is then
  skipped with a notice (a failure under CI=true), as the checks skip without Chromium.
- Every figure has a text alternative: a plotly chart is named (its own aria-label, as a figure) or
  lies in a <figure> whose caption names it; every image has its alt text.
- Every data cell of a table has a header (a <th> with words, in its row or its column), and no
  header cell is empty.

THEME_CHROME, the violations that stay, all in pydata-sphinx-theme's own markup around the book's
content (its header and its left sidebar), the same on every page:

- label-content-name-mismatch on the search buttons (`.search-button__button`): named "Search",
  they also show a magnifying-glass icon and the keyboard shortcut (Ctrl+K); the name is the word
  they show first, the one a speech user says.
- label-content-name-mismatch on the colour-mode button (`.theme-switch-button`): named "Color
  mode", it shows only an icon (a sun, a moon or a half circle), a character of an icon font that
  axe takes for visible text.
- summary-name on the sidebar's expand buttons (`ul.bd-sidenav summary`): a chevron icon that opens
  a chapter's list of pages; the chapter's link just before it carries the words.

Mending them means overriding the theme's templates, which a theme upgrade would silently undo.
"""

import os
from pathlib import Path

import pytest

AXE = Path("_static") / "axe" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
FAILING = ("serious", "critical")
NO_AXE = ("axe-core is not in the built book (_static/axe/axe.min.js), so its accessibility audit was skipped "
          "(the test's other checks passed): make fetches it with npm, with the other npm assets; "
          "run make smoke-book or make book where npm and its registry are at hand")

# (CSS selector, axe rule): a violation of that rule on an element the selector matches is not a failure;
# why each stays is in the module's docstring
THEME_CHROME = [
    (".search-button__button", "label-content-name-mismatch"),
    (".theme-switch-button", "label-content-name-mismatch"),
    ("ul.bd-sidenav summary", "summary-name"),
]

AUDIT = """async ([rules, chrome, failing]) => {
    const options = {runOnly: rules.tags ? {type: 'tag', values: rules.tags} : {type: 'rule', values: rules.ids}};
    const results = await axe.run(document, Object.assign(options, {resultTypes: ['violations']}));
    const excused = (rule, target) => { const el = target.length === 1 && document.querySelector(target[0]);
        return !!el && chrome.some(([selector, id]) => id === rule && el.matches(selector)); };
    return results.violations.filter(v => failing.includes(v.impact)).flatMap(v => v.nodes
        .filter(n => !excused(v.id, n.target))
        .map(n => `${v.impact} ${v.id} (${v.help}): ${n.target.join(' ')} ${n.html.slice(0, 120)}`));
}"""

# every finite animation or transition run to its end (3 s at most)
SETTLED = """() => Promise.race([new Promise(done => setTimeout(done, 3000)), Promise.all(document.getAnimations()
    .filter(a => a.effect && a.effect.getTiming().iterations !== Infinity).map(a => a.finished.catch(() => null)))])"""

ALTERNATIVES = """() => {
    const problems = [], text = (el) => (el && el.textContent || '').trim();
    const named = (el) => (el.getAttribute('aria-label') || '').trim() || (el.getAttribute('aria-labelledby') || '')
        .split(/\\s+/).filter(Boolean).map(id => text(document.getElementById(id))).join(' ').trim();
    document.querySelectorAll('.plotly-graph-div').forEach((gd, index) => {
        const figure = gd.closest('figure'), caption = figure && figure.querySelector('figcaption');
        const own = named(gd) && ['figure', 'img'].includes(gd.getAttribute('role'));
        if (!own && !text(caption)) {
            const title = gd.querySelector('text.gtitle');
            problems.push(`figure #${index} (${JSON.stringify(text(title).slice(0, 50))}) has no text alternative: `
                          + 'no caption and no label');
        }
    });
    document.querySelectorAll('.bd-article img').forEach(img => {
        if (!(img.getAttribute('alt') || '').trim() && img.getAttribute('role') !== 'presentation')
            problems.push(`image ${img.getAttribute('src')} has no alt text`);
    });
    return problems;
}"""

HEADERS = """() => {
    const problems = [];
    document.querySelectorAll('.bd-article table').forEach((table, index) => {
        const grid = [];  // grid[row][column]: the cell there, spans included
        [...table.rows].forEach((row, r) => {
            let c = 0;
            for (const cell of row.cells) {
                while ((grid[r] = grid[r] || [])[c]) c++;
                for (let dr = 0; dr < Math.max(1, cell.rowSpan); dr++)
                    for (let dc = 0; dc < Math.max(1, cell.colSpan); dc++)
                        (grid[r + dr] = grid[r + dr] || [])[c + dc] = cell;
                c += Math.max(1, cell.colSpan);
            }
        });
        const first = ([...table.querySelectorAll('th, td')].map(c => c.textContent.trim()).find(Boolean) || '')
            .slice(0, 30);
        const where = `table #${index} (${JSON.stringify(first)})`;
        const bare = new Set();
        grid.forEach((row, r) => row.forEach((cell, c) => {
            if (!cell || cell.tagName !== 'TD' || !cell.textContent.trim()) return;
            const th = (x) => x && x.tagName === 'TH' && x.textContent.trim();  // an empty one heads nothing
            if (!row.some(th) && !grid.some(x => th(x[c]))) bare.add(cell);
        }));
        if (bare.size) problems.push(`${where}: ${bare.size} data cell(s) without a header, first `
                                     + JSON.stringify([...bare][0].textContent.trim().slice(0, 30)));
        const empty = [...table.querySelectorAll('th')]
            .filter(th => !th.textContent.trim() && !th.getAttribute('aria-label'));
        if (empty.length) problems.push(`${where}: ${empty.length} empty header cell(s)`);
    });
    return problems;
}"""


def axe_url(book_root: Path, book_server: str) -> str | None:
    """Where the served book has axe-core, or None (a failure under CI=true) where the build had no npm."""
    if (book_root / AXE).is_file():
        return book_server + AXE.as_posix()
    if os.environ.get("CI") == "true":
        pytest.fail(f"no {AXE} in the built book {book_root}: the accessibility audit cannot run under CI=true; "
                    "npm ci, then rebuild the book", pytrace=False)
    return None


def audit(page, url: str, colours_only: bool = False, chrome=tuple(THEME_CHROME)) -> list[str]:
    """axe-core's serious and critical violations on the page, but those `chrome` excuses; with
    `colours_only`, only of the rules that depend on colours."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(url=url)
    # colours read mid-transition (the theme's toggle fades them) would be neither theme's
    page.evaluate(SETTLED)
    rules = {"ids": COLOUR_RULES} if colours_only else {"tags": TAGS}
    return page.evaluate(AUDIT, [rules, [list(c) for c in chrome], list(FAILING)])


def alternatives(page) -> list[str]:
    return page.evaluate(ALTERNATIVES)


def headers(page) -> list[str]:
    return page.evaluate(HEADERS)
