"""The house plot style, static slider figures for the HTML book, and live panels for Jupyter and Colab.

A chapter's interactive idea comes in two forms: a live panel of ipywidgets that
re-runs real code, and its static twin, the same experiment computed over a grid
and drawn as one plotly figure with plotly's own slider, which works in the
HTML book with no kernel. During a book build (`LMLAB_BOOK_BUILD=1`) figures
render as HTML that expects `Plotly` on the page (the book serves plotly.min.js
once from its own assets), and panels show their static twin instead of dead widgets.
"""

import functools
import sys
import textwrap

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import HTML, Markdown, clear_output, display
from plotly.io._base_renderers import MimetypeRenderer

from lmlab.budget import building_book
from lmlab.sampling import next_token_probs, sample

COLORS = ["#1f5f8b", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#e07a5f"]

pio.templates["lmlab"] = go.layout.Template(layout=dict(
    font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#222"),
    colorway=COLORS, margin=dict(l=60, r=20, t=50, b=50), hovermode="x unified",
    legend=dict(bgcolor="rgba(255,255,255,0.7)"),
))
pio.templates.default = "plotly_white+lmlab"


class BookRenderer(MimetypeRenderer):
    """A plotly figure as an HTML div plus the script that draws it, without plotly.js itself."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, default_width="100%", validate=False)
        return {"text/html": html}


if building_book():
    pio.renderers["lmlab_book"] = BookRenderer()
    pio.renderers.default = "lmlab_book"


def in_colab() -> bool:
    return "google.colab" in sys.modules


class _MimeBundle:
    """A figure seen only through its mime bundle. Plotly figures display themselves
    (`_ipython_display_`), which makes IPython ignore `display_id` (every update would add a
    new figure) and makes its formatter return nothing (glue would store nothing)."""

    def __init__(self, fig: go.Figure):
        self.bundle = pio.renderers._build_mime_bundle(fig.to_dict())  # activates renderers once, not per call

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.bundle


def displayable(fig: go.Figure):
    """What to hand to `display`: in Colab an HTML page that carries its own plotly.js, because
    Colab's own renderer fails inside widget outputs ("Plotly is not defined"); elsewhere the
    figure's mime bundle for the current renderer."""
    if in_colab():
        return HTML(fig.to_html(include_plotlyjs="cdn", full_html=False))
    return _MimeBundle(fig)


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
    if len(steps) >= 2:  # a slider with nothing to slide over is not drawn at all
        fig.update_layout(sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix=f"{label} = "),
                                        pad=dict(t=40))])
    fig.update_layout(**layout)
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


def live_panel(update, controls: dict, note: str = "") -> widgets.VBox:
    """Widgets that call `update(**values)` whenever a control moves and show the figure it returns."""
    out, status = widgets.Output(), widgets.HTML(note)

    def refresh(_=None):
        values = {name: w.value for name, w in controls.items()}
        status.value = "running…"
        with out:
            try:
                fig = update(**values)  # a progress bar may show in `out` while this trains
            except ValueError as err:  # e.g. a character the model never saw, typed into a prompt box
                status.value = f"<span style='color:#b3261e'>{err}</span>"
                return
            clear_output(wait=True)  # the bar goes with the old figure: a closed bar's view reads "model not found"
            display(displayable(fig))
        status.value = note

    for w in controls.values():
        w.observe(refresh, names="value")
    refresh()
    return widgets.VBox([widgets.HBox(list(controls.values()) + [status], layout=widgets.Layout(flex_flow="row wrap")),
                         out])


def panel(make_live, static: go.Figure | None = None, hint: str = "") -> None:
    """Show the live panel that `make_live()` builds, or, in a book build, its static twin and a hint."""
    if building_book():
        if static is not None:
            display(static)
        display(Markdown(f"*{hint}*" if hint else "*Open this notebook in Colab or Jupyter to use the live panel.*"))
    else:
        display(make_live())


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's `glue`, which hands a value to the book's prose; a no-op where myst-nb is
    absent (Colab), since there is no book page to paste into there."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy and torch scalars: the book formats their plain-text form as a number
    myst_glue(name, _MimeBundle(value) if isinstance(value, go.Figure) else value, display)


