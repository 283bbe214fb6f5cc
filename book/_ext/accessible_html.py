"""A Sphinx extension that mends what an accessibility audit (axe-core) finds in the HTML that
notebooks and docutils write, so that a screen reader and a keyboard reach every page's content.

- Tables from notebooks (pandas, its Styler, glued or in a cell's output) have an empty header
  cell in their top-left corner and under the column names: an empty cell is no header, so it
  becomes a data cell (`<td>`), and every header cell says whether it heads a column or a row
  (`scope`), so that each data cell is read with its headers. A table of the prose (Markdown)
  whose top-left corner is empty names its rows in its first column, as pandas' do: those cells
  become the rows' headers.
- The references page's citations carry the deprecated DPUB role `doc-biblioentry` inside a
  `role="list"`, which then has no list items: they become `listitem`s.
- A wide output that scrolls sideways (book/assets/phone.css) takes keyboard focus, as a named
  region, so that a reader without a mouse can scroll it; the script marks only the outputs that
  do scroll at the page's present width.

The pages' bodies are rewritten as text in `html-page-context`, outside their <script> elements
(where a plotly figure's data is), after myst-nb has put the notebooks' outputs in.
"""

import re

SCRIPT = re.compile(r"(<script\b.*?</script>)", re.S | re.I)
TABLE = re.compile(r"<table\b.*?</table>", re.S | re.I)
EMPTY_HEADER = re.compile(r"<th\b([^>]*)>((?:\s|&nbsp;|&#160;|<p>\s*</p>)*)</th>", re.I)
FIRST_CELL = re.compile(r"<t[hd]\b[^>]*>", re.I)
ROW_LABEL = re.compile(r"(<tr\b[^>]*>\s*)<td\b([^>]*)>(.*?)</td>", re.S | re.I)
TABLE_TAG = re.compile(r"<(/?)(thead|tbody|tfoot|th)\b([^>]*)>", re.I)
SPAN = re.compile(r"""\b(colspan|rowspan)\s*=\s*["']?(\d+)""", re.I)

# keyboard focus for the outputs that scroll sideways, at load and after the page is resized
SCROLL_FOCUS = """(function () {
  const SCROLLERS = ".bd-article .output.text_html, .bd-article .cell_output .output";
  function update() {
    for (const el of document.querySelectorAll(SCROLLERS)) {
      const scrolls = el.scrollWidth > el.clientWidth + 1, marked = "lmlabScroll" in el.dataset;
      if (scrolls && !marked && !el.hasAttribute("tabindex")) {
        el.dataset.lmlabScroll = "";
        el.tabIndex = 0;
        el.setAttribute("role", "region");
        const what = el.querySelector("table") ? "Table" : "Output";
        el.setAttribute("aria-label", `${what}, scrolls sideways`);
      } else if (!scrolls && marked) {
        delete el.dataset.lmlabScroll;
        ["tabindex", "role", "aria-label"].forEach((name) => el.removeAttribute(name));
      }
    }
  }
  let timer = null;
  window.addEventListener("load", update);
  window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(update, 200); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", update);
  else update();
})();"""


def _scope(section: str, attributes: str) -> str:
    """The scope of a header cell: a column's in a table's head, a row's in its body; a group's
    where the cell spans several."""
    spans = {name.lower(): int(value) for name, value in SPAN.findall(attributes)}
    if section == "thead":
        return "colgroup" if spans.get("colspan", 1) > 1 else "col"
    return "rowgroup" if spans.get("rowspan", 1) > 1 else "row"


def mend_table(html: str) -> str:
    """One table: empty header cells turned into data cells, the first column into the rows' headers
    where the top-left corner is empty, and a scope on every header cell that has none."""
    first = FIRST_CELL.search(html)
    corner = first is not None and EMPTY_HEADER.match(html, first.start()) is not None
    html = EMPTY_HEADER.sub(r"<td\1>\2</td>", html)
    if corner and "<tbody" in html:
        head, body = html.split("<tbody", 1)
        html = head + "<tbody" + ROW_LABEL.sub(r"\1<th\2>\3</th>", body)
    section = "tbody"

    def tag(match: re.Match) -> str:
        nonlocal section
        closing, name, attributes = match.group(1), match.group(2).lower(), match.group(3)
        if name != "th":
            section = "tbody" if closing else name
            return match.group(0)
        if closing or re.search(r"\bscope\s*=", attributes, re.I):
            return match.group(0)
        attributes = attributes.rstrip()
        return f'<th{attributes} scope="{_scope(section, attributes)}">'

    return TABLE_TAG.sub(tag, html)


def mend(html: str) -> str:
    """A page's body, mended outside its scripts."""
    parts = SCRIPT.split(html)
    for i in range(0, len(parts), 2):  # even parts lie between the scripts
        parts[i] = TABLE.sub(lambda m: mend_table(m.group(0)), parts[i]).replace(' role="doc-biblioentry"',
                                                                                 ' role="listitem"')
    return "".join(parts)


def _mend_page(app, pagename, templatename, context, doctree):
    if context.get("body"):
        context["body"] = mend(context["body"])


def setup(app):
    app.connect("html-page-context", _mend_page)
    app.add_js_file(None, body=SCROLL_FOCUS)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
