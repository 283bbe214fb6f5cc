"""Chapters 4–6's figures and tables lay out so that no two texts meet: stacked panels with one x
title, legends that name what the points are, a prompt kept out of the axis titles, a results
table narrow enough for a desktop page. (The browser checks measure the drawn texts; these check
the layout that keeps them apart, and fail on the old one.)"""

import pandas as pd
import pytest
import torch

from lmlab.display import randomness as randomness_figs
from lmlab.display import sampling as sampling_figs

TABLE = pd.DataFrame({"NLL": [1.9, 1.0, 1.3, 1.5, 1.95, 2.2], "distinct-4 chars": [0.3, 0.01, 0.1, 0.2, 0.4, 0.5],
                      "real words": [0.97, 0.98, 0.9, 0.8, 0.55, 0.45], "divergence": [0.3, 0.9, 0.5, 0.4, 0.4, 0.45]},
                     index=["human", "k = 1", "k = 5", "T = 0.5", "pure sampling", "T = 1.2"])
FAMILIES = {"top-k": ["k = 1", "k = 5", "pure sampling"], "temperature": ["T = 0.5", "pure sampling", "T = 1.2"]}


def frontier(**kw):
    return sampling_figs.frontier_figure(TABLE, FAMILIES, ys=("distinct-4 chars", "real words", "divergence"), **kw)


def test_frontier_panels_are_stacked_and_share_one_x_title():
    fig = frontier(x_title="NLL")
    xs = [fig.layout[f"xaxis{i or ''}"] for i in (0, 2, 3)]
    ys = [fig.layout[f"yaxis{i or ''}"] for i in (0, 2, 3)]
    assert all(tuple(x.domain) == tuple(xs[0].domain) for x in xs)  # one column: no x title beside another
    spans = sorted(tuple(y.domain) for y in ys)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))  # rows that do not overlap
    assert [x.title.text for x in xs] == [None, None, "NLL"]  # the bottom axis alone is titled
    assert {x.matches for x in xs[:2]} == {"x3"}  # zooming one panel zooms all
    assert [y.title.text for y in ys] == ["distinct-4 chars", "real words", "divergence"]


def test_frontier_points_name_their_setting_and_grow_from_first_to_last():
    fig = frontier()
    top_k = fig.data[0]
    assert list(top_k.text) == FAMILIES["top-k"] and "%{text}" in top_k.hovertemplate
    sizes = list(top_k.marker.size)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_family_legend_names_each_familys_first_and_last_setting():
    named = sampling_figs.family_legend({**FAMILIES, "greedy": ["k = 1"]})
    assert list(named) == ["top-k: k = 1 → pure sampling", "temperature: T = 0.5 → T = 1.2", "greedy: k = 1"]
    assert list(named.values()) == [*FAMILIES.values(), ["k = 1"]]
    fig = sampling_figs.frontier_figure(TABLE, named, ys=("real words",))
    assert [t.name for t in fig.data if t.showlegend] == [*named, "human text"]


@pytest.mark.parametrize("columns", [1, 2])
def test_sampling_figure_keeps_the_prompt_out_of_the_x_title_and_the_legend_off_the_titles(columns):
    chars, probs = "ab c", torch.tensor([0.5, 0.3, 0.15, 0.05])
    frame = (probs, probs, ["ab"])
    frames = {k: frame if columns == 1 else {"p = 0": frame, "p = 0.2": frame} for k in (1, 2)}
    prompt = "a long prompt that would wrap an axis title into the table below it on a phone"
    fig = sampling_figs.sampling_figure(frames, chars, "k", prompt, title="a title")
    assert {fig.layout[f"xaxis{c if c > 1 else ''}"].title.text for c in range(1, columns + 1)} == {"next character"}
    headers = {t.header.values[0] for t in fig.data if t.type == "table"}
    assert headers == {f"samples after …{prompt[-30:]!r}"}
    legend = fig.layout.legend
    assert legend.y <= 1 and legend.yanchor == "top" and legend.xanchor == "right"  # inside the bars, not above them


def test_with_half_widths_puts_each_rows_half_widths_under_its_means():
    rows = pd.MultiIndex.from_tuples([("p = 0", "greedy"), ("p = 0", "top-10"), ("real text", "—")],
                                     names=["model", "decoder"])
    means = pd.DataFrame({"distinct-4 chars": [0.3421, 0.5, 0.58], "copied": [0.01, None, 0.002]}, index=rows)
    halves = pd.DataFrame({"distinct-4 chars": [0.0371, 0.02], "copied": [0.001, 0.0]}, index=rows[:2])
    shown = randomness_figs.with_half_widths(means, halves)
    assert list(shown.columns) == list(means.columns)  # one column per measure: no "±" columns beside
    assert list(shown.index) == [("p = 0", "greedy", "mean"), ("p = 0", "greedy", "±"), ("p = 0", "top-10", "mean"),
                                 ("p = 0", "top-10", "±"), ("real text", "—", "mean")]  # no seeds, no ± row
    assert list(shown.index.names) == ["model", "decoder", "over seeds"]
    assert shown.to_numpy().tolist() == [["0.342", "0.010"], ["0.037", "0.001"], ["0.500", "—"], ["0.020", "0.000"],
                                         ["0.580", "0.002"]]
    one = randomness_figs.with_half_widths(means.droplevel(0).iloc[:1], halves.droplevel(0), digits=1, level="")
    assert list(one.index) == [("greedy", "mean"), ("greedy", "±")] and one.iloc[1, 0] == "0.0"


def test_sampling_figure_is_as_tall_as_its_longest_samples():
    chars, probs = "ab c", torch.tensor([0.5, 0.3, 0.15, 0.05])

    def figure(*samples):
        return sampling_figs.sampling_figure({k: (probs, probs, [s]) for k, s in enumerate(samples)}, chars, "k", "x")

    short, long = figure("ab", "cd"), figure("ab", "line\n" * 40)
    assert long.layout.height - short.layout.height >= 17 * 39  # every line of the longest frame has room
    table = long.data[2].domain.y
    plot = long.layout.height - long.layout.margin.t - long.layout.margin.b
    assert (table[1] - table[0]) * plot >= 17 * 41  # in the table's own box, not scrolled out of it
    assert figure("ab", "cd", "line\n" * 40).layout.height == long.layout.height  # the longest frame counts


def test_mc_figure_draws_each_measure_per_text_with_its_t_interval():
    from lmlab.stats import t_half_width

    rows = {(seed, text): {"nll": 1.0 + i + seed / 10, "nll_mc": 1.1 + i, "entropy": 0.9 + i + seed / 20,
                           "mutual_info": 0.01 * (i + 1), "expected_entropy": 0.8}
            for seed in range(3) for i, text in enumerate(["seen", "unseen plays, backwards"])}
    per_seed = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["seed", "text"])
    fig = randomness_figs.mc_figure(per_seed, "MC dropout")
    assert [t.name for t in fig.data] == list(randomness_figs.MC_BARS.values())
    loss = fig.data[0]
    assert list(loss.y) == pytest.approx([1.1, 2.1]) and loss.x[1] == "unseen<br>plays,<br>backwards"
    assert loss.error_y.array[0] == pytest.approx(t_half_width([1.0, 1.1, 1.2]))
    with pytest.raises(ValueError, match="missing"):
        randomness_figs.mc_figure(per_seed.drop(columns="entropy"), "MC dropout")
