"""Chapter 2's figures: the coordinate check, the LR sweep with its seed bands, the σ and α_out
sweeps across width, and the proxy → target comparison."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmlab.display.figures import axes_of, slider_figure
from lmlab.display.style import COLORS, INK

PARAM_NAMES = {"sp": "SP (constant σ)", "sp_fanin": "SP (fan-in)", "mup": "μP",
               "mup-hidden_lr": "μP without η/m (control)", "mup-attention_scale": "μP with 1/√d_head (control)",
               "mup-output_mult": "μP without α_out/m (control)"}
STATS = {"l1": "mean |x_t| (log scale)", "delta": "mean |x_t − x_1|, what the updates changed (log scale)"}


def coord_figure(coords, title: str = "Coordinate check", stat: str = "l1", first_t: int = 1) -> go.Figure:
    """One panel per parametrization: each layer's `stat` (`l1` or `delta`) against width, with a
    slider over the step t from `first_t` on.

    `coords` is `lmlab.experiments.coord_check.coord_check`'s table for one or more
    parametrizations; seeds are averaged. Flat lines mean the layer's size does not depend on width.
    """
    if stat not in STATS:
        raise ValueError(f"stat must be one of {sorted(STATS)}, got {stat!r}")
    coords = coords[coords.t >= first_t]
    mean = coords.groupby(["param", "t", "layer", "width"], sort=False)[stat].mean().reset_index()
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
                    x=d.width, y=d[stat], name=layer, legendgroup=layer, showlegend=col == 1, mode="lines+markers",
                    line=dict(color=COLORS[i % len(COLORS)]), **axes_of(col),
                    hovertemplate=f"{layer}<br>width %{{x}}<br>%{{y:.3g}}"))
    fig = slider_figure(frames, "step t", fig=fig, active=min(1, len(frames) - 1), title=title,
                        yaxis_title=STATS[stat], height=460)
    widths = sorted(mean.width.unique())
    fig.update_xaxes(type="log", tickvals=widths, ticktext=[str(w) for w in widths], title_text="width")
    fig.update_yaxes(type="log")
    return fig


def _band(x, mean, half, color, axes, name, showlegend, group):
    """A line with a shaded band mean ± half, as two traces (the band first)."""
    x, mean, half = (np.asarray(v, dtype=float) for v in (x, mean, half))
    half = np.nan_to_num(half)
    band = go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[mean + half, (mean - half)[::-1]], fill="toself",
                      fillcolor=color, opacity=0.2, line=dict(width=0), hoverinfo="skip", showlegend=False,
                      legendgroup=group, **axes)
    line = go.Scatter(x=x, y=mean, name=name, legendgroup=group, showlegend=showlegend, mode="lines+markers",
                      line=dict(color=color, width=2), **axes)
    return [band, line]


def sweep_figure(runs, optima, x: str = "log2_lr", metric: str = "avg_train", by: str = "width",
                 title: str = "Loss against learning rate", xaxis_title: str = "log2 learning rate",
                 yaxis_title: str = "training loss averaged over the run", panels: str = "param") -> go.Figure:
    """One panel per value of `panels`: the seed-mean `metric` against `x`, one curve per value of
    `by` with a band of ± 2 standard errors over seeds, and each curve's optimum (`optima`, from
    `lmlab.experiments.transfer.optima`) as a star with its ± 2 SE interval."""
    keys = list(dict.fromkeys(runs[panels]))
    fig = make_subplots(1, len(keys), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[PARAM_NAMES.get(k, str(k)) for k in keys])
    stats = runs.groupby([panels, by, x])[metric].agg(["mean", "std", "size"]).reset_index()
    stats["half"] = 2 * stats["std"] / np.sqrt(stats["size"])
    for col, key in enumerate(keys, 1):
        axes = axes_of(col)
        for i, value in enumerate(sorted(stats[by].unique())):
            color = COLORS[i % len(COLORS)]
            d = stats[(stats[panels] == key) & (stats[by] == value)].sort_values(x)
            if d.empty:
                continue
            fig.add_traces(_band(d[x], d["mean"], d.half, color, axes, f"{by} {value}", col == 1, str(value)))
            o = optima[(optima[panels] == key) & (optima[by] == value)]
            if len(o):
                o = o.iloc[0]
                fig.add_trace(go.Scatter(
                    x=[o.opt], y=[o.loss], mode="markers", showlegend=False, legendgroup=str(value),
                    error_x=dict(type="data", array=[2 * np.nan_to_num(o.opt_se)], color=color),
                    marker=dict(symbol="star", size=15, color=color, line=dict(color=INK, width=1)),
                    hovertemplate=f"{by} {value}: optimum %{{x:.2f}} ± {2 * np.nan_to_num(o.opt_se):.2f}", **axes))
    fig.update_layout(title=title, yaxis_title=yaxis_title, height=460, hovermode="closest")
    fig.update_xaxes(title_text=xaxis_title, dtick=1)
    return fig


def comparison_figure(table, title: str = "Validation loss at the target width",
                      interval: str = "mean ± 2 SE over fresh seeds") -> go.Figure:
    """Horizontal bars of `table` (index: the settings; columns `mean` and `half`, the ± interval),
    the interval named on the axis by `interval` (what it is, and over how many seeds)."""
    fig = go.Figure(go.Bar(x=table["mean"], y=table.index, orientation="h", marker_color=COLORS[: len(table)],
                           error_x=dict(type="data", array=table["half"]),
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    for name, row in table.iterrows():  # each mean just past its interval, clear of the error bar
        fig.add_annotation(x=row["mean"] + row["half"], y=name, text=f"{row['mean']:.3f}", xanchor="left", xshift=6,
                           showarrow=False)
    low, high = (table["mean"] - table["half"]).min(), (table["mean"] + table["half"]).max()
    fig.update_layout(title=title, xaxis_title=f"loss (nats per character), {interval}",
                      xaxis_range=[low - 0.1, high + 0.1], yaxis_autorange="reversed", height=380,
                      margin=dict(l=300))
    return fig
