"""A Sphinx extension that pins what the HTML book hands a reader to the commit it was built from.

A reader of a book built last spring who clicks Colab should run last spring's notebook on
last spring's lmlab, not whatever `main` holds today. The build knows its commit:

- `LMLAB_BOOK_REF` if set (CI may name a tag or the commit it checked out);
- else `git rev-parse HEAD`, when the book's folder is itself the top of a git checkout
  (a tarball unpacked inside some other repository must not take that repository's commit);
- else `_config.yml`'s branch, and the build says so: a tarball still builds, but its
  readers get the branch's newest code.

With it, the launch buttons open `blob/<commit>/…` instead of `blob/<branch>/…` (the theme
builds them from `repository_branch`, set here before the theme reads it), and every
notebook the book serves for download (`_sources/**/*.ipynb`, copied after each page is
written) gets the commit written into its Colab cell (`colab_cell.pin`). The committed
notebooks keep `LMLAB_REF = ""`: opened in Colab from GitHub, the cell reads the commit
from the address Colab opened (see colab_cell.py).
"""

import json
import os
import subprocess
from pathlib import Path

import colab_cell
from sphinx.util import logging

logger = logging.getLogger(__name__)
ENV = "LMLAB_BOOK_REF"


def git_head(root: Path) -> str | None:
    """The commit checked out at `root`, or None when `root` is not the top of a git checkout."""
    try:
        top, head = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "--verify", "HEAD"],
                                   capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError, ValueError):
        return None  # no git, not a checkout, no commit yet, a refused (unsafe) directory
    return head if Path(top).resolve() == Path(root).resolve() else None


def git_dirty(root: Path) -> bool:
    """Whether tracked files differ from HEAD: a reader following the link gets HEAD, not what was built."""
    try:
        return bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=60, check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return False


def book_ref(root: Path | None = None, environ=None) -> tuple[str, str]:
    """(ref, where it came from): the ref the book's Colab links and downloads install."""
    root = Path(root or colab_cell.ROOT)
    environ = os.environ if environ is None else environ
    if environ.get(ENV):
        colab_cell.check_ref(ENV, environ[ENV])
        return environ[ENV], f"${ENV}"
    head = git_head(root)
    if head:
        return head, f"git HEAD of {root}" + (", without this working tree's uncommitted changes"
                                               if git_dirty(root) else "")
    branch = colab_cell.repository()[1]
    return branch, (f"{root} is not the top of a git checkout that git can read, and {ENV} is not set: the "
                    f"book's Colab links and notebooks follow branch {branch!r}, not this build's commit")


def pin_launch_buttons(app, config) -> None:
    """config-inited: the ref goes where the theme builds its launch and source links from."""
    ref, source = book_ref()
    config.lmlab_book_ref = ref
    options = dict(config.html_theme_options or {})
    if options.get("repository_url"):
        options["repository_branch"] = ref
        config.html_theme_options = options
    logger.info(f"[pin_commit] Colab links and downloadable notebooks install lmlab at {ref} ({source})")


def pin_notebooks(folder: Path, ref: str) -> list[Path]:
    """Write `ref` into the Colab cell of every notebook under `folder`; the ones without the cell are returned."""
    missing = []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        source = "".join(code[0]["source"]) if code else ""
        try:
            colab_cell.set_first_cell(nb, colab_cell.pin(source, ref))
        except ValueError:
            missing.append(path)
            continue
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return missing


def pin_downloads(app, exception) -> None:
    """build-finished: the notebooks the HTML pages offer for download hold the commit."""
    if exception is not None or app.builder.format != "html":
        return
    for path in pin_notebooks(Path(app.outdir) / "_sources", app.config.lmlab_book_ref):
        logger.warning(f"[pin_commit] {path} has no Colab cell to pin (python book/_ext/colab_cell.py)")


def setup(app):
    # not a setting: pin_launch_buttons fills it in (from LMLAB_BOOK_REF, git or the branch) for build-finished
    app.add_config_value("lmlab_book_ref", "", "html")
    app.connect("config-inited", pin_launch_buttons)
    app.connect("build-finished", pin_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
