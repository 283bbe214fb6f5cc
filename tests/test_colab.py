"""The Colab cell, proven: in a Colab-like environment it installs a working lmlab and upgrades nothing.

A fresh virtualenv gets what Colab's runtime has before the first cell runs: torch,
numpy, ipykernel, and Colab's own ipywidgets 7.7.1, plotly 5.24.1 and pandas 2.2.3
(googlecolab/backend-info's pip-freeze.gpu.txt); a stand-in `google.colab` module provides
`output.enable_custom_widget_manager`, and an IPython startup file imports it, as Colab's
kernel does. Chapter 1 then runs at `smoke` budget in that kernel, with its first cell —
the generated Colab cell — installing lmlab from this checkout (a file:// git URL at this
commit). Afterwards ipywidgets, plotly and torch must be the versions Colab had, and the
live panel must have been built.

It installs from the package index and takes a few minutes: `make colab-check` runs it
(CI does, after the book).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import colab_cell  # noqa: E402

COLAB_HAS = {"ipywidgets": "7.7.1", "plotly": "5.24.1", "pandas": "2.2.3"}  # pip-freeze.gpu.txt, 2026-08-19
PREINSTALLED = ["torch==2.13.0", "numpy", "ipykernel==6.17.1", "ipython==7.34.0",  # Colab's kernel
                *(f"{k}=={v}" for k, v in COLAB_HAS.items())]
STAND_IN = '''"""A stand-in for Colab's output module: records that custom widgets were switched on."""
import os

def enable_custom_widget_manager():
    open(os.environ["COLAB_STAND_IN_MARKER"], "w").write("enabled")
'''

pytestmark = pytest.mark.colab


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


def test_the_colab_cell_installs_lmlab_and_upgrades_nothing(colab_like, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    python, jupyter_path, ipython, base = colab_like
    before = versions(python)
    commit = run("git", "-C", ROOT, "rev-parse", "HEAD").strip()
    nb = nbformat.reads((ROOT / "book" / "lab" / "lab.ipynb").read_text(), as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    url, branch = colab_cell.repository()
    first.source = colab_cell.notebook_cell(nb).replace(f"git+{url}@{branch}", f"git+file://{ROOT}@{commit}")
    assert f"git+file://{ROOT}@{commit}" in first.source  # the cell under test, pointed at this checkout
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
