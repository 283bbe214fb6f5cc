"""Chapter 6's live panel, greedy beside top-k, so that the seed moves one column only; its
results table, each mean beside its interval in one cell; and MC dropout's bars, text by text."""

import functools
import textwrap

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from lmlab.display.panels import k_slider, live_panel
from lmlab.display.sampling import sampling_figure
from lmlab.display.style import COLORS
from lmlab.sampling import sampling_frame
from lmlab.stats import t_half_width

MC_BARS = {"nll": "loss, eval mode", "nll_mc": "loss, MC average", "entropy": "entropy",
           "mutual_info": "mutual information"}  # `Uncertainty.means` names -> the bars' names


def randomness_panel(models: dict, tokenizer, prompt: str, chars: int, samples: int) -> widgets.VBox:
    """Chapter 6's two kinds of randomness, live: pick a trained model (`models` maps a name to a
    GPT), k and a seed; greedy samples and top-k samples of the prompt are drawn side by side, so
    moving the seed changes one column and leaves the other alone."""
    controls = {"model": widgets.ToggleButtons(options=list(models), description="model"),
                "k": k_slider(10),
                "seed": widgets.BoundedIntText(0, min=0, max=2**31 - 1, description="seed"),
                "prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False)}

    @functools.lru_cache(maxsize=32)
    def greedy(model, prompt):  # depends on neither k nor the seed: moving them redraws one column
        return sampling_frame(models[model], tokenizer, prompt, chars, samples, temperature=0)

    def update(model, k, seed, prompt):
        columns = {"greedy (T = 0)": greedy(model, prompt or "\n"), f"top-{k or 'all'}, seed {seed}":
                   sampling_frame(models[model], tokenizer, prompt or "\n", chars, samples, seed, top_k=k)}
        return sampling_figure({"": columns}, tokenizer.chars, "", prompt, title=model)

    return live_panel(update, controls)


def with_half_widths(means: pd.DataFrame, half_widths: pd.DataFrame, digits: int = 3,
                     level: str = "over seeds") -> pd.DataFrame:
    """Each row of means, and under it a row "±" of the half-widths of their intervals: one column
    per measure, so that a table of five measures fits a desktop page's width (a column of
    half-widths beside each column of means ran out of its box), and every number in a cell of
    its own (a cell "mean ± half-width" ran into the next one's). `level` names the index level
    that says which row is which. A row `half_widths` lacks (real text: no seeds) has no "±" row,
    and a missing value reads "—"."""
    half_widths = half_widths.reindex(index=means.index, columns=means.columns)

    def text(values):
        return ["—" if pd.isna(v) else f"{v:.{digits}f}" for v in values]

    keys, rows = [], []
    for key, mean, half in zip(means.index, means.to_numpy(), half_widths.to_numpy(), strict=True):
        key = key if isinstance(key, tuple) else (key,)
        keys.append((*key, "mean"))
        rows.append(text(mean))
        if not pd.isna(half).all():
            keys.append((*key, "±"))
            rows.append(text(half))
    index = pd.MultiIndex.from_tuples(keys, names=[*means.index.names, level])
    return pd.DataFrame(rows, index=index, columns=means.columns)


def mc_figure(per_seed: pd.DataFrame, title: str, height: int = 440) -> go.Figure:
    """MC dropout's measures (`lmlab.experiments.dropout.mc_by_text`, stacked over seeds: index
    (seed, text)) as grouped bars: for each text, the loss in eval mode and of the MC average, the
    entropy and the mutual information, each the mean over the seeds with its 95 % t-interval."""
    missing = set(MC_BARS) - set(per_seed.columns)
    if missing or per_seed.index.nlevels != 2:
        raise ValueError(f"per_seed must be indexed by (seed, text) and hold {sorted(MC_BARS)}, "
                         f"missing {sorted(missing)} with {per_seed.index.nlevels} index levels")
    by_text = per_seed[list(MC_BARS)].groupby(level=1, sort=False)
    mean, half = by_text.mean(), by_text.agg(t_half_width)
    ticks = ["<br>".join(textwrap.wrap(str(text), 10)) for text in mean.index]  # upright, apart on a phone
    fig = go.Figure([go.Bar(x=ticks, y=mean[col], name=name, marker_color=COLORS[i],
                            error_y=dict(type="data", array=half[col].fillna(0)))
                     for i, (col, name) in enumerate(MC_BARS.items())])
    fig.update_layout(barmode="group", title=title, yaxis_title="nats per character", hovermode="closest",
                      height=height)
    return fig
