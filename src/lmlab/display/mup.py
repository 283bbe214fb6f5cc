"""Chapter 2's figures: the coordinate check and the LR sweep, SP beside μP."""

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmlab.display.figures import axes_of, slider_figure
from lmlab.display.style import COLORS, INK

PARAM_NAMES = {"sp": "SP", "mup": "μP"}


def coord_figure(coords, title: str = "Coordinate check") -> go.Figure:
    """SP beside μP: each layer's mean |output| against width, with a slider over the step t.

    `coords` is `lmlab.mup.coord_check`'s table for one or both parametrizations;
    seeds are averaged. Flat lines mean the layer's size does not depend on width.
    """
    mean = coords.groupby(["param", "t", "layer", "width"], sort=False).l1.mean().reset_index()
    params = list(dict.fromkeys(mean.param))
    layers = list(dict.fromkeys(mean.layer))
    fig = make_subplots(1, len(params), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[PARAM_NAMES.get(p, p) for p in params])
    frames = {}
    for t in sorted(mean.t.unique()):
        frames[t] = []
        for col, param in enumerate(params, 1):
            for i, layer in enumerate(layers):
                d = mean[(mean.param == param) & (mean.t == t) & (mean.layer == layer)]
                frames[t].append(go.Scatter(
                    x=d.width, y=d.l1, name=layer, legendgroup=layer, showlegend=col == 1, mode="lines+markers",
                    line=dict(color=COLORS[i % len(COLORS)]), **axes_of(col),
                    hovertemplate=f"{layer}<br>width %{{x}}<br>%{{y:.3g}}"))
    fig = slider_figure(frames, "step t", fig=fig, active=min(1, len(frames) - 1), title=title,
                        yaxis_title="mean |output| (log scale)", height=460)
    widths = sorted(mean.width.unique())
    fig.update_xaxes(type="log", tickvals=widths, ticktext=[str(w) for w in widths], title_text="width")
    fig.update_yaxes(type="log")
    return fig


def lr_sweep_figure(sweep, metric: str = "avg_train", title: str = "Loss against learning rate",
                    yaxis_title: str = "training loss averaged over the run") -> go.Figure:
    """SP beside μP: loss against log2 LR, one curve per width; a slider highlights one width.

    `sweep` is `lmlab.transfer.lr_sweep`'s table; each curve's lowest point is
    marked with a star.
    """
    params = list(dict.fromkeys(sweep.param))
    widths = sorted(sweep.width.unique())
    fig = make_subplots(1, len(params), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[PARAM_NAMES.get(p, p) for p in params])
    background, frames = [], {}
    for i, width in enumerate(widths):
        color = COLORS[i % len(COLORS)]
        frames[width] = []
        for col, param in enumerate(params, 1):
            d = sweep[(sweep.param == param) & (sweep.width == width)].sort_values("log2_lr")
            axes = axes_of(col)
            low = d.loc[d[metric].idxmin()]
            background.append(go.Scatter(x=d.log2_lr, y=d[metric], mode="lines", line=dict(color=color, width=1),
                                         opacity=0.35, showlegend=False, hoverinfo="skip", **axes))
            frames[width] += [
                go.Scatter(x=d.log2_lr, y=d[metric], name=f"width {width}", legendgroup=str(width),
                           showlegend=col == 1, mode="lines+markers", line=dict(color=color, width=3), **axes),
                go.Scatter(x=[low.log2_lr], y=[low[metric]], mode="markers", showlegend=False,
                           marker=dict(symbol="star", size=16, color=color, line=dict(color=INK, width=1)),
                           hovertemplate=f"width {width}: best log2 LR %{{x}}, loss %{{y:.3f}}", **axes)]
    fig = slider_figure(frames, "width", background=background, fig=fig, active=len(widths) - 1, title=title,
                        yaxis_title=yaxis_title, height=460)
    fig.update_xaxes(title_text="log2 learning rate", dtick=1)
    return fig
