"""Chapter 3's figures and tables: log-log plots of loss, L(N) at one budget beside the others, the
compute frontier, IsoFLOP profiles, a prediction beside its measurement, what a fitted law predicts,
and the fitted exponents under both parameter counts.

Every figure here fits a phone's column: a short title, and the legend in rows under the plot
(`legend_below`), never in a column at its right, where it takes a third of a phone's width."""

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
from plotly.subplots import make_subplots

from lmlab.checks import check_positive_int, check_range
from lmlab.display.figures import legend_below, slider_figure
from lmlab.display.style import COLORS, GREY, INK
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
                  label=lambda value: str(value), left_out: str | None = None) -> go.Figure:
    """`y` against `x` on log-log axes, one coloured line of markers per value of `by`;
    `fits` maps a value of `by` to a callable drawn as a dashed line over that group's x (the points
    not left out). `left_out` names a boolean column of `df`: those points are drawn hollow, and a
    legend entry says they are left out of the fits."""
    if left_out is not None and left_out not in df.columns:
        raise ValueError(f"left_out must name a column of df, got {left_out!r}; it has {list(df.columns)}")
    fig = go.Figure()
    for i, (value, group) in enumerate(df.sort_values(x).groupby(by, sort=True)):
        color = COLORS[i % len(COLORS)]
        out = group[left_out].to_numpy(bool) if left_out else np.zeros(len(group), bool)
        fig.add_trace(go.Scatter(x=group[x], y=group[y], name=label(value), mode="markers+lines",
                                 line=dict(color=color, width=1),
                                 marker=dict(size=7, symbol=np.where(out, "circle-open", "circle"))))
        if fits and value in fits:
            kept = group[~out] if (~out).any() else group
            xs = np.geomspace(kept[x].min(), kept[x].max(), 50)
            fig.add_trace(go.Scatter(x=xs, y=fits[value](xs), name=f"fit, {label(value)}", mode="lines",
                                     line=dict(color=color, dash="dash", width=2), hoverinfo="skip"))
    if left_out is not None and df[left_out].any():
        fig.add_trace(go.Scatter(x=[None], y=[None], name="hollow: left out of the fits", mode="markers",
                                 marker=dict(size=7, symbol="circle-open", color=GREY)))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, xaxis_type="log",
                      yaxis_type="log", hovermode="closest", height=520)
    return legend_below(fig)


