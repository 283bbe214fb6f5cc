"""Chapter 2's figures and its rules table: what μP changes with width, the coordinate check, the LR
sweep with its seed bands, the σ and α_out sweeps across width, and the proxy → target comparison."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmlab import mup
from lmlab.display.figures import axes_of, legend_below, slider_figure
from lmlab.display.style import COLORS, INK

PARAM_NAMES = {"sp": "SP (constant σ)", "sp_fanin": "SP (fan-in)", "mup": "μP",
               "mup-hidden_lr": "μP without η/m (control)", "mup-attention_scale": "μP with 1/√d_head (control)",
               "mup-output_mult": "μP without α_out/m (control)"}
STATS = {"l1": "mean |x_t|", "delta": "mean |x_t − x_1|"}  # y-axis titles (log axes); the title says what


# Row titles of the rules table: a layer, and what of it a rule scales
LAYERS = {"embedding": "embeddings", "hidden": "hidden matrices", "readout": "readout",
          "attention": "attention logits", "vector": "LayerNorm"}
QUANTITIES = {"init": "init std", "lr": "Adam LR", "mult": "multiplier"}
NAMED = {("embedding", "mult"): "input multiplier", ("readout", "mult"): "output multiplier",
         ("attention", "mult"): "scale"}


def rules_table(params: tuple = ("sp", "mup"), rules: dict | None = None) -> pd.DataFrame:
    """What `lmlab.mup.RULES` (or `rules`, of the same form) changes with width between the
    parametrizations `params`, written out: one row per quantity on which they do not all agree,
    one column per parametrization, each cell a formula in m = width / base_width. By default SP
    with one σ at every width beside μP: the table of μP's rules. What is the same in all (the
    embeddings' and the LayerNorms' rules) is left out.

    The book prints this table from the rules the model and the optimizer read, so text and code
    cannot disagree. It holds only the differences, in short formulas, with one header row, so that
    it fits a page's column on a desktop and on a phone (a column per parametrization more would not).
    """
    rules = mup.RULES if rules is None else rules
    rows = {}
    for kind in mup.KINDS:
        for col in mup.COLUMNS:
            exponents = [getattr(rules[param][kind], col) for param in params]
            if len(set(exponents)) == 1:
                continue
            symbol, _, note = mup.BASE[kind][col].partition(" ")  # "σ (or 0)": the rule acts on σ
            cells = [mup.SPELLED.get((kind, col, e)) or " ".join(filter(None, (mup._times_m(symbol, e), note)))
                     for e in exponents]
            names = [mup.NAMES.get(param, param) for param in params]
            rows[f"{LAYERS[kind]}: {NAMED.get((kind, col), QUANTITIES[col])}"] = dict(zip(names, cells, strict=True))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns.name = "quantity"  # the header row's first cell, over the row titles
    return table


def coord_figure(coords, title: str = "Coordinate check", stat: str = "l1", first_t: int = 1,
                 cols: int = 2) -> go.Figure:
    """One panel per parametrization, `cols` to a row: each layer's `stat` (`l1` or `delta`) against
    width, with a slider over the step t from `first_t` on.

    `coords` is `lmlab.experiments.coord_check.coord_check`'s table for one or more
    parametrizations; seeds are averaged. Flat lines mean the layer's size does not depend on width.
    Four panels in one row leave each too narrow for its title and its widths on a phone, so they
    wrap into rows, all on one y scale; the slider sits clear of the bottom row's axis title.
    """
    if stat not in STATS:
        raise ValueError(f"stat must be one of {sorted(STATS)}, got {stat!r}")
    coords = coords[coords.t >= first_t]
    mean = coords.groupby(["param", "t", "layer", "width"], sort=False)[stat].mean().reset_index()
    params = list(dict.fromkeys(mean.param))
    layers = list(dict.fromkeys(mean.layer))
    cols = max(1, min(cols, len(params)))
    rows = -(-len(params) // cols)
    fig = make_subplots(rows, cols, shared_yaxes="all", horizontal_spacing=0.08, vertical_spacing=0.17,
                        subplot_titles=[PARAM_NAMES.get(p, p) for p in params])
    frames = {}
    for t in sorted(mean.t.unique()):
        frames[t] = []
        for i, param in enumerate(params, 1):
            for j, layer in enumerate(layers):
                d = mean[(mean.param == param) & (mean.t == t) & (mean.layer == layer)]
                frames[t].append(go.Scatter(
                    x=d.width, y=d[stat], name=layer, legendgroup=layer, showlegend=i == 1, mode="lines+markers",
                    line=dict(color=COLORS[j % len(COLORS)]), **axes_of(i),
                    hovertemplate=f"{layer}<br>width %{{x}}<br>%{{y:.3g}}"))
    fig = slider_figure(frames, "step t", fig=fig, active=min(1, len(frames) - 1), title=title,
                        height=220 + 230 * rows, margin=dict(t=75))  # room for the title over the subplot titles
    widths = sorted(mean.width.unique())
    fig.update_xaxes(type="log", tickvals=widths, ticktext=[str(w) for w in widths], tickangle=0)
    fig.update_yaxes(type="log")
    fig.update_annotations(font_size=14)  # the subplot titles, a size below the axis titles
    for i in range(1, len(params) + 1):  # "width" under each column's lowest panel, the y title on each row
        axes = {"row": (i - 1) // cols + 1, "col": (i - 1) % cols + 1}
        if i + cols > len(params):
            fig.update_xaxes(title_text="width", **axes)
        if axes["col"] == 1:
            fig.update_yaxes(title_text=STATS[stat], **axes)
    if fig.layout.sliders:  # below the axis title, not on it
        fig.layout.sliders[0].pad.t = 64
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
    `lmlab.experiments.transfer.optima`) as a star with its ± 2 SE interval. Panels are titled by their
    value of `panels` only where there are several: one panel's name belongs in `title`."""
    keys = list(dict.fromkeys(runs[panels]))
    fig = make_subplots(1, len(keys), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[PARAM_NAMES.get(k, str(k)) for k in keys] if len(keys) > 1 else None)
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
                      interval: str = "mean ± 2 SE over fresh seeds", reference: str | None = None,
                      xaxis_title: str = "loss (nats per character)", digits: int = 3) -> go.Figure:
    """A dot plot of `table` (index: the settings; columns `mean`, `half`, the ± interval's half-width,
    and optionally `n`, the runs behind each mean): one row per setting, its mean as a dot with the
    interval as a line, the setting's name and value written above it. `interval` says what the
    interval is (and over how many seeds), in the title; a row of one run (`n` 1, or `half` NaN) is
    drawn as a hollow dot with no interval, and its label says so. `reference` names the row every
    other is compared with: its mean is drawn as a dotted mark at every row.

    Dots, not bars: a bar's length reads as the quantity from zero, so bars on an axis cut well
    above zero (as a loss axis must be to show differences of a few hundredths) exaggerate them.
    The labels sit above their rows, across the plot's full width, so that long setting names take no
    margin from the axis on a phone."""
    n = len(table)
    runs = table["n"] if "n" in table else [np.nan] * n
    fig = go.Figure()
    for i, ((name, row), count) in enumerate(zip(table.iterrows(), runs, strict=True)):
        single = count == 1 or not np.isfinite(row["half"])
        half = 0.0 if single else float(row["half"])
        color = COLORS[1] if name == reference else COLORS[0]
        value = f"{row['mean']:.{digits}f}" + (" (1 run, no interval)" if single else f" ± {half:.{digits}f}")
        fig.add_trace(go.Scatter(
            x=[row["mean"]], y=[i], mode="markers", showlegend=False, name=str(name),
            marker=dict(size=11, color=color, symbol="circle-open" if single else "circle",
                        line=dict(width=2, color=color)),
            error_x=dict(type="data", array=[half], visible=not single, color=color, thickness=2, width=6),
            hovertemplate=f"{name}<br>{value}<extra></extra>"))
        mark = " (dotted marks)" if name == reference else ""
        fig.add_annotation(x=0, xref="paper", y=i, yref="y", yshift=11, xanchor="left", yanchor="bottom",
                           align="left", showarrow=False, text=f"{name}{mark}: {value}")
    halves = np.nan_to_num(table["half"].to_numpy(dtype=float))
    low, high = float((table["mean"] - halves).min()), float((table["mean"] + halves).max())
    pad = max(0.08 * (high - low), 10.0 ** -digits)
    for i in range(n if reference is not None else 0):  # the reference's mean at every row, under no label
        fig.add_shape(type="line", x0=table.loc[reference, "mean"], x1=table.loc[reference, "mean"], y0=i - 0.14,
                      y1=i + 0.3, line=dict(color=COLORS[1], dash="dot", width=1.5), layer="below")
    fig.update_layout(title=f"{title}: {interval}", xaxis_title=xaxis_title, height=140 + 72 * n,
                      hovermode="closest", margin=dict(l=20, r=20),
                      xaxis=dict(range=[low - pad, high + pad], zeroline=False),
                      yaxis=dict(range=[n - 0.5, -0.9], showticklabels=False, showgrid=False, zeroline=False))
    return fig


