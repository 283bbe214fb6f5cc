"""Chapter 5's figures and live panel: the distribution a sampler draws from, and the text it writes."""

import textwrap

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmlab.display.figures import axes_of, slider_figure
from lmlab.display.panels import SLIDER, k_slider, live_panel
from lmlab.display.style import COLORS, GREY, INK, wrap_meta
from lmlab.sampling import sampling_frame


def char_label(c: str) -> str:
    """A character as a readable bar label: spaces and line breaks made visible."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(c, c)


def distribution_traces(probs, filtered, chars: str, top: int = 24, **axes) -> list[go.Bar]:
    """The model's next-character probabilities (grey) and what the sampler draws from after
    temperature and truncation (colour), for the `top` most likely characters."""
    order = sorted(range(len(chars)), key=lambda i: -float(probs[i]))[:top]
    x = [char_label(chars[i]) for i in order]
    return [go.Bar(x=x, y=[float(probs[i]) for i in order], name="model (T = 1)", marker_color=GREY, **axes),
            go.Bar(x=x, y=[float(filtered[i]) for i in order], name="sampled from", marker_color=COLORS[0], **axes)]


def wrapped(text: str, width: int = 56) -> str:
    """A text as table-cell HTML: its line breaks kept, and lines longer than `width` characters
    broken (plotly wraps a cell's text by itself only when it holds no line break)."""
    return "<br>".join("<br>".join(textwrap.wrap(line, width)) for line in text.split("\n"))


def samples_table(samples: list[str], wrap: int = 56, header: str = "samples", **axes) -> go.Table:
    """Generated texts, one row each, line breaks kept, lines wrapped at `wrap` characters."""
    return go.Table(header=dict(values=[header], align="left"),
                    cells=dict(values=[[wrapped(s, wrap) for s in samples]], align="left",
                               font=dict(family="monospace", size=12)), meta=wrap_meta([list(samples)], wrap), **axes)


def sampling_figure(frames: dict, chars: str, label: str, prompt: str, active: int = 0, **layout) -> go.Figure:
    """The sampler's distribution after `prompt` (top) and samples (bottom), one frame per slider
    value: `frames` maps a value to (probabilities, filtered probabilities, samples), or to
    {column title: (probabilities, filtered probabilities, samples)} to set samplers side by side.

    The figure is as tall as the longest frame's samples (plotly clips a table's texts that do not
    fit its box, and the last sample was lost); the prompt is named in the samples' header, not in
    the x title, which wrapped into the table on a phone; the legend sits in the top right corner
    of the (right) bars, which hold the least likely characters, not above them, where it met the
    figure's and the columns' titles."""
    frames = {value: frame if isinstance(frame, dict) else {"": frame} for value, frame in frames.items()}
    titles = list(next(iter(frames.values())))
    n, wrap = len(titles), 56 // len(titles)
    texts = [samples for columns in frames.values() for _, _, samples in columns.values()]
    table_px = 32 + max(17 * sum(wrapped(t, wrap).count("<br>") + 1 for t in s) + 12 * len(s) for s in texts)
    bars_px, gap_px = 280, 70  # the bars, and the x axis's ticks and title under them
    plot_px = bars_px + gap_px + table_px
    fig = make_subplots(2, n, specs=[[{"type": "xy"}] * n, [{"type": "table"}] * n], row_heights=[bars_px, table_px],
                        vertical_spacing=gap_px / plot_px, horizontal_spacing=0.06,
                        subplot_titles=[*titles, *[""] * n] if n > 1 else None)
    header = f"samples after …{prompt[-30:]!r}"
    traces = {}
    for value, columns in frames.items():  # every frame in the legend: only the shown one draws
        for col, (p, f, s) in enumerate(columns.values(), 1):
            axes = axes_of(col)
            bars = [bar.update(showlegend=col == 1) for bar in distribution_traces(p, f, chars, **axes)]
            table = fig.get_subplot(2, col)
            traces.setdefault(value, []).extend([*bars, samples_table(s, wrap, header,
                                                                      domain=dict(x=table.x, y=table.y))])
    margin = dict(t=90 if n > 1 else 60, b=130 if len(frames) > 1 else 30)  # the columns' titles; the slider
    layout = {"height": margin["t"] + plot_px + margin["b"], "margin": margin, **layout}
    fig = slider_figure(traces, label, fig=fig, active=active, **layout)
    fig.update_xaxes(title_text="next character")
    fig.update_yaxes(ticklabelstandoff=4)  # the 0 clear of the first bar's label on a phone
    fig.update_yaxes(title_text="probability", col=1)
    fig.update_layout(barmode="overlay", hovermode="closest", title_x=0.01,
                      legend=dict(x=1, xanchor="right", y=1, yanchor="top"))
    return fig


def sampling_panel(model, tokenizer, prompt: str, chars: int, samples: int) -> widgets.VBox:
    """A prompt box, sliders for k ("all": no top-k), temperature (0: greedy), top-p and min-p
    (1 and 0 keep everything), and a seed: every change redraws the filtered distribution and
    generates fresh samples."""
    controls = {"prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False),
                "k": k_slider(),
                "temperature": widgets.FloatSlider(1.0, min=0, max=2, step=0.05, description="temperature", **SLIDER),
                "top_p": widgets.FloatSlider(1.0, min=0.05, max=1, step=0.05, description="top-p", **SLIDER),
                "min_p": widgets.FloatSlider(0.0, min=0, max=0.5, step=0.01, description="min-p", **SLIDER),
                "seed": widgets.BoundedIntText(0, min=0, max=2**31 - 1, description="seed")}

    def update(prompt, k, temperature, top_p, min_p, seed):
        name = f"k = {k or 'all'}, T = {temperature}, top-p = {top_p}, min-p = {min_p}"
        frame = sampling_frame(model, tokenizer, prompt or "\n", chars, samples, seed, top_k=k,
                               temperature=temperature, top_p=top_p, min_p=min_p)
        return sampling_figure({name: frame}, tokenizer.chars, "", prompt, title=name)

    return live_panel(update, controls)


def samples_grid(grid: dict, corner: str = "", wrap: int = 28, **layout) -> go.Figure:
    """Texts in a grid, as a table: `grid` maps a row title to {column title: text}; lines are
    wrapped at `wrap` characters, and the figure is as tall as its longest cells."""
    columns = list(next(iter(grid.values())))
    cells = {row: [wrapped(grid[row][col], wrap) for col in columns] for row in grid}
    lines = sum(max(c.count("<br>") + 1 for c in row) for row in cells.values())
    fig = go.Figure(go.Table(columnwidth=[1] + [3] * len(columns),
                             header=dict(values=[corner, *columns], align="left"),
                             cells=dict(values=[[f"<b>{row}</b>" for row in grid], *zip(*cells.values(), strict=True)],
                                        align="left", font=dict(family="monospace", size=12)),
                             meta=wrap_meta([None, *([grid[row][col] for row in grid] for col in columns)], wrap)))
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=120 + 17 * lines + 12 * len(grid))
    fig.update_layout(**layout)
    return fig


