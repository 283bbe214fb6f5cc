"""The house plot style: a light and a dark template, and the colour map the book's
figure-theme.js uses to draw figures in the dark one."""

import json

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch
from made_up import history

from lmlab.budget import BUDGETS
from lmlab.display import figures, mup, sampling, scaling, style
from lmlab.experiments.laws import EPOCH
from lmlab.experiments.scaling import family


def luminance(color: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_colour_map_is_one_to_one_and_covers_the_named_colours():
    light, dark = list(style.COLOR_PAIRS), list(style.COLOR_PAIRS.values())
    assert len(set(dark)) == len(dark), "two light colours share a dark twin"
    assert not {c.lower() for c in light} & {c.lower() for c in dark}, "a colour would be mapped twice"
    assert set(style.COLORS) <= set(light) and {style.INK, style.GREY} <= set(light)


def test_dark_colours_read_on_the_dark_page():
    bg = style.DARK["background"]
    assert luminance(bg) < 0.01 and contrast(style.DARK["text"], bg) >= 7
    assert all(contrast(c, bg) >= 4 for c in style.DARK_COLORS), "a data colour is too dim on the dark page"
    assert contrast(style.DARK["grey"], bg) >= 2  # context marks: dim, but there
    assert contrast(style.LIGHT["text"], style.LIGHT["background"]) >= 7


def test_both_templates_are_registered_and_light_is_the_default():
    assert pio.templates.default == "lmlab"
    light, dark = pio.templates["lmlab"].layout, pio.templates["lmlab_dark"].layout
    assert light.paper_bgcolor == style.LIGHT["background"] and dark.paper_bgcolor == style.DARK["background"]
    assert list(light.colorway) == style.COLORS and list(dark.colorway) == style.DARK_COLORS
    assert dark.font.color == style.DARK["text"] and dark.legend.bgcolor == style.DARK["legend"]
    assert pio.templates["lmlab_dark"].data.table[0].header.fill.color == style.DARK["header"]
    assert go.Figure().layout.template.layout.paper_bgcolor == style.LIGHT["background"]
    assert pio.templates["plotly_white"].data.table[0].header.fill.color == "#C8D4E3"  # plotly's own untouched


def test_theme_json_holds_what_the_page_script_reads():
    text = style.theme_json()
    theme = json.loads(text)
    assert set(theme) == {"templates", "colors"} and set(theme["templates"]) == {"light", "dark"}
    assert theme["templates"]["dark"]["layout"]["paper_bgcolor"] == style.DARK["background"]
    assert theme["templates"]["light"]["layout"]["margin"] == {"l": 60, "r": 20, "t": 50, "b": 50}
    assert theme["colors"] == style.COLOR_PAIRS and "</" not in text


def explicit_colors(fig: go.Figure) -> set[str]:
    """Every colour a figure's traces name themselves (the template's are switched whole)."""
    found = set()

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key)
        elif key.endswith("color") and isinstance(value, str):
            found.add(value)

    walk(fig.to_plotly_json()["data"])
    return found


def house_figures() -> dict[str, go.Figure]:
    """One of each of lmlab.display's figures, from tiny made-up inputs."""
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    sweep = pd.DataFrame([{"param": p, "width": w, "log2_lr": lr, "seed": k, "avg_train": 3 + abs(lr + 6) / w + k / 100}
                          for p in ("sp_fanin", "mup") for w in (32, 64) for lr in (-8, -6, -4) for k in (0, 1)])
    optima = pd.DataFrame([{"param": p, "width": w, "opt": -6.0, "opt_se": 0.1, "loss": 3.0}
                           for p in ("sp_fanin", "mup") for w in (32, 64)])
    coords = pd.DataFrame([{"param": p, "t": t, "layer": layer, "width": w, "l1": 0.1 * t * w, "seed": 0}
                           for p in ("sp", "mup") for t in (1, 2) for layer in ("embedding", "logits")
                           for w in (32, 64)])
    profiles = pd.DataFrame([{"C": c, "N": n, "L": 3 + (n - c) ** 2} for c in (1.0, 2.0) for n in (0.5, 1.0, 2.0, 4.0)])
    table = pd.DataFrame({"NLL": [1.0, 2.0, 1.5], "distinct-4 chars": [0.1, 0.9, 0.5]}, index=["k=1", "k=2", "human"])
    return {
        "loss": figures.loss_figure({"a": history(3)}),
        "runs slider": figures.runs_slider_figure({"": {0.0: history(3), 0.5: history(3)}}, "p"),
        "loss with others": figures.loss_figure_with_others("a", history(3), {"b": history(3)}),
        "sampling": sampling.sampling_figure({1: (probs, probs, ["ab"]), 2: (probs, probs, ["cd"])}, "ab c", "k", "x"),
        "samples grid": sampling.samples_grid({"p = 0": {"greedy": "aa", "top-k": "xy"}}),
        "LR sweep": mup.sweep_figure(sweep, optima),
        "proxy → target": mup.comparison_figure(pd.DataFrame({"mean": [2.4, 2.3], "half": [0.01, 0.02]},
                                                             index=["μP", "SP"])),
        "coordinate check": mup.coord_figure(coords),
        "IsoFLOP": scaling.isoflop_figure(profiles, pd.DataFrame({"N_opt": [1.0, 2.0]}, index=[1.0, 2.0])),
        "prediction": scaling.prediction_figure(EPOCH, 1e12, family(BUDGETS["book"].scaling, range(1, 21)),
                                                trained={"N": 1e4, "final_val": 2.5}),
        "feedback loop": sampling.curve_figure({"a": pd.DataFrame({"mean": [0.2, 0.3], "lo": [0.1, 0.2],
                                                                   "hi": [0.3, 0.4]}, index=[1, 2])}, "r", "p"),
        "frontier": sampling.frontier_figure(table, {"top-k": ["k=1", "k=2"]}),
    }


@pytest.mark.parametrize("name", list(house_figures()))
def test_figures_name_only_colours_that_have_a_dark_twin(name):
    """A colour the map does not know keeps its light value in dark mode (black lines vanish there)."""
    unknown = explicit_colors(house_figures()[name]) - set(style.COLOR_PAIRS)
    assert not unknown, f"the {name} figure names {unknown}: use lmlab.display.style's COLORS, INK or GREY"


def test_tables_carry_their_unwrapped_texts_for_the_page_to_rewrap():
    fig = sampling.samples_grid({"r1": {"a": "one two\nthree", "b": "x"}, "r2": {"a": "y", "b": "z"}}, wrap=5)
    assert fig.data[0].meta == {"wrap": 5, "texts": [None, ["one two\nthree", "y"], ["x", "z"]]}
    table = sampling.samples_table(["ab cd"], wrap=3)
    assert table.meta == {"wrap": 3, "texts": [["ab cd"]]} and list(table.cells.values[0]) == ["ab<br>cd"]
