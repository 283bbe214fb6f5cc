"""How figures and panels reach the reader: in the HTML book, in Jupyter, and in Colab.

During a book build (`LMLAB_BOOK_BUILD=1`) figures render as HTML that expects
`Plotly` on the page (the book serves plotly.min.js once from its own assets), and
panels show their static twin instead of dead widgets. In Colab a figure carries
its own plotly.js, because Colab's renderer fails inside widget outputs. Numbers
reach the book's prose through myst-nb's `glue`.
"""

import sys

import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import HTML, Markdown, display
from plotly.io._base_renderers import MimetypeRenderer

import lmlab.display.style  # noqa: F401  (registers the house template)
from lmlab.budget import building_book


class BookRenderer(MimetypeRenderer):
    """A plotly figure as an HTML div plus the script that draws it, without plotly.js itself."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, default_width="100%", validate=False)
        return {"text/html": html}


if building_book():
    pio.renderers["lmlab_book"] = BookRenderer()
    pio.renderers.default = "lmlab_book"


def in_colab() -> bool:
    return "google.colab" in sys.modules


class MimeBundle:
    """A figure seen only through its mime bundle. Plotly figures display themselves
    (`_ipython_display_`), which makes IPython ignore `display_id` (every update would add a
    new figure) and makes its formatter return nothing (glue would store nothing)."""

    def __init__(self, fig: go.Figure):
        self.bundle = pio.renderers._build_mime_bundle(fig.to_dict())  # activates renderers once, not per call

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.bundle


def displayable(fig: go.Figure):
    """What to hand to `display`: in Colab an HTML page that carries its own plotly.js, because
    Colab's own renderer fails inside widget outputs ("Plotly is not defined"); elsewhere the
    figure's mime bundle for the current renderer."""
    if in_colab():
        return HTML(fig.to_html(include_plotlyjs="cdn", full_html=False))
    return MimeBundle(fig)


def panel(make_live, static: go.Figure | None = None, hint: str = "") -> None:
    """Show the live panel that `make_live()` builds, or, in a book build, its static twin and a hint."""
    if building_book():
        if static is not None:
            display(static)
        display(Markdown(f"*{hint}*" if hint else "*Open this notebook in Colab or Jupyter to use the live panel.*"))
    else:
        display(make_live())


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's `glue`, which hands a value to the book's prose; a no-op where myst-nb is
    absent (Colab), since there is no book page to paste into there."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy and torch scalars: the book formats their plain-text form as a number
    myst_glue(name, MimeBundle(value) if isinstance(value, go.Figure) else value, display)


def glue_all(values: dict) -> None:
    """`glue` every name → value of `values`: a cell hands the prose all its numbers at once."""
    for name, value in values.items():
        glue(name, value)