def family_legend(families: dict) -> dict:
    """`families` (a family's name -> its settings, in order) with each name saying where the family
    runs, first setting to last ("top-k: k = 1 → pure sampling"): the legend then tells which end
    of each line is which, where a text label at every point would pile up on a phone."""
    return {f"{family}: {names[0]} → {names[-1]}" if len(names) > 1 else f"{family}: {names[0]}": names
            for family, names in families.items()}


def frontier_figure(table, families: dict, x: str = "NLL", ys: tuple[str, ...] = ("distinct-4 chars",),
                    reference: str = "human", intervals=None, x_title: str | None = None, **layout) -> go.Figure:
    """Decoding settings as points (x, y), one panel per column in `ys`, stacked and sharing the x
    axis (one x title, at the bottom: side by side, every panel's x title ran into the next one's);
    each family's settings joined in order, its dots growing from its first setting to its last,
    and the reference text as a star: where each family travels between dull and wild. A point
    names its setting on hover. `intervals` (a table with "<column> lo" and "<column> hi" beside
    each column) draws every point's interval as error bars."""
    fig = make_subplots(len(ys), 1, shared_xaxes=True, vertical_spacing=0.05)

    def bars(rows, col):
        if intervals is None:
            return None
        part = intervals.loc[rows.index]
        return dict(type="data", array=part[f"{col} hi"] - rows[col], arrayminus=rows[col] - part[f"{col} lo"],
                    thickness=1, width=2)

    for r, y in enumerate(ys, 1):
        hover = "<b>%{text}</b><br>" + x + " %{x:.3f}<br>" + y + " %{y:.3f}<extra></extra>"
        for i, (family, names) in enumerate(families.items()):
            rows, color = table.loc[names], COLORS[i % len(COLORS)]
            sizes = [6 + 6 * j / max(1, len(names) - 1) for j in range(len(names))]  # dull end small, wild end big
            fig.add_scatter(x=rows[x], y=rows[y], name=family, text=list(names), mode="lines+markers",
                            hovertemplate=hover, marker=dict(size=sizes, color=color), line=dict(color=color),
                            error_x=bars(rows, x), error_y=bars(rows, y),
                            legendgroup=family, showlegend=r == 1, row=r, col=1)
        ref = table.loc[[reference]]
        fig.add_scatter(x=ref[x], y=ref[y], name=f"{reference} text", text=[reference], mode="markers",
                        hovertemplate=hover, marker=dict(symbol="star", size=16, color=INK),
                        error_x=bars(ref, x), error_y=bars(ref, y),
                        legendgroup=reference, showlegend=r == 1, row=r, col=1)
        fig.update_yaxes(title_text=y, row=r, col=1)
    fig.update_xaxes(title_text=x_title or f"{x} of the samples (nats per character)", row=len(ys), col=1)
    fig.update_layout(hovermode="closest", **layout)
    return fig


def curve_figure(curves: dict, x_title: str, y_title: str, **layout) -> go.Figure:
    """Lines with interval bands: `curves` maps a name to a table with columns mean, lo and hi,
    indexed by x (e.g. the probability of a phrase at each repetition, with its bootstrap interval)."""
    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        fig.add_scatter(x=list(c.index), y=c["mean"], name=name, mode="lines+markers", line=dict(color=color),
                        error_y=dict(type="data", array=c["hi"] - c["mean"], arrayminus=c["mean"] - c["lo"]))
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, hovermode="x unified", **layout)
    return fig
