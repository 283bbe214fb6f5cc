"""Generic figures: the static slider figure every twin is built on, and loss curves of runs.

A chapter's interactive idea comes in two forms: a live panel of ipywidgets that
re-runs real code, and its static twin, the same experiment computed over a grid
and drawn as one plotly figure with plotly's own slider, which works in the HTML
book with no kernel.
"""

import math

import plotly.graph_objects as go
from IPython.display import display
from plotly.subplots import make_subplots

from lmlab.checks import check_range
from lmlab.display.plumbing import displayable
from lmlab.display.style import COLORS, GREY


def axes_of(col: int) -> dict:
    """The axis names of subplot column `col` (1-based), for a trace's xaxis/yaxis."""
    suffix = str(col) if col > 1 else ""
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def slider_figure(frames: dict, label: str, background=(), active: int = 0, fig: go.Figure | None = None,
                  **layout) -> go.Figure:
    """One figure whose plotly slider shows one group of traces at a time.

    `frames` maps each slider value to the traces drawn at that value;
    `background` traces stay visible at every value. With fewer than two values
    there is nothing to slide over, and the figure has no slider. Pass `fig` (e.g. from
    `make_subplots`) to draw into subplots; each trace names its own axes.
    """
    fig = fig if fig is not None else go.Figure()
    fig.add_traces(list(background))
    owners = [None] * len(fig.data)
    for i, traces in enumerate(frames.values()):
        for trace in traces:
            fig.add_trace(trace.update(visible=i == active))
            owners.append(i)
    steps = [dict(label=str(value), method="update", args=[{"visible": [o is None or o == i for o in owners]}])
             for i, value in enumerate(frames)]
    fig.update_layout(**layout)
    if len(steps) >= 2:  # a slider with nothing to slide over is not drawn at all
        # below an x-axis title the slider needs more room, or its current value sits on the title
        pad = 64 if fig.layout.xaxis.title.text else 40
        fig.update_layout(sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix=f"{label} = "),
                                        pad=dict(t=pad))])
    return fig


def loss_traces(hist, name: str, color: str, train: bool = True, **line) -> list[go.Scatter]:
    """Validation loss (solid) and, optionally, training loss in eval mode (dashed) of one run."""
    traces = [go.Scatter(x=hist.eval_step, y=hist.eval_val, name=f"{name} val", mode="lines+markers",
                         line=dict(color=color, **line), marker=dict(size=5))]
    if train:
        traces.append(go.Scatter(x=hist.eval_step, y=hist.eval_train, name=f"{name} train", mode="lines",
                                 line=dict(color=color, dash="dash", **line)))
    return traces


def loss_figure(histories: dict, title: str = "Loss during training", train: bool = True) -> go.Figure:
    """The loss curves of several runs, one colour each."""
    fig = go.Figure()
    for i, (name, hist) in enumerate(histories.items()):
        fig.add_traces(loss_traces(hist, str(name), COLORS[i % len(COLORS)], train))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss (nats per character)")
    return fig


class LiveLossPlot:
    """A training callback that redraws the loss curves in place after every evaluation."""

    def __init__(self, title: str = "Loss during training"):
        self.title, self.handle = title, None

    def __call__(self, hist) -> None:
        fig = displayable(loss_figure({"": hist}, self.title))
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)


def runs_slider_figure(panels: dict, label: str, active: int = 0, **layout) -> go.Figure:
    """Loss curves of runs that differ in one setting, with a slider over it: the chosen run's
    validation (solid) and training (dashed, eval mode) curves in colour, every other run's
    validation curve in grey. `panels` maps a subplot title to {setting: History}, every panel
    with the same settings; one panel draws one plain figure."""
    titles = list(panels)
    fig = make_subplots(1, len(titles), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=titles if len(titles) > 1 else None)
    background, frames = [], {}
    for col, runs in enumerate(panels.values(), 1):
        for i, (value, hist) in enumerate(runs.items()):
            background.append(go.Scatter(x=hist.eval_step, y=hist.eval_val, line=dict(color=GREY),
                                         showlegend=False, hoverinfo="skip", **axes_of(col)))
            traces = loss_traces(hist, f"{label} {value}", COLORS[i % len(COLORS)])
            frames.setdefault(value, []).extend(t.update(showlegend=col == 1, **axes_of(col)) for t in traces)
    fig = slider_figure(frames, label, background=background, fig=fig, active=active, **layout)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss (nats per character)", col=1)
    return fig


def loss_figure_with_others(name: str, hist, others: dict) -> go.Figure:
    """Run `name`'s loss curves in colour over every other run's validation curve in grey."""
    fig = go.Figure([go.Scatter(x=h.eval_step, y=h.eval_val, name=f"{n} val", mode="lines",
                                line=dict(color=GREY, width=1.5)) for n, h in others.items() if n != name])
    fig.add_traces(loss_traces(hist, name, COLORS[0]))
    fig.update_layout(title=name, xaxis_title="step", yaxis_title="loss (nats per character)")
    return fig


# ---------------------------------------------------------------- layout for a phone's column

PHONE_COLUMN = 370  # px a figure's legend has on a 390-px phone, its margins taken off
PAGE_COLUMN = 700  # px it has in the book's column on a desktop (on a phone, book/assets/figure-theme.js lays the
# legend out again in rows under the plot and adds the height they take)
CHAR_PX, ENTRY_PX, ROW_PX = 7.5, 45, 22  # a legend text's width per character, an entry's symbol and gap, a row


def legend_rows(names, width: float = PHONE_COLUMN) -> int:
    """The rows a horizontal legend of entries `names` takes `width` px wide (entries laid left to
    right and wrapped, each its symbol plus about `CHAR_PX` per character): generous, never short."""
    check_range("width", width, 0, math.inf, low_open=True, high_open=True)
    rows, used = 1, 0.0
    for name in names:
        entry = ENTRY_PX + CHAR_PX * len(str(name))
        if used and used + entry > width:
            rows, used = rows + 1, 0.0
        used += entry
    return rows


def legend_below(fig: go.Figure, under: float | None = None, width: float = PAGE_COLUMN) -> go.Figure:
    """Put `fig`'s legend in rows along the bottom of the figure, under the x title (and the slider,
    if any: `under` px of bottom margin are left for them, 60 without a slider, 150 with), and make the
    bottom margin tall enough for as many rows as the legend takes `width` px wide (the book's column;
    on a phone the book's figure-theme.js adds the rows a narrower legend takes). Returns `fig`."""
    under = (150 if fig.layout.sliders else 60) if under is None else under
    check_range("under", under, 0, math.inf, high_open=True)
    names = [t.name for t in fig.data if t.name and t.showlegend is not False and t.visible is not False]
    fig.update_layout(margin=dict(b=under + ROW_PX * legend_rows(names, width) + 8),
                      legend=dict(orientation="h", x=0, xanchor="left", xref="container", y=0, yanchor="bottom",
                                  yref="container"))
    return fig