def frontier_figure(points: pd.DataFrame, front: pd.DataFrame, fit, title: str = "The compute frontier") -> go.Figure:
    """Each run's loss against its compute C (log-log), one line per size N: `points` has a row per (size,
    budget), with C, loss, N and left_out (drawn hollow); and the frontier's fit `fit` (a callable of C)
    dashed over the compute of the frontier `front` (`lmlab.experiments.laws.frontier`, column flops)."""
    fig = loglog_figure(points, "C", "loss", "N", title=title, left_out="left_out", xaxis_title="training FLOPs C",
                        label=lambda n: f"N = {size_label(n)}")
    xs = np.geomspace(front.flops.min(), front.flops.max(), 50)
    fig.add_scatter(x=xs, y=fit(xs), name="frontier fit", mode="lines", line=dict(color=INK, dash="dash"))
    return legend_below(fig)  # again: the legend now has the fit's entry too


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
                        height=560, hovermode="closest")
    fig.update_xaxes(type="log")
    if not frames:  # no budget has a profile (the `smoke` budget): say so, with no empty axes to misread
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.add_annotation(text="no compute budget has an IsoFLOP profile at this budget", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return legend_below(fig)


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
    return legend_below(fig)


def compact_table(table) -> Styler:
    """A table (a DataFrame or its Styler) in a font a page's column holds, with no index column
    added: the chapter's one table style."""
    styler = table if isinstance(table, Styler) else table.style
    return styler.set_table_styles([{"selector": "", "props": "font-size: 0.875em"}], overwrite=False)


# ---------------------------------------------------------------- the chapter's two main figures


def size_figure(points: pd.DataFrame, d_fit: float, fit, title: str = "Loss against model size",
                xaxis_title: str = "non-embedding parameters N", left_out=()) -> go.Figure:
    """L(N) in two stacked panels sharing N (log-log). Top: the seed means at the data budget
    `d_fit` (every size's longest common budget) with ± 2 seed standard errors, in the text colour,
    and the fitted law `fit` (a callable of N) dashed. Bottom: every other budget, one line each, with
    `d_fit`'s line again in the text colour for reference: the budgets where data, not parameters,
    limit the loss.

    `points` has a row per (size, budget): N, tokens, loss and se (`lmlab.experiments.scaling.seed_means`).
    The budgets in `left_out` (values of tokens) are dotted and named as left out of the fits."""
    for column in ("N", "tokens", "loss", "se"):
        if column not in points.columns:
            raise ValueError(f"points must have a column {column!r}; it has {list(points.columns)}")
    top = points[points.tokens == d_fit].sort_values("N")
    if top.N.nunique() < 2:
        raise ValueError(f"d_fit={d_fit!r} must be a budget of at least 2 sizes in points")
    at_fit = f"D = {size_label(d_fit)}"
    fig = make_subplots(2, 1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=[f"{at_fit} characters, every size", "every budget (D in characters)"])
    fig.add_scatter(x=top.N, y=top.loss, mode="markers", name=f"{at_fit}: mean ± 2 SE", legendgroup="fit",
                    marker=dict(color=INK, size=9), row=1, col=1,
                    error_y=dict(type="data", array=2 * top.se.fillna(0).to_numpy(float), color=INK))
    xs = np.geomspace(top.N.min(), top.N.max(), 60)
    fig.add_scatter(x=xs, y=fit(xs), mode="lines", name="fitted L(N)", line=dict(color=COLORS[0], dash="dash", width=2),
                    hoverinfo="skip", row=1, col=1)
    palette = [COLORS[i] for i in (1, 2, 3, 4, 5, 7, 6)]  # not the fit's blue; the navy, nearest the ink, last
    others = [d for d in sorted(points.tokens.unique()) if d != d_fit]
    for i, d in enumerate([*others, d_fit]):
        group = points[points.tokens == d].sort_values("N")
        color, out = INK if d == d_fit else palette[i % len(palette)], d in set(left_out)
        fig.add_scatter(x=group.N, y=group.loss, mode="lines+markers",
                        name=f"D = {size_label(d)}" + (", not fitted" if out else ""),
                        legendgroup="fit" if d == d_fit else None, showlegend=bool(d != d_fit),
                        line=dict(color=color, width=3 if d == d_fit else 1.5, dash="dot" if out else None),
                        marker=dict(size=6, symbol="circle-open" if out else "circle"), row=2, col=1)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text=xaxis_title, row=2, col=1)
    fig.update_yaxes(type="log", title_text="loss (nats/char)")
    fig.update_layout(title=title, height=720, hovermode="closest", margin=dict(t=90))
    return legend_below(fig)


