"""The house plot style, in a light and a dark version: one palette, two plotly templates.

Figures are drawn in the light version (`pio.templates.default`). The HTML book follows the
reader's light/dark theme: book/assets/figure-theme.js swaps a figure's template for the other
one and maps every colour a trace names explicitly through `COLOR_PAIRS`. Both come from here:
the book's Sphinx extension book/_ext/figure_theme.py writes `theme_json()` into every page.

Name colours through this module (`COLORS`, `INK`, `GREY`) rather than by literal, so that they
have a dark twin; a colour the map does not know keeps its light value in dark mode.
"""

import json

import plotly.graph_objects as go
import plotly.io as pio

# Data colours, in order; each light colour's dark twin is lighter, so that it reads on a dark page.
COLORS = ["#1f5f8b", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#e07a5f"]
DARK_COLORS = ["#62a6dc", "#ef6f7f", "#f2bd5e", "#2fb5c8", "#84c5a1", "#b699c9", "#a3b5cc", "#f09c84"]

INK = "#222222"  # marks in the text colour: fitted lines, the outlines of stars, reference points
GREY = "#c8c8c8"  # context: the runs not chosen, the unfiltered distribution

# The book's page colours in light and dark mode (pydata-sphinx-theme's background, text and
# surfaces), so that a figure sits on the page as if printed on it.
LIGHT = dict(background="#ffffff", text=INK, grid="#ebf0f8", line="#ebf0f8", grey=GREY,
             legend="rgba(255,255,255,0.7)", header="#eef2f5", cells="#ebf0f8", cell_lines="#ffffff")
DARK = dict(background="#121212", text="#ced6dd", grid="#29313d", line="#48566b", grey="#4f5967",
            legend="rgba(18,18,18,0.7)", header="#29313d", cells="#1e242c", cell_lines="#121212")

COLOR_PAIRS = {**dict(zip(COLORS, DARK_COLORS, strict=True)), INK: DARK["text"], GREY: DARK["grey"]}
"""Light colour -> its dark twin, for every colour a figure may name explicitly."""

FONT = "Inter, Helvetica, Arial, sans-serif"


def _template(base: str, page: dict, colorway: list[str]) -> go.layout.Template:
    """plotly's `base` template with the house layout in the colours of `page`."""
    template = go.layout.Template(pio.templates[base])
    axis = dict(gridcolor=page["grid"], linecolor=page["line"], zerolinecolor=page["grid"])
    template.layout.update(
        font=dict(family=FONT, size=13, color=page["text"]), colorway=colorway,
        margin=dict(l=60, r=20, t=50, b=50), hovermode="x unified", legend=dict(bgcolor=page["legend"]),
        paper_bgcolor=page["background"], plot_bgcolor=page["background"], xaxis=axis, yaxis=axis)
    template.data.table = [go.Table(header=dict(fill_color=page["header"], line_color=page["cell_lines"]),
                                    cells=dict(fill_color=page["cells"], line_color=page["cell_lines"]))]
    return template


pio.templates["lmlab"] = _template("plotly_white", LIGHT, COLORS)
pio.templates["lmlab_dark"] = _template("plotly_dark", DARK, DARK_COLORS)
pio.templates["lmlab_dark"].layout.update(  # plotly_dark's light-grey slider and mode bar glare on a dark page
    sliderdefaults=dict(bgcolor=DARK["grid"], activebgcolor=DARK["line"], bordercolor=DARK["line"],
                        tickcolor=DARK["text"]),
    modebar=dict(bgcolor="rgba(0,0,0,0)", color="#9ca4af", activecolor=DARK["text"]))
pio.templates.default = "lmlab"


def theme_json() -> str:
    """What figure-theme.js reads, as JSON: both templates and the light -> dark colour map."""
    return json.dumps({"templates": {"light": pio.templates["lmlab"].to_plotly_json(),
                                     "dark": pio.templates["lmlab_dark"].to_plotly_json()},
                       "colors": COLOR_PAIRS}, separators=(",", ":"))


def wrap_meta(columns: list, wrap: int) -> dict:
    """A table trace's `meta` for texts wrapped at `wrap` characters: each column's texts
    unwrapped (None for a column to leave alone). In the HTML book figure-theme.js wraps them
    again where a column holds fewer than `wrap` characters (on a phone) and makes the figure
    taller by the lines that adds: plotly cannot rewrap a text that holds line breaks."""
    return {"wrap": wrap, "texts": columns}