PARAM_NAMES = {"sp": "SP", "mup": "μP"}


def coord_figure(coords, title: str = "Coordinate check") -> go.Figure:
    """SP beside μP: each layer's mean |output| against width, with a slider over the step t.

    `coords` is `lmlab.mup.coord_check`'s table for one or both parametrizations;
    seeds are averaged. Flat lines mean the layer's size does not depend on width.
    """
    from plotly.subplots import make_subplots

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
                    line=dict(color=COLORS[i % len(COLORS)]), xaxis=f"x{col if col > 1 else ''}",
                    yaxis=f"y{col if col > 1 else ''}", hovertemplate=f"{layer}<br>width %{{x}}<br>%{{y:.3g}}"))
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
    from plotly.subplots import make_subplots

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
            axes = dict(xaxis=f"x{col if col > 1 else ''}", yaxis=f"y{col if col > 1 else ''}")
            low = d.loc[d[metric].idxmin()]
            background.append(go.Scatter(x=d.log2_lr, y=d[metric], mode="lines", line=dict(color=color, width=1),
                                         opacity=0.35, showlegend=False, hoverinfo="skip", **axes))
            frames[width] += [
                go.Scatter(x=d.log2_lr, y=d[metric], name=f"width {width}", legendgroup=str(width),
                           showlegend=col == 1, mode="lines+markers", line=dict(color=color, width=3), **axes),
                go.Scatter(x=[low.log2_lr], y=[low[metric]], mode="markers", showlegend=False,
                           marker=dict(symbol="star", size=16, color=color, line=dict(color="black", width=1)),
                           hovertemplate=f"width {width}: best log2 LR %{{x}}, loss %{{y:.3f}}", **axes)]
    fig = slider_figure(frames, "width", background=background, fig=fig, active=len(widths) - 1, title=title,
                        yaxis_title=yaxis_title, height=460)
    fig.update_xaxes(title_text="log2 learning rate", dtick=1)
    return fig