def interval_figure(table: pd.DataFrame, title: str, reference: str | None = None,
                    xaxis_title: str = "loss (nats per character)", digits: int = 3) -> go.Figure:
    """A dot plot of `table` (index: what each row is; columns `value`, `lo`, `hi`, `interval`, which
    says what the interval is, and optionally `symbol`, a plotly marker, diamond unless given; the
    `reference` row is a circle): one row per entry, each in its own colour, its value as a dot and
    its interval as a line (a bootstrap's percentile interval need not hold the estimate, so the two
    are drawn apart), the name, value and range written above it across the plot's width (no margin
    taken from a phone's axis); a row whose interval is undefined (NaN) gets a hollow dot alone. The
    `reference` row (a measurement) is also drawn as a dotted line through every row, so each other
    row reads as its distance from it. Dots, not bars from zero: the axis is cut far above 0."""
    for column in ("value", "lo", "hi", "interval"):
        if column not in table.columns:
            raise ValueError(f"table must have a column {column!r}; it has {list(table.columns)}")
    if reference is not None and reference not in table.index:
        raise ValueError(f"reference must be a row of table, got {reference!r}; rows are {list(table.index)}")
    if not np.isfinite(table.value.to_numpy(float)).all() or (table.lo > table.hi).any():
        raise ValueError(f"every row needs a finite value and lo ≤ hi (or both NaN), got\n{table}")
    fig = go.Figure()
    palette = iter([COLORS[i] for i in (0, 3, 2, 4, 5, 7, 6)] * len(table))  # red is the reference's
    for i, (name, row) in enumerate(table.iterrows()):
        color = COLORS[1] if name == reference else next(palette)
        symbol = "circle" if name == reference else row.get("symbol", "diamond")
        symbol = symbol if isinstance(symbol, str) else "diamond"  # a row left NaN in a `symbol` column
        spans = bool(np.isfinite([row.lo, row.hi]).all())
        shown = f"{row.value:.{digits}f}" + (f" ({row.lo:.{digits}f}–{row.hi:.{digits}f})" if spans else "")
        hover = f"{name}: {shown}" + (f"<br>{row.interval}" if spans else "") + "<extra></extra>"
        if spans:
            fig.add_scatter(x=[row.lo, row.hi], y=[i, i], mode="lines", line=dict(color=color, width=3),
                            showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=[row.value], y=[i], mode="markers", showlegend=False, name=str(name), hovertemplate=hover,
                        marker=dict(size=12, color=color, line=dict(color=color, width=2),
                                    symbol=symbol + ("" if spans else "-open")))
        fig.add_annotation(x=0, xref="paper", y=i, yref="y", yshift=11, xanchor="left", yanchor="bottom",
                           align="left", showarrow=False, text=f"{name}: {shown}")
    if reference is not None:
        x = table.loc[reference, "value"]
        fig.add_shape(type="line", x0=x, x1=x, y0=-0.6, y1=len(table) - 0.4, layer="below",
                      line=dict(color=COLORS[1], dash="dot", width=1.5))
    ends = np.concatenate([table[c].to_numpy(float) for c in ("value", "lo", "hi")])
    low, high = float(np.nanmin(ends)), float(np.nanmax(ends))
    pad = max(0.08 * (high - low), 10.0 ** -digits)
    fig.update_layout(title=title, xaxis_title=xaxis_title, height=140 + 72 * len(table), hovermode="closest",
                      margin=dict(l=20, r=20), xaxis=dict(range=[low - pad, high + pad], zeroline=False),
                      yaxis=dict(range=[len(table) - 0.5, -0.9], showticklabels=False, showgrid=False,
                                 zeroline=False))
    return fig


def conventions_table(tables: dict, labels: dict, digits: int = 3) -> Styler:
    """Fitted quantities under several parameter counts, side by side: `tables` maps a column's name
    (a count, or their difference) to its `lmlab.experiments.readings.interval_table`; `labels` maps
    each row to show (a statistic) to its name on the page. A cell reads the estimate (to `digits`
    significant figures) over its range, "lo to hi" (one figure fewer; the estimate alone where the
    resamples left the range undefined), and "—" where that column has no such statistic."""
    check_positive_int("digits", digits)
    unknown = [k for k in labels if not any(k in t.index for t in tables.values())]
    if unknown:
        raise ValueError(f"no statistic {unknown} in any of the tables")

    def number(x, digits=digits):  # significant figures, thousands in full; a fit's bound, 1e-10, reads as 0
        return f"{x:,.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}" if abs(x) >= 10.0**-digits else "0"

    def cell(table, key):
        if key not in table.index:
            return "—"
        row = table.loc[key]
        if not np.isfinite([row.lo, row.hi]).all():
            return number(row.estimate)
        ends = max(digits - 1, 1)  # a range to one figure fewer than its estimate: it fits a phone's column
        return f"{number(row.estimate)}<br>({number(row.lo, ends)} to {number(row.hi, ends)})"

    shown = pd.DataFrame({name: [cell(t, k) for k in labels] for name, t in tables.items()},
                         index=list(labels.values()))
    return compact_table(shown.rename_axis("fitted").reset_index().style.hide(axis="index"))
