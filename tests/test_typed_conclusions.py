"""Typed conclusions: sentences whose verdict word reads a measured number but was typed by hand.

A sentence that holds a glued number and a verdict word ("the interval excludes 0", "the gain
falls with p", "keeps up") states a conclusion about that number; so does every exercise's
"Expected:" answer. Typed by hand, such words drift from the numbers the next build measures.
Each one must be

- glued: its verdict comes from `lmlab.claims` through a glued `…_word` value in the sentence; or
- asserted: its paragraph names the assert that fails when the words become false, with a MyST
  comment line `% asserted: NAME`, and NAME is checked in the chapter's notebook by
  `claims.require("NAME", …)` or `claims.require_that("NAME", …)`; or
- allowed: listed in `tests/typed_conclusions/<chapter>.txt` as `page | the sentence's first words | why`
  (a derivation, a fact from a paper, a word that reads no measured number). An entry that no
  longer matches a flagged sentence is an error too, so the list cannot rot.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
ALLOW = Path(__file__).with_name("typed_conclusions")  # one allow-list per chapter

VERDICT = re.compile(
    r"\b(more|less|fewer|above|below|higher|lower|grows?|growing|falls?|falling|holds?|excludes?|beats?|wins?|"
    r"better|worse|every|none|keeps? up|larger|smaller|exceeds?|outperforms?|loses?|rises?|improves?|steeply|"
    r"ties|tied|overlaps?|identical|differs?|unchanged|far from|outside|moves?|flat)\b", re.IGNORECASE)
GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")
ASSERTED = re.compile(r"^\s*%\s*asserted:\s*([\w.-]+)\s*$", re.MULTILINE)
REQUIRED = re.compile(r"require(?:_that)?\(\s*f?[\"']([\w.-]+)[\"']")


def glue_name(role: str) -> str:
    """`chapter.ipynb::name:.3f` (or `name`) -> `name`."""
    name = role.split("::", 1)[-1]
    return name.split(":", 1)[0].strip()


def caption(block: re.Match) -> str:
    """A fenced block as prose: a `{glued-figure}`'s caption (after its options) is read like any
    paragraph; any other fenced block (code, a pasted table or figure) is dropped."""
    lines = block.group(0).splitlines()[1:-1]
    if "{glued-figure}" not in block.group(0).splitlines()[0]:
        return ""
    return "\n".join(line for line in lines if not line.lstrip().startswith(":"))


def strip_noise(text: str) -> str:
    """Text without fenced blocks (but with figure captions), display math, tables and HTML: what
    remains is the prose."""
    text = re.sub(r"^(```|~~~)[\s\S]*?^\1\s*$", caption, text, flags=re.MULTILINE)
    text = re.sub(r"\$\$[\s\S]*?\$\$", "", text)
    text = re.sub(r"^\s*\|.*\|\s*$", "", text, flags=re.MULTILINE)  # table rows: numbers, not sentences
    text = re.sub(r"^\s*<[^>]+>.*$", "", text, flags=re.MULTILINE)
    return text


def paragraphs(text: str):
    """Paragraphs (split at blank lines and at list items), each with its `% asserted:` names."""
    text = strip_noise(text)
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:\d+\.|[-*])\s)", text):
        names = set(ASSERTED.findall(block))
        prose = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("%"))
        prose = re.sub(r"\s+", " ", prose).strip()
        if prose:
            yield prose, names


def starts_sentence(ch: str) -> bool:
    """A capital, or μ, which opens sentences in lower case ("μP's search …")."""
    return ch.isupper() or ch == "μ"  # "" (the paragraph's end) is neither


def sentences(paragraph: str) -> list[str]:
    """A paragraph cut into sentences at '. ', '? ', '! ' (never inside a role's backticks)."""
    out, start, inside = [], 0, False
    for i, ch in enumerate(paragraph):
        if ch == "`":
            inside = not inside
        elif (not inside and ch in ".?!" and paragraph[i + 1 : i + 2] == " "
              and starts_sentence(paragraph[i + 2 : i + 3])):
            out.append(paragraph[start : i + 1].strip())
            start = i + 2
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def without_roles(sentence: str) -> str:
    """The sentence's own words: glue roles, citations, references and code spans removed."""
    return re.sub(r"\{[\w:-]+\}`[^`]*`|`[^`]*`", " ", sentence)


def page_sources():
    """(page label, text, the chapter notebooks' code) for every chapter page and notebook."""
    for md in sorted(BOOK.glob("*/index.md")):
        code = notebook_code(md.parent)
        yield f"{md.parent.name}/index.md", md.read_text(encoding="utf-8"), code
    for page in ("intro.md", "appendix.md"):
        yield page, (BOOK / page).read_text(encoding="utf-8"), ""
    for nb in sorted(BOOK.glob("*/*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        yield f"{nb.parent.name}/{nb.name}", text, notebook_code(nb.parent)


def notebook_code(folder: Path) -> str:
    code = []
    for nb in sorted(folder.glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(code)


def typed(sentence: str, backed: bool = False) -> bool:
    """True when `sentence` reads a number (a glued one, or an exercise's expected answer) with a
    verdict word of its own, and neither a glued `…_word` nor a named assert (`backed`) stands behind it."""
    roles = [glue_name(r) for r in GLUE.findall(sentence)]
    reads_number = any(not r.endswith("_word") for r in roles) or re.search(r"\bExpected\b", sentence)
    glued_word = any(r.endswith("_word") for r in roles)
    return bool(reads_number and VERDICT.search(without_roles(sentence)) and not glued_word and not backed)


def typed_conclusions():
    """(page, sentence) of every sentence that reads a number with a typed verdict word, and the
    `% asserted:` names that no notebook requires, as (page, name)."""
    flagged, unknown = [], []
    for page, text, code in page_sources():
        required = set(REQUIRED.findall(code))
        for paragraph, names in paragraphs(text):
            unknown += [(page, n) for n in sorted(names - required)]
            flagged += [(page, s) for s in sentences(paragraph) if typed(s, bool(names & required))]
    return flagged, unknown


def allow_list() -> list[tuple[str, str, str]]:
    entries = []
    for path in sorted(ALLOW.glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"{path.name}:{n}: write `page | first words of the sentence | why`, got {line!r}")
            entries.append(tuple(parts))
    return entries


def test_every_typed_conclusion_is_glued_asserted_or_allowed():
    flagged, unknown = typed_conclusions()
    entries = allow_list()
    used, left = set(), []
    for page, s in flagged:
        hit = [e for e in entries if e[0] == page and s.startswith(e[1])]
        if hit:
            used.update(hit)
        else:
            left.append(f"{page}: {s}")
    stale = [f"{p} | {start}" for p, start, _ in entries if (p, start, _) not in used]
    assert not unknown, f"`% asserted:` names that no notebook requires: {unknown}"
    assert not left, (f"{len(left)} typed conclusion(s): glue the word from lmlab.claims, name the assert "
                      f"(`% asserted: NAME`), or allow it with a reason in tests/{ALLOW.name}/:\n" + "\n".join(left))
    assert not stale, "allow-list entries that match no flagged sentence (remove them):\n" + "\n".join(stale)


# ------------------------------------------------------------------ the finder itself, on made-up pages


@pytest.mark.parametrize("sentence, found", [
    ("The gain is {glue:text}`d.ipynb::gain:.3f`, and its interval holds 0.", True),   # typed verdict
    ("The gain is {glue:text}`d.ipynb::gain:.3f`; its interval {glue:text}`d.ipynb::gain_word`.", False),
    ("The model has {glue:text}`d.ipynb::n:,d` parameters.", False),                     # no verdict word
    ("*Expected:* it grows.", True),                                                      # an answer
    ("A larger model is better, as the lore says.", False),                               # reads no number
])
def test_finder_flags_typed_verdicts_only(sentence, found):
    assert any(typed(s) for p, _ in paragraphs(sentence) for s in sentences(p)) == found


def test_asserted_comment_backs_its_paragraph_only():
    text = ("% asserted: gain\nThe gain {glue:text}`d.ipynb::gain:.3f` is above 0.\n\n"
            "The cost {glue:text}`d.ipynb::cost:.3f` is above 0.")
    named = [(names, s) for p, names in paragraphs(text) for s in sentences(p)]
    assert named[0][0] == {"gain"} and named[1][0] == set()
    assert "asserted" not in named[0][1]


def test_required_names_are_read_from_code():
    code = 'claims.require("gain", d, "above")\nclaims.require_that( "exact", x == y)'
    assert set(REQUIRED.findall(code)) == {"gain", "exact"}


def test_every_glued_text_names_its_format():
    """myst-nb reads `{glue:text}`ch.ipynb::name`` as key `ch.ipynb:` with format `name` (it splits at the
    last colon), so a role without a format glues nothing: a word needs `:s`, a number its spec."""
    bare = [f"{md.relative_to(BOOK)}: {role}" for md in sorted(BOOK.glob("*/index.md"))
            for role in re.findall(r"\{glue:text\}`([^`]*)`", md.read_text(encoding="utf-8"))
            if "::" in role and ":" not in role.split("::", 1)[1]]
    assert not bare, "give these glued values a format (`:s` for words):\n" + "\n".join(bare)


if __name__ == "__main__":  # list what is flagged: python tests/test_typed_conclusions.py [page prefix]
    import sys

    found, missing = typed_conclusions()
    for page, sentence in found:
        if page.startswith(sys.argv[1] if len(sys.argv) > 1 else ""):
            print(f"{page} | {sentence}\n")
    for page, name in missing:
        print(f"{page}: `% asserted: {name}` names no notebook's require")
