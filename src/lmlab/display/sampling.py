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


def samples_table(samples: list[str], wrap: int = 56, **axes) -> go.Table:
    """Generated texts, one row each, line breaks kept, lines wrapped at `wrap` characters."""
    return go.Table(header=dict(values=["samples"], align="left"),
                    cells=dict(values=[[wrapped(s, wrap) for s in samples]], align="left",
                               font=dict(family="monospace", size=12)), meta=wrap_meta([list(samples)], wrap), **axes)


def sampling_figure(frames: dict, chars: str, label: str, prompt: str, active: int = 0, **layout) -> go.Figure:
    """The sampler's distribution after `prompt` (top) and samples (bottom), one frame per slider
    value: `frames` maps a value to (probabilities, filtered probabilities, samples), or to
    {column title: (probabilities, filtered probabilities, samples)} to set samplers side by side."""
    frames = {value: frame if isinstance(frame, dict) else {"": frame} for value, frame in frames.items()}
    titles = list(next(iter(frames.values())))
    n = len(titles)
    fig = make_subplots(2, n, specs=[[{"type": "xy"}] * n, [{"type": "table"}] * n], row_heights=[0.4, 0.6],
                        vertical_spacing=0.08, horizontal_spacing=0.06,
                        subplot_titles=[*titles, *[""] * n] if n > 1 else None)
    traces = {}
    for value, columns in frames.items():  # every frame in the legend: only the shown one draws
        for col, (p, f, s) in enumerate(columns.values(), 1):
            axes = axes_of(col)
            bars = [bar.update(showlegend=col == 1) for bar in distribution_traces(p, f, chars, **axes)]
            table = fig.get_subplot(2, col)
            traces.setdefault(value, []).extend([*bars, samples_table(s, 56 // n, domain=dict(x=table.x, y=table.y))])
    fig = slider_figure(traces, label, fig=fig, active=active, **layout)
    fig.update_xaxes(title_text=f"next character after …{prompt[-40:]!r}" if n == 1 else "next character")
    fig.update_yaxes(title_text="probability", col=1)
    fig.update_layout(barmode="overlay", hovermode="closest", title_x=0.01,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02 if n == 1 else 1.05, xanchor="right", x=1))
    if n > 1:  # the legend goes between the title and the columns' titles
        fig.update_layout(margin=dict(t=110))
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
        return sampling_figure({name: frame}, tokenizer.chars, "", prompt, title=name, height=760)

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


def frontier_figure(table, families: dict, x: str = "NLL", ys: tuple[str, ...] = ("distinct-4 chars",),
                    reference: str = "human", intervals=None, x_title: str | None = None, **layout) -> go.Figure:
    """Decoding settings as points (x, y), one panel per column in `ys`, each family's settings
    joined in order and the reference text as a star: where each family travels between dull and
    wild. `intervals` (a table with "<column> lo" and "<column> hi" beside each column) draws
    every point's interval as error bars."""
    fig = make_subplots(1, len(ys), horizontal_spacing=0.1)

    def bars(rows, col):
        if intervals is None:
            return None
        part = intervals.loc[rows.index]
        return dict(type="data", array=part[f"{col} hi"] - rows[col], arrayminus=rows[col] - part[f"{col} lo"],
                    thickness=1, width=2)

    for c, y in enumerate(ys, 1):
        hover = "%{text}<br>" + x + " %{x:.3f}<br>" + y + " %{y:.3f}<extra></extra>"
        for i, (family, names) in enumerate(families.items()):
            rows, color = table.loc[names], COLORS[i % len(COLORS)]
            fig.add_scatter(x=rows[x], y=rows[y], name=family, text=list(names), mode="lines+markers",
                            hovertemplate=hover, marker=dict(size=8, color=color), line=dict(color=color),
                            error_x=bars(rows, x), error_y=bars(rows, y),
                            legendgroup=family, showlegend=c == 1, row=1, col=c)
        ref = table.loc[[reference]]
        fig.add_scatter(x=ref[x], y=ref[y], name=f"{reference} text", text=[reference], mode="markers",
                        hovertemplate=hover, marker=dict(symbol="star", size=16, color=INK),
                        error_x=bars(ref, x), error_y=bars(ref, y),
                        legendgroup=reference, showlegend=c == 1, row=1, col=c)
        fig.update_yaxes(title_text=y, row=1, col=c)
    fig.update_xaxes(title_text=x_title or f"{x} of the samples (nats per character)")
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