def loglog_figure(df, x: str, y: str, by: str, fits: dict | None = None, title: str = "",
                  xaxis_title: str = "", yaxis_title: str = "loss (nats per character)",
                  label=lambda value: str(value)) -> go.Figure:
    """`y` against `x` on log-log axes, one coloured line of markers per value of `by`;
    `fits` maps a value of `by` to a callable drawn as a dashed line over that group's x."""
    import numpy as np

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
    import numpy as np

    background, frames = [], {}
    for C, group in profiles.groupby("C", sort=True):
        background.append(go.Scatter(x=group.N, y=group.L, mode="lines", line=dict(color="#ccc"), showlegend=False,
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
    return fig


def prediction_figure(fit, C: float, n_range: tuple[float, float], trained: dict | None = None) -> go.Figure:
    """The loss a Chinchilla fit (`lmlab.scaling.Chinchilla`) predicts along the IsoFLOP line of
    compute C (D = C / 6N) over `n_range`, its optimum, and a run `trained` on it ({"N", "final_val"})."""
    import numpy as np

    from lmlab.scaling import compute_optimal

    n = np.geomspace(*n_range, 80)
    n_opt, d_opt = compute_optimal(C, fit)
    fig = go.Figure([go.Scatter(x=n, y=fit(n, C / (6 * n)), name="predicted by the fit", mode="lines"),
                     go.Scatter(x=[n_opt], y=[fit(n_opt, d_opt)], name=f"optimum: N {n_opt:,.0f}, D {d_opt:,.0f}",
                                mode="markers", marker=dict(size=14, symbol="star"))])
    if trained is not None:
        fig.add_scatter(x=[trained["N"]], y=[trained["final_val"]], name="trained just now", mode="markers",
                        marker=dict(size=12, color=COLORS[1]))
    fig.update_layout(title=f"C = {C:.2g} FLOPs", xaxis_type="log", xaxis_title="non-embedding parameters N",
                      yaxis_title="loss (nats per character)", hovermode="closest")
    return fig


def button_panel(draw, slider: widgets.Widget, label: str, act, summary) -> widgets.VBox:
    """A slider whose value `draw(value)` turns into a figure, and a button that runs the slow
    `act(value)` (it trains) and shows `draw(value, result)` with `summary(result)` beside it."""
    button, out, note = widgets.Button(description=label), widgets.Output(), widgets.HTML()

    def show(_=None, result=None):
        with out:
            clear_output(wait=True)
            display(displayable(draw(slider.value, result)))

    def run(_):
        note.value = "running…"
        result = act(slider.value)
        note.value = summary(result)
        show(result=result)

    slider.observe(show, names="value")
    button.on_click(run)
    show()
    return widgets.VBox([widgets.HBox([slider, button, note]), out])


def runs_slider_figure(panels: dict, label: str, active: int = 0, **layout) -> go.Figure:
    """Loss curves of runs that differ in one setting, with a slider over it: the chosen run's
    validation (solid) and training (dashed, eval mode) curves in colour, every other run's
    validation curve in grey. `panels` maps a subplot title to {setting: History}, every panel
    with the same settings; one panel draws one plain figure."""
    from plotly.subplots import make_subplots

    titles = list(panels)
    fig = make_subplots(1, len(titles), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=titles if len(titles) > 1 else None)
    background, frames = [], {}
    for col, runs in enumerate(panels.values(), 1):
        axes = dict(xaxis=f"x{col if col > 1 else ''}", yaxis=f"y{col if col > 1 else ''}")
        for i, (value, hist) in enumerate(runs.items()):
            background.append(go.Scatter(x=hist.eval_step, y=hist.eval_val, line=dict(color="lightgray"),
                                         showlegend=False, hoverinfo="skip", **axes))
            traces = loss_traces(hist, f"{label} {value}", COLORS[i % len(COLORS)])
            frames.setdefault(value, []).extend(t.update(showlegend=col == 1, **axes) for t in traces)
    fig = slider_figure(frames, label, background=background, fig=fig, active=active, **layout)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss (nats per character)", col=1)
    return fig


def training_panel(train, controls: dict, title, note: str = "") -> widgets.VBox:
    """Widgets that retrain whenever a control moves and redraw the loss curves after every
    evaluation. `train(callback, **values)` trains, calling `callback(history)` after each
    evaluation, and returns the finished History; `title(**values)` names a run. Finished runs
    stay on the figure as grey validation curves, so a reader compares settings by eye."""
    out, status, done = widgets.Output(), widgets.HTML(note), {}

    def draw(name: str, hist) -> None:
        fig = go.Figure([go.Scatter(x=h.eval_step, y=h.eval_val, name=f"{n} val", mode="lines",
                                    line=dict(color="#bbb", width=1.5)) for n, h in done.items() if n != name])
        fig.add_traces(loss_traces(hist, name, COLORS[0]))
        fig.update_layout(title=name, xaxis_title="step", yaxis_title="loss (nats per character)")
        with out:
            clear_output(wait=True)
            display(displayable(fig))

    def refresh(_=None):
        values = {name: w.value for name, w in controls.items()}
        name = title(**values)
        status.value = "training…"
        done[name] = train(lambda hist: draw(name, hist), **values)
        draw(name, done[name])
        status.value = note

    for w in controls.values():
        w.observe(refresh, names="value")
    refresh()
    return widgets.VBox([widgets.HBox(list(controls.values()) + [status]), out])


def char_label(c: str) -> str:
    """A character as a readable bar label: spaces and line breaks made visible."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(c, c)


def distribution_traces(probs, filtered, chars: str, top: int = 24, **axes) -> list[go.Bar]:
    """The model's next-character probabilities (grey) and what the sampler draws from after
    temperature and truncation (colour), for the `top` most likely characters."""
    order = sorted(range(len(chars)), key=lambda i: -float(probs[i]))[:top]
    x = [char_label(chars[i]) for i in order]
    return [go.Bar(x=x, y=[float(probs[i]) for i in order], name="model (T = 1)", marker_color="#c8c8c8", **axes),
            go.Bar(x=x, y=[float(filtered[i]) for i in order], name="sampled from", marker_color=COLORS[0], **axes)]


def wrapped(text: str, width: int = 56) -> str:
    """A text as table-cell HTML: its line breaks kept, and lines longer than `width` characters
    broken (plotly wraps a cell's text by itself only when it holds no line break)."""
    return "<br>".join("<br>".join(textwrap.wrap(line, width)) for line in text.split("\n"))


def samples_table(samples: list[str], wrap: int = 56, **axes) -> go.Table:
    """Generated texts, one row each, line breaks kept, lines wrapped at `wrap` characters."""
    return go.Table(header=dict(values=["samples"], align="left", fill_color="#eef2f5"),
                    cells=dict(values=[[wrapped(s, wrap) for s in samples]], align="left",
                               font=dict(family="monospace", size=12)), **axes)


def sampling_figure(frames: dict, chars: str, label: str, prompt: str, active: int = 0, **layout) -> go.Figure:
    """The sampler's distribution after `prompt` (top) and samples (bottom), one frame per slider
    value: `frames` maps a value to (probabilities, filtered probabilities, samples), or to
    {column title: (probabilities, filtered probabilities, samples)} to set samplers side by side."""
    from plotly.subplots import make_subplots

    frames = {value: frame if isinstance(frame, dict) else {"": frame} for value, frame in frames.items()}
    titles = list(next(iter(frames.values())))
    n = len(titles)
    fig = make_subplots(2, n, specs=[[{"type": "xy"}] * n, [{"type": "table"}] * n], row_heights=[0.4, 0.6],
                        vertical_spacing=0.08, horizontal_spacing=0.06,
                        subplot_titles=[*titles, *[""] * n] if n > 1 else None)
    traces = {}
    for value, columns in frames.items():  # every frame in the legend: only the shown one draws
        for col, (p, f, s) in enumerate(columns.values(), 1):
            axes = dict(xaxis=f"x{col if col > 1 else ''}", yaxis=f"y{col if col > 1 else ''}")
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


def sampling_frame(model, tokenizer, prompt: str, chars: int, samples: int, seed: int = 0, **filters) -> tuple:
    """One position of a sampling slider: the model's distribution after `prompt`, the one the
    sampler draws from under `filters`, and `samples` continuations of `chars` characters. The
    prompt keeps its last ctx − chars characters, so prompt and continuation fit the KV cache;
    when the continuation alone outgrows ctx, the window slides anyway, and it keeps ctx / 2."""
    ctx = model.config.ctx
    prompt = prompt[-(ctx - chars if chars < ctx else ctx // 2) :]
    return (next_token_probs(model, tokenizer, prompt), next_token_probs(model, tokenizer, prompt, **filters),
            sample(model, tokenizer, prompt, chars, samples, seed, **filters))


def sampling_panel(model, tokenizer, prompt: str, chars: int, samples: int) -> widgets.VBox:
    """A prompt box, sliders for k (0 = all), temperature (0 = greedy), top-p and min-p, and a
    seed: every change redraws the filtered distribution and generates fresh samples."""
    slider = dict(continuous_update=False, style={"description_width": "initial"})
    k_options = [(str(k), k) for k in (*range(1, 21), 30, 40, 50)] + [("all", 0)]
    controls = {"prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False),
                "k": widgets.SelectionSlider(options=k_options, value=0, description="top-k", **slider),
                "temperature": widgets.FloatSlider(1.0, min=0, max=2, step=0.05, description="temperature", **slider),
                "top_p": widgets.FloatSlider(1.0, min=0.05, max=1, step=0.05, description="top-p", **slider),
                "min_p": widgets.FloatSlider(0.0, min=0, max=0.5, step=0.01, description="min-p", **slider),
                "seed": widgets.BoundedIntText(0, min=0, max=2**31 - 1, description="seed")}

    def update(prompt, k, temperature, top_p, min_p, seed):
        name = f"k = {k or 'all'}, T = {temperature}, top-p = {top_p}, min-p = {min_p}"
        frame = sampling_frame(model, tokenizer, prompt or "\n", chars, samples, seed, top_k=k or None,
                               temperature=temperature, top_p=top_p, min_p=min_p)
        return sampling_figure({name: frame}, tokenizer.chars, "", prompt, title=name, height=760)

    return live_panel(update, controls)


def randomness_panel(models: dict, tokenizer, prompt: str, chars: int, samples: int) -> widgets.VBox:
    """Chapter 6's two kinds of randomness, live: pick a trained model (`models` maps a name to a
    GPT), k and a seed; greedy samples and top-k samples of the prompt are drawn side by side, so
    moving the seed changes one column and leaves the other alone."""
    slider = dict(continuous_update=False, style={"description_width": "initial"})
    k_options = [(str(k), k) for k in (*range(1, 21), 30, 40, 50)] + [("all", 0)]
    controls = {"model": widgets.ToggleButtons(options=list(models), description="model"),
                "k": widgets.SelectionSlider(options=k_options, value=10, description="top-k", **slider),
                "seed": widgets.BoundedIntText(0, min=0, max=2**31 - 1, description="seed"),
                "prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False)}

    @functools.lru_cache(maxsize=32)
    def greedy(model, prompt):  # depends on neither k nor the seed: moving them redraws one column
        return sampling_frame(models[model], tokenizer, prompt, chars, samples, temperature=0)

    def update(model, k, seed, prompt):
        columns = {"greedy (T = 0)": greedy(model, prompt or "\n"), f"top-{k or 'all'}, seed {seed}":
                   sampling_frame(models[model], tokenizer, prompt or "\n", chars, samples, seed, top_k=k or None)}
        return sampling_figure({"": columns}, tokenizer.chars, "", prompt, title=model, height=1100)

    return live_panel(update, controls)


def samples_grid(grid: dict, corner: str = "", wrap: int = 28, **layout) -> go.Figure:
    """Texts in a grid, as a table: `grid` maps a row title to {column title: text}; lines are
    wrapped at `wrap` characters, and the figure is as tall as its longest cells."""
    columns = list(next(iter(grid.values())))
    cells = {row: [wrapped(grid[row][col], wrap) for col in columns] for row in grid}
    lines = sum(max(c.count("<br>") + 1 for c in row) for row in cells.values())
    fig = go.Figure(go.Table(columnwidth=[1] + [3] * len(columns),
                             header=dict(values=[corner, *columns], align="left", fill_color="#eef2f5"),
                             cells=dict(values=[[f"<b>{row}</b>" for row in grid], *zip(*cells.values(), strict=True)],
                                        align="left", font=dict(family="monospace", size=12))))
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=120 + 17 * lines + 12 * len(grid))
    fig.update_layout(**layout)
    return fig


def frontier_figure(table, families: dict, x: str = "NLL", ys: tuple[str, ...] = ("distinct-4 chars",),
                    reference: str = "human", **layout) -> go.Figure:
    """Decoding settings as points (x, y), one panel per column in `ys`, each family's settings
    joined in order and the reference text as a star: where each family travels between dull and wild."""
    from plotly.subplots import make_subplots

    fig = make_subplots(1, len(ys), horizontal_spacing=0.1)
    for col, y in enumerate(ys, 1):
        hover = "%{text}<br>" + x + " %{x:.3f}<br>" + y + " %{y:.3f}<extra></extra>"
        for i, (family, names) in enumerate(families.items()):
            rows, color = table.loc[names], COLORS[i % len(COLORS)]
            fig.add_scatter(x=rows[x], y=rows[y], name=family, text=list(names), mode="lines+markers",
                            hovertemplate=hover, marker=dict(size=8, color=color), line=dict(color=color),
                            legendgroup=family, showlegend=col == 1, row=1, col=col)
        ref = table.loc[[reference]]
        fig.add_scatter(x=ref[x], y=ref[y], name=f"{reference} text", text=[reference], mode="markers",
                        hovertemplate=hover, marker=dict(symbol="star", size=16, color="#222"),
                        legendgroup=reference, showlegend=col == 1, row=1, col=col)
        fig.update_yaxes(title_text=y, row=1, col=col)
    fig.update_xaxes(title_text=f"{x} of the samples (nats per character)")
    fig.update_layout(hovermode="closest", **layout)
    return fig
