"""Each chapter page reads like a textbook's: a lesson first, detail on demand, answers hidden,
figures that say what to see (issue 32, items 1-3).

Read from the MyST source of every chapter page (book/<chapter>/index.md):

- it opens, right under its title, with an "In this chapter" box, and has a "Takeaways" box;
- its main flow (prose outside dropdowns, margin notes and code) is about 2,000 words or less:
  protocols and fine print sit in dropdowns, where a reader opens them on demand;
- every exercise's expected answer sits in a dropdown, so the reader predicts before reading it;
- every figure is a `{glued-figure}` with a caption: the caption says what to see and is the
  chart's text for a screen reader (book/_ext/glued_figure.py);
- a cross-reference is a link (`{ref}`), never "section 6": the page's headings carry no numbers, so
  a number would point into the notebook, whose numbering the page does not show.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "book").glob("*/index.md"))
MAIN_FLOW_WORDS = 2300  # "about 2,000": the opening box, takeaways and captions count too
HIDDEN = ("{dropdown}", "{margin}", "{toggle}", "{sidebar}")
FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*(\{[\w:-]+\})?\s*(.*)$")


def blocks(text: str):
    """(line, directive, hidden) for every line, where `directive` is the innermost open directive
    and `hidden` says whether any open block is a dropdown, margin note or the like."""
    stack = []  # (fence, directive, hidden)
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and stack and m.group(1) == stack[-1][0] and not m.group(2) and not m.group(3):
            stack.pop()
            continue
        if m and (m.group(2) or m.group(3)):
            directive = m.group(2) or ""
            stack.append((m.group(1), directive, directive in HIDDEN or any(s[2] for s in stack)))
            continue
        if stack and line.strip() == ":class: dropdown":
            stack[-1] = (stack[-1][0], stack[-1][1], True)
        yield line, stack[-1][1] if stack else "", bool(stack) and stack[-1][2]


def main_flow_words(text: str) -> int:
    words = 0
    for line, directive, hidden in blocks(text):
        s = line.strip()
        if hidden or directive in ("{glue}", "{code}", "{code-cell}") or directive.startswith("{glue"):
            continue
        if not s or s.startswith(("%", ":", "<", "(")) and not s.startswith("(["):
            continue
        s = re.sub(r"\{[\w:-]+\}`[^`]*`", "X", s)  # a glued number or a citation is a word
        words += len(re.findall(r"[A-Za-z0-9μσαη][\w'’.,-]*", s))
    return words


def figure_names(chapter: str) -> set[str]:
    """Names of the plotly figures the chapter's notebook glues (a value glued with a figure)."""
    nb = json.loads((ROOT / "book" / chapter / f"{chapter}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return set(re.findall(r"[\"'](\w+_fig|fig_\w+)[\"']\s*:", code)) | set(re.findall(r"glue\([\"'](\w+fig\w*)", code))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_the_page_opens_with_its_lesson_and_closes_with_takeaways(page):
    lines = [line for line in page.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("# ") and lines[1].startswith(":::{admonition} In this chapter"), lines[:2]
    text = page.read_text()
    for part in ("**You will learn**", "**What we found**", ":::{admonition} Takeaways"):
        assert part in text, f"{page.parent.name}: no {part}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_the_main_flow_is_about_two_thousand_words(page):
    assert main_flow_words(page.read_text()) <= MAIN_FLOW_WORDS


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_every_expected_answer_is_hidden_until_opened(page):
    shown = [line.strip() for line, _, hidden in blocks(page.read_text()) if "*Expected" in line and not hidden]
    assert not shown, f"{page.parent.name}: answers in plain sight: {shown}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_every_figure_has_a_caption(page):
    text, chapter = page.read_text(), page.parent.name
    bare = [name for name in re.findall(r"^```\{glue\}\s+(\S+)", text, flags=re.MULTILINE)
            if name in figure_names(chapter)]
    assert not bare, f"{chapter}: figures glued without a caption ({{glue}}, not {{glued-figure}}): {bare}"
    for name, body in re.findall(r"^```\{glued-figure\}\s+(\S+)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        caption = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith(":")]
        assert caption, f"{chapter}: {name} has no caption"


NUMBERED_SECTION = re.compile(r"\b[Ss]ections?\s+\d|§\s*\d")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.parent.name)
def test_cross_references_are_links_not_section_numbers(page):
    numbered = [line.strip() for line in page.read_text().splitlines() if NUMBERED_SECTION.search(line)]
    assert not numbered, f"{page.parent.name}: a section named by number, not linked with {{ref}}: {numbered}"


def test_chapter_one_shows_the_model_from_the_package():
    """Chapter 1 draws the model (an SVG with a text alternative) and lists its forward pass from
    src/lmlab/model.py itself (literalinclude), so the listing cannot drift from the code."""
    text = (ROOT / "book" / "lab" / "index.md").read_text()
    assert re.search(r'<svg [^>]*role="img"[^>]*aria-labelledby="([\w-]+)"', text), "no block diagram with a label"
    include = r"```\{literalinclude\} \.\./\.\./src/lmlab/model\.py\n(?::\w+:.*\n)*?:pyobject: ([\w.]+)"
    listed = re.findall(include, text)
    assert "GPT.forward" in listed and "Block.forward" in listed, listed


def test_the_checks_see_what_they_check():
    """Controls: a page with an answer in sight, a bare figure and a long flow fails each check."""
    page = "# T\n\n1. **Q.** Why? *Expected:* because.\n\n:::{dropdown} More\n" + "word " * 3000 + "\n:::\n"
    assert any("*Expected" in line and not hidden for line, _, hidden in blocks(page))
    assert main_flow_words(page) < 20 and main_flow_words(page.replace(":::{dropdown} More", "")) > 3000
    assert main_flow_words("```{admonition} A\n:class: dropdown\n" + "word " * 50 + "\n```\n") == 0
    assert NUMBERED_SECTION.search("as section 6 shows") and not NUMBERED_SECTION.search("{ref}`mup-init-width`")