# The μP ladder's rungs, as its slider and table name them
RUNGS = {"sp": "SP", "sp_fanin": "+ fan-in init", "sp_fanin_lr": "+ hidden η/m", "mup_no_attn": "+ readout 1/m",
         "mup": "μP"}


def lr_word(shift) -> str:
    """What an optimum's move (a `lmlab.claims.Interval`, in log2 LR) says: it stays within one
    doubling either way, moves down or up by more than one, or neither is resolved."""
    if -1 < shift.low and shift.high < 1:
        return "stays"
    return "moves down" if shift.high < -1 else "moves up" if shift.low > 1 else "not resolved"


def ladder_table(spreads: pd.DataFrame, shifts: dict, threshold: float = 2.0) -> pd.DataFrame:
    """One row per rung of `lmlab.mup.LADDER`: what it adds, its coordinate check (`spreads`, from
    `lmlab.experiments.coord_check.spreads`: the layers' largest spread across widths, which layer,
    passed at ≤ `threshold`, and the attention logits' growth) and its best LR's move across width
    (`shifts`: rung → `lmlab.claims.Interval` in log2 LR, with `lr_word`'s verdict)."""
    rows = {}
    for rung, adds in mup.LADDER.items():
        s, shift = spreads.loc[rung], shifts[rung]
        verdict = "passes" if s.spread <= threshold else "fails"
        rows[RUNGS[rung]] = {"adds": adds.removeprefix("+ "),
                             "coordinate check": f"{verdict}: {s.spread:.1f}×, at {s.layer}",
                             "attention logits": f"× {s.logits_min:.2f} to {s.logits_max:.2f}",
                             "best LR moves (log2)": f"{lr_word(shift)}: {shift.estimate:+.2f} "
                                                     f"[{shift.low:+.2f}, {shift.high:+.2f}]"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "rung"
    return table


def ladder_figure(coords: pd.DataFrame, sweep: pd.DataFrame, optima: pd.DataFrame, rungs=tuple(RUNGS),
                  title: str = "The μP ladder: one width rule at a time") -> go.Figure:
    """A slider over `rungs` of `lmlab.mup.LADDER` (one rung: no slider); at each, above, the coordinate check
    (`coords`, seed means at the last step: each layer's mean |x_t − x_1| against width; flat
    passes) and below it the LR sweep (`sweep`, the seed-mean training loss against log2 LR, one
    curve per width with a ± 2 SE band, and `optima`'s stars). Both panels keep one scale over the
    rungs, so that a rung's change is the picture's change."""
    fig = make_subplots(2, 1, vertical_spacing=0.2,  # stacked: side by side, a phone has no room for both
                        subplot_titles=("coordinate check, last step (dotted: a layer each)",
                                        "training loss against LR (a width each)"))
    last = coords[coords.t == coords.t.max()].groupby(["param", "layer", "width"], sort=False).delta.mean()
    stats = sweep.groupby(["param", "width", "log2_lr"]).avg_train.agg(["mean", "std", "size"]).reset_index()
    stats["half"] = 2 * stats["std"] / np.sqrt(stats["size"])
    widths, layers = sorted(stats.width.unique()), list(dict.fromkeys(last.index.get_level_values("layer")))
    checked = sorted(last.index.get_level_values("width").unique())
    frames = {}
    for rung in rungs:
        traces = []
        for j, layer in enumerate(layers):
            d = last.loc[rung, layer]
            traces.append(go.Scatter(x=d.index, y=d.values, name=layer, mode="lines+markers", legendgroup=layer,
                                     line=dict(color=COLORS[j % len(COLORS)], dash="dot"),
                                     hovertemplate=f"{layer}<br>width %{{x}}<br>%{{y:.3g}}<extra></extra>"))
        for i, width in enumerate(widths):
            d, color = stats[(stats.param == rung) & (stats.width == width)].sort_values("log2_lr"), COLORS[i]
            traces += [t.update(**axes_of(2)) for t in _band(d.log2_lr, d["mean"], d.half, color, axes_of(2),
                                                            f"width {width}", True, f"{rung}-{width}")]
            o = optima[(optima.param == rung) & (optima.width == width)]
            if len(o):
                star = dict(symbol="star", size=14, color=color, line=dict(color=INK, width=1))
                traces.append(go.Scatter(x=o.opt, y=o.loss, mode="markers", showlegend=False, marker=star, **axes_of(2),
                                         hovertemplate=f"width {width}: optimum %{{x:.2f}}<extra></extra>"))
        frames[RUNGS[rung]] = traces
    top = dict(text=title, y=0.985, yanchor="top")  # the title at the very top, the slider (if any) under it
    room = 210 if len(rungs) > 1 else 110
    fig = slider_figure(frames, "rung", fig=fig, title=top, height=950 + room - 110, margin=dict(t=room, r=30))
    legend_below(fig, under=60)  # the layers (dotted) and widths in rows under the plot: no legend title,
    # which a horizontal legend puts beside its first row, past a phone's edge
    low = float(stats["mean"].min())
    fig.update_xaxes(type="log", tickvals=checked, ticktext=[str(w) for w in checked], title_text="width", row=1)
    fig.update_yaxes(type="log", title_text=STATS["delta"], row=1)
    fig.update_xaxes(title_text="log2 learning rate", dtick=1, row=2)
    fig.update_yaxes(range=[low - 0.05, low + 1.0], title_text="run-average training loss", row=2)
    if fig.layout.sliders:
        # above the panels, under the title: the legend below wraps into more rows on a phone
        fig.layout.sliders[0].update(y=1.04, yanchor="bottom", pad=dict(t=0, b=10))
    return fig
