"""Chapter 3's figures: log-log plots of loss, IsoFLOP profiles, and what a fitted law predicts."""

import math

import numpy as np
import plotly.graph_objects as go

from lmlab.checks import check_positive_int, check_range
from lmlab.display.figures import slider_figure
from lmlab.display.style import COLORS, GREY
from lmlab.experiments.laws import family_optimum

UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def size_label(value: float, digits: int = 3) -> str:
    """A size in `digits` significant figures with K, M, B or T: 850 -> "850", 2048 -> "2.05K",
    1_048_576 -> "1.05M". For legends and labels ("N = 2.05K"): a fixed "{n / 1e3:.0f}K" turns a
    size under 500 into "0K" and rounds 1.5K and 2.4K alike, where significant figures never lose a size."""
    value = value.item() if isinstance(value, np.generic) else value  # numpy's integers too
    check_range("value", value, -math.inf, math.inf, low_open=True, high_open=True)
    check_positive_int("digits", digits)
    rounded = float(f"{value:.{digits}g}")  # round first, so that 999,999 becomes 1M, not 1000K
    size, unit = next(((size, unit) for size, unit in UNITS if abs(rounded) >= size), (1, ""))
    if abs(rounded) >= 1000 * UNITS[0][0]:  # past 999T: powers of ten
        return f"{rounded:.{digits}g}"
    return np.format_float_positional(rounded / size, precision=digits, fractional=False, trim="-") + unit


def loglog_figure(df, x: str, y: str, by: str, fits: dict | None = None, title: str = "",
                  xaxis_title: str = "", yaxis_title: str = "loss (nats per character)",
                  label=lambda value: str(value)) -> go.Figure:
    """`y` against `x` on log-log axes, one coloured line of markers per value of `by`;
    `fits` maps a value of `by` to a callable drawn as a dashed line over that group's x."""
    fig = go.Figure()
    for i, (value, group) in enumerate(df.sort_values(x).groupby(by, sort=True)):
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=group[x], y=group[y], name=label(value), mode="markers+lines",
                                 line=dict(color=color, width=1), marker=dict(size=7)))
        if fits and value in fits:
            xs = np.geomspace(group[x].min(), group[x].max(), 50)
            fig.add_trace(go.Scatter(x=xs, y=fits[value](xs), name=f"fit, {label(value)}", mode="lines",
                                     line=dict(color=color, dash="dash", width=2), hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, xaxis_type="log",
                      yaxis_type="log", hovermode="closest")
    return fig


def isoflop_figure(profiles, optima, title: str = "IsoFLOP profiles") -> go.Figure:
    """Loss against N along each compute budget's IsoFLOP line, its parabola in log N and its
    bottom; a slider picks the budget, the other budgets stay in grey."""
    background, frames = [], {}
    for C, group in profiles.groupby("C", sort=True):
        background.append(go.Scatter(x=group.N, y=group.L, mode="lines", line=dict(color=GREY), showlegend=False,
                                     hoverinfo="skip"))
        c2, c1, c0 = np.polyfit(np.log(group.N), group.L, 2)
        xs = np.geomspace(group.N.min(), group.N.max(), 60)
        n_opt = optima.loc[C, "N_opt"]
        frames[f"{C:.2g}"] = [
            go.Scatter(x=group.N, y=group.L, name="runs (interpolated to C)", mode="markers",
                       marker=dict(color=COLORS[0], size=9)),
            go.Scatter(x=xs, y=c2 * np.log(xs) ** 2 + c1 * np.log(xs) + c0, name="parabola in log N", mode="lines",
                       line=dict(color=COLORS[1], dash="dash")),
            go.Scatter(x=[n_opt], y=[c2 * np.log(n_opt) ** 2 + c1 * np.log(n_opt) + c0], name="optimum N",
                       mode="markers", marker=dict(color=COLORS[1], size=14, symbol="star"))]
    fig = slider_figure(frames, "C (FLOPs)", background=background, active=len(frames) // 2, title=title,
                        xaxis_title="non-embedding parameters N", yaxis_title="loss (nats per character)",
                        height=460, hovermode="closest")
    fig.update_xaxes(type="log")
    if not frames:  # no budget has a profile (the `smoke` budget): say so, with no empty axes to misread
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.add_annotation(text="no compute budget has an IsoFLOP profile at this budget", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def prediction_figure(fit, C: float, members, trained: dict | None = None) -> go.Figure:
    """The loss a fitted law `fit(N, D)` predicts along the IsoFLOP line of compute C over the model
    family `members` (`lmlab.experiments.scaling.family`): each size gets D = C / its FLOPs per
    token, the chapter's own count. Its optimum (`family_optimum`) is starred, and a run `trained`
    on it ({"N", "final_val"}) drawn beside it."""
    n = np.geomspace(members.N.min(), members.N.max(), 80)
    per_token = np.exp(np.interp(np.log(n), np.log(members.N), np.log(members.flops_per_token)))
    best = family_optimum(C, fit, members)
    fig = go.Figure([go.Scatter(x=n, y=fit(n, C / per_token), name="predicted by the fit", mode="lines"),
                     go.Scatter(x=[best["N_opt"]], y=[best["L_opt"]],
                                name=f"optimum: N {best['N_opt']:,.0f}, D {best['D_opt']:,.0f}", mode="markers",
                                marker=dict(size=14, symbol="star"))])
    if trained is not None:
        fig.add_scatter(x=[trained["N"]], y=[trained["final_val"]], name="trained just now", mode="markers",
                        marker=dict(size=12, color=COLORS[1]))
    fig.update_layout(title=f"C = {C:.2g} FLOPs", xaxis_type="log", xaxis_title="non-embedding parameters N",
                      yaxis_title="loss (nats per character)", hovermode="closest")
    return fig
