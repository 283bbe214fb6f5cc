"""What the reader sees: static slider figures, a live loss plot that redraws in place, panels."""

import numpy as np
import plotly.graph_objects as go
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from made_up import history

from lmlab import display as viz
from lmlab import sampling
from lmlab.display import panels, plumbing
from lmlab.display import randomness as randomness_figs
from lmlab.display import sampling as sampling_figs
from lmlab.display import scaling as scaling_figs


@pytest.fixture
def shell():
    return InteractiveShell.instance()


def test_slider_figure_shows_one_group_at_a_time():
    frames = {16: [go.Scatter(y=[1]), go.Scatter(y=[2])], 32: [go.Scatter(y=[3])]}
    fig = viz.slider_figure(frames, "width", background=[go.Scatter(y=[0])], active=1)
    assert [t.visible for t in fig.data] == [None, False, False, True]
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["16", "32"]
    assert steps[0].args[0]["visible"] == [True, True, True, False]  # the background stays visible
    assert steps[1].args[0]["visible"] == [True, False, False, True]
    assert fig.layout.sliders[0].active == 1


def test_slider_figure_with_one_value_has_no_slider():
    """A slider of one step cannot be moved and plotly draws none of zero: no slider at all."""
    for frames in ({}, {16: [go.Scatter(y=[1])]}):
        fig = viz.slider_figure(frames, "width", title="t")
        assert not fig.layout.sliders and fig.layout.title.text == "t"
        assert all(t.visible in (None, True) for t in fig.data)


def test_live_loss_plot_redraws_one_figure_in_place(shell):
    plot = viz.LiveLossPlot()
    with capture_output() as captured:
        for n in (1, 2, 3):
            plot(history(n))
    outputs = [o for o in captured.outputs if (o.transient or {}).get("display_id")]
    assert len(captured.outputs) - len(outputs) <= 1, "besides the figure, at most plotly's one-time init script"
    assert len(outputs) == 3 and all("text/html" in o.data or "application/vnd.plotly.v1+json" in o.data
                                     for o in outputs)
    ids = {o.transient["display_id"] for o in outputs}
    assert len(ids) == 1, "every redraw must target the first figure's display id"
    assert [o.update for o in outputs] == [False, True, True]


def test_panel_in_a_book_build_shows_the_static_twin_and_a_hint(shell, monkeypatch):
    monkeypatch.setenv("LMLAB_BOOK_BUILD", "1")
    built = []
    with capture_output() as captured:
        viz.panel(lambda: built.append(1), static=go.Figure(go.Scatter(y=[1])), hint="open it in Colab")
    assert not built, "no live widget may be built in a book build"
    kinds = [set(o.data) for o in captured.outputs]
    assert any("text/markdown" in k for k in kinds)
    assert "open it in Colab" in captured.outputs[-1].data["text/markdown"]


def test_panel_live_builds_the_widget(shell, monkeypatch):
    monkeypatch.delenv("LMLAB_BOOK_BUILD", raising=False)
    built = []
    with capture_output():
        viz.panel(lambda: built.append(1) or "panel")
    assert built == [1]


def test_glue_stores_a_figure_through_its_mime_bundle():
    bundle = plumbing.MimeBundle(go.Figure(go.Scatter(y=[1])))
    assert bundle._repr_mimebundle_()


def test_size_label_never_rounds_a_size_to_zero():
    cases = {850: "850", 2100: "2.1K", 2048: "2.05K", 32_768: "32.8K", 194_000: "194K", 999_999: "1M",
             1_048_576: "1.05M", 1.8e9: "1.8B", 0.5: "0.5", 0: "0", -2048: "-2.05K", np.int64(300): "300"}
    assert {v: scaling_figs.size_label(v) for v in cases} == cases
    assert scaling_figs.size_label(123_456, digits=2) == "120K"
    for n in np.geomspace(1, 1e13, 200):  # three significant figures: never "0K", never off by more than 0.5 %
        text = scaling_figs.size_label(n)
        number = float(text.rstrip("KMBT")) * {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(text[-1], 1)
        assert abs(number - n) <= 0.005 * n and not text.startswith("0"), (n, text)
    for bad in (float("nan"), float("inf"), "2K"):
        with pytest.raises(ValueError, match="value"):
            scaling_figs.size_label(bad)
    with pytest.raises(ValueError, match="digits"):
        scaling_figs.size_label(1.0, digits=0)


def test_prediction_figure_marks_the_fits_optimum():
    import pandas as pd

    from lmlab.experiments.laws import EPOCH

    N = np.geomspace(1e8, 1e11, 12)
    members = pd.DataFrame({"depth": range(12), "N": N, "N_total": 1.1 * N, "flops_per_token": 6 * N})
    fig = scaling_figs.prediction_figure(EPOCH, 1e21, members, trained={"N": 1e9, "final_val": 2.5})
    curve, star, run = fig.data
    assert min(curve.y) >= star.y[0] - 1e-6  # nothing on the line beats the optimum
    assert run.name == "trained just now" and fig.layout.title.text == "C = 1e+21 FLOPs"


def test_button_panel_draws_then_acts():
    import ipywidgets as widgets

    drawn = []
    slider = widgets.IntSlider(value=1, min=1, max=3)
    panel = viz.button_panel(lambda v, r=None: drawn.append((v, r)) or go.Figure(), slider, "go",
                             lambda v: v * 10, lambda r: f"got {r}")
    slider.value = 2
    button, note = panel.children[0].children[1:]
    button.click()
    assert drawn == [(1, None), (2, None), (2, 20)] and note.value == "got 20"


def test_runs_slider_figure_highlights_one_setting_in_every_panel():
    panels = {"little data": {0.0: history(3), 0.5: history(3)}, "much data": {0.0: history(3), 0.5: history(3)}}
    fig = viz.runs_slider_figure(panels, "p", active=1)
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["0.0", "0.5"] and slider.active == 1
    assert len(fig.data) == 4 + 2 * 2 * 2  # grey curves, then val + train per setting and panel
    visible = [t.name for t in fig.data if t.visible is not False and t.showlegend is not False]
    assert visible == ["p 0.5 val", "p 0.5 train"]  # the legend names the chosen setting once
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    one = viz.runs_slider_figure({"": {32: history(2), 64: history(2)}}, "width")
    assert not one.layout.annotations and {t.xaxis for t in one.data} == {"x"}


def test_training_panel_redraws_while_training_and_keeps_finished_runs(monkeypatch):
    import ipywidgets as widgets

    calls, shown = [], []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", shown.append)

    def fake_train(callback, p):
        h = history(0)
        for i in range(3):
            h.eval_step.append(i)
            h.eval_val.append(3.0 - i - p)
            h.eval_train.append(2.9 - i - p)
            callback(h)
        calls.append(p)
        return h

    slider = widgets.SelectionSlider(options=[0.0, 0.5], value=0.0)
    viz.training_panel(fake_train, {"p": slider}, title=lambda p: f"p = {p}")
    assert calls == [0.0] and len(shown) == 4  # one drawing per evaluation, one when done
    assert [len(f.data[0].x) for f in shown[:3]] == [1, 2, 3]  # the curve grows as it trains
    slider.value = 0.5
    assert calls == [0.0, 0.5]
    last = shown[-1]
    assert last.layout.title.text == "p = 0.5"
    assert [t.name for t in last.data] == ["p = 0.0 val", "p = 0.5 val", "p = 0.5 train"]


def test_live_panel_reports_a_bad_value_and_keeps_the_last_figure(monkeypatch):
    import ipywidgets as widgets

    shown = []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", shown.append)

    def update(prompt):
        if "z" in prompt:
            raise ValueError("prompt holds 'z', which the model never saw")
        return go.Figure(go.Bar(y=[len(prompt)]))

    box = widgets.Text(value="ab")
    panel = viz.live_panel(update, {"prompt": box}, note="ready")
    status = panel.children[0].children[-1]
    assert len(shown) == 1 and status.value == "ready"
    box.value = "az"
    assert len(shown) == 1 and "'z'" in status.value
    box.value = "abc"
    assert len(shown) == 2 and status.value == "ready" and shown[-1].data[0].y == (3,)


def test_sampling_figure_slides_over_settings():
    import torch

    chars = "ab c"
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    frames = {1: (probs, torch.tensor([1.0, 0, 0, 0]), ["aaaa", "aaaa"]),
              "all": (probs, probs, ["ab c", "c ba"])}
    fig = sampling_figs.sampling_figure(frames, chars, "k", "prompt", active=1)
    assert [s.label for s in fig.layout.sliders[0].steps] == ["1", "all"]
    bars = [t for t in fig.data if t.type == "bar"]
    assert list(bars[0].x) == ["a", "b", "␣", "c"]  # most likely first, the space made visible
    visible = [t for t in fig.data if t.visible is not False]
    assert [t.type for t in visible] == ["bar", "bar", "table"] and list(visible[2].cells.values[0]) == ["ab c", "c ba"]


def tiny_sampler():
    import torch

    from lmlab.corpus import CharTokenizer
    from lmlab.model import GPT, GPTConfig

    torch.manual_seed(0)
    tok = CharTokenizer("abcde \n")
    return GPT(GPTConfig(tok.vocab_size, ctx=16, width=8, depth=1, heads=2)), tok


def test_sampling_frame_keeps_the_prompt_within_the_cache_and_k_one_is_greedy():
    model, tok = tiny_sampler()
    probs, filtered, samples = sampling.sampling_frame(model, tok, "abcde" * 10, chars=6, samples=3, top_k=1)
    assert abs(probs.sum().item() - 1) < 1e-5 and (filtered > 0).sum().item() == 1
    assert len(samples) == 3 and len(set(samples)) == 1 and all(len(s) == 6 for s in samples)


def test_sampling_panel_redraws_for_each_setting_and_reports_a_bad_prompt(monkeypatch):
    shown = []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", shown.append)
    model, tok = tiny_sampler()
    panel = sampling_figs.sampling_panel(model, tok, "abc", chars=6, samples=2)
    controls, status = panel.children[0].children[:-1], panel.children[0].children[-1]
    prompt, k = controls[0], controls[1]
    assert shown[-1].layout.title.text == "k = all, T = 1.0, top-p = 1.0, min-p = 0.0"
    k.value = "1"
    assert shown[-1].layout.title.text.startswith("k = 1, ") and len(set(shown[-1].data[-1].cells.values[0])) == 1
    prompt.value = "abz"
    assert "'z'" in status.value and len(shown) == 2


def test_sampling_figure_sets_samplers_side_by_side():
    import torch

    chars, probs = "ab c", torch.tensor([0.5, 0.3, 0.15, 0.05])
    frames = {k: {"p = 0": (probs, probs, [f"left {k}"]), "p = 0.2": (probs, probs, [f"right {k}"])} for k in (1, 2)}
    fig = sampling_figs.sampling_figure(frames, chars, "k", "prompt")
    assert [a.text for a in fig.layout.annotations] == ["p = 0", "p = 0.2"]
    visible = [t for t in fig.data if t.visible is not False]
    assert [t.type for t in visible] == ["bar", "bar", "table", "bar", "bar", "table"]
    assert [t.xaxis for t in visible if t.type == "bar"] == ["x", "x", "x2", "x2"]
    assert [t.showlegend for t in visible if t.type == "bar"] == [True, True, False, False]
    assert [list(t.cells.values[0]) for t in visible if t.type == "table"] == [["left 1"], ["right 1"]]


def test_sampling_frame_with_a_continuation_longer_than_ctx_keeps_half_the_window():
    model, tok = tiny_sampler()  # ctx 16
    _, _, samples = sampling.sampling_frame(model, tok, "abcde" * 10, chars=40, samples=2, seed=1, top_k=3)
    assert len(samples) == 2 and all(len(s) == 40 for s in samples)


def test_samples_grid_is_a_table_of_rows_and_columns():
    fig = sampling_figs.samples_grid({"p = 0": {"greedy": "aa\nb", "top-k": "xy"},
                                      "p = 0.2": {"greedy": "c", "top-k": "d"}}, corner="model")
    table = fig.data[0]
    assert list(table.header.values) == ["model", "greedy", "top-k"]
    assert [list(c) for c in table.cells.values] == [["<b>p = 0</b>", "<b>p = 0.2</b>"], ["aa<br>b", "c"], ["xy", "d"]]
    assert sampling_figs.samples_grid({"r": {"c": "x\n" * 30}}).layout.height > fig.layout.height  # as tall as its text


def test_wrapped_keeps_line_breaks_and_breaks_long_lines():
    assert sampling_figs.wrapped("ab cd\n\nef", 80) == "ab cd<br><br>ef"
    assert sampling_figs.wrapped("aaaa bbbb cccc", 9) == "aaaa bbbb<br>cccc"
    assert sampling_figs.wrapped("x" * 10, 4) == "xxxx<br>xxxx<br>xx"


def test_randomness_panel_moves_only_the_top_k_column_with_the_seed(monkeypatch):
    shown = []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", shown.append)
    model, tok = tiny_sampler()
    other = type(model)(model.config, seed=5)
    panel = randomness_figs.randomness_panel({"p = 0": model, "p = 0.2": other}, tok, "abc", chars=30, samples=3)
    which, k, seed, prompt = panel.children[0].children[:4]

    def columns():
        return [list(t.cells.values[0]) for t in shown[-1].data if t.type == "table"]

    greedy, sampled = columns()
    assert len(set(greedy)) == 1 and len(set(sampled)) == 3  # greedy: one text three times
    calls = []
    frame = sampling.sampling_frame
    monkeypatch.setattr(randomness_figs, "sampling_frame", lambda *a, **kw: calls.append(kw) or frame(*a, **kw))
    seed.value = 1
    assert columns()[0] == greedy and columns()[1] != sampled
    assert calls == [{"top_k": 10}]  # the greedy column is not computed again
    which.value = "p = 0.2"
    assert shown[-1].layout.title.text == "p = 0.2" and columns()[0] != greedy
    prompt.value = "abz"
    assert "'z'" in panel.children[0].children[-1].value


def test_frontier_figure_draws_each_family_and_the_reference_in_every_panel():
    import pandas as pd

    table = pd.DataFrame({"NLL": [1.9, 1.0, 1.5, 1.95], "distinct-4 chars": [0.3, 0.01, 0.2, 0.4],
                          "repetition": [0.0, 0.5, 0.0, 0.0]}, index=["human", "greedy", "k = 5", "pure"])
    fig = sampling_figs.frontier_figure(table, {"top-k": ["greedy", "k = 5", "pure"]},
                                        ys=("distinct-4 chars", "repetition"))
    assert [t.name for t in fig.data] == ["top-k", "human text"] * 2
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert list(fig.data[2].y) == [0.5, 0.0, 0.0] and fig.data[3].marker.symbol == "star"
    assert fig.layout.yaxis2.title.text == "repetition"


def test_frontier_figure_draws_intervals_as_error_bars():
    import pandas as pd

    table = pd.DataFrame({"NLL": [1.9, 1.0, 1.95], "real words": [0.9, 1.0, 0.6]}, index=["human", "greedy", "pure"])
    intervals = table.assign(**{"NLL lo": table["NLL"] - 0.1, "NLL hi": table["NLL"] + 0.2,
                                "real words lo": table["real words"] - 0.05, "real words hi": table["real words"]})
    fig = sampling_figs.frontier_figure(table, {"T": ["greedy", "pure"]}, ys=("real words",), intervals=intervals)
    assert list(fig.data[0].error_x.array) == pytest.approx([0.2, 0.2])
    assert list(fig.data[0].error_x.arrayminus) == pytest.approx([0.1, 0.1])
    assert list(fig.data[1].error_y.arrayminus) == pytest.approx([0.05]) and fig.data[1].marker.symbol == "star"
    assert sampling_figs.frontier_figure(table, {"T": ["greedy", "pure"]}, ys=("real words",)).data[0].error_x.array \
        is None


def test_curve_figure_draws_each_curve_with_its_interval():
    import pandas as pd

    curve = pd.DataFrame({"mean": [0.2, 0.5], "lo": [0.1, 0.4], "hi": [0.3, 0.7]}, index=[1, 2])
    fig = sampling_figs.curve_figure({"repeated": curve}, "r", "probability", title="loop")
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].error_y.array) == pytest.approx([0.1, 0.2])
    assert fig.layout.xaxis.title.text == "r" and fig.layout.title.text == "loop"


def test_a_choice_slider_shows_labels_and_hands_over_values():
    slider = viz.choice_slider({"4,096": 4096, "all": None}, None, "characters")
    assert slider.value == "all" and viz.value_of(slider) is None
    slider.value = "4,096"
    assert viz.value_of(slider) == 4096
    assert viz.value_of(viz.k_slider()) is None and viz.value_of(viz.k_slider(10)) == 10


def test_a_panel_whose_update_raises_shows_the_error_and_stays_alive(monkeypatch):
    """Any error, not only a ValueError: the message replaces "running…" and the next move works."""
    import ipywidgets as widgets

    shown = []
    monkeypatch.setattr(panels, "displayable", lambda fig: fig)
    monkeypatch.setattr(panels, "display", shown.append)

    def update(n):
        if n == 2:
            raise RuntimeError("the model's weights are NaN")
        return go.Figure(go.Bar(y=[n]))

    box = widgets.IntText(value=1)
    panel = viz.live_panel(update, {"n": box}, note="ready")
    status = panel.children[0].children[-1]
    box.value = 2
    assert "RuntimeError: the model's weights are NaN" in status.value and "running" not in status.value
    box.value = 3
    assert status.value == "ready" and shown[-1].data[0].y == (3,)


def test_mup_sweep_figure_draws_bands_and_optima():
    import pandas as pd

    from lmlab.display import mup as mup_figs

    runs = pd.DataFrame([{"param": p, "width": w, "seed": s, "log2_lr": lg,
                          "avg_train": 2 + 0.1 * (lg + 7) ** 2 + s / 100}
                         for p in ("sp_fanin", "mup") for w in (32, 64) for s in range(3) for lg in (-8, -7, -6)])
    optima = pd.DataFrame([{"param": p, "width": w, "opt": -7.0, "opt_se": 0.1, "loss": 2.01}
                           for p in ("sp_fanin", "mup") for w in (32, 64)])
    fig = mup_figs.sweep_figure(runs, optima)
    stars = [t for t in fig.data if t.marker.symbol == "star"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(stars) == len(bands) == 4 and stars[0].error_x.array[0] == pytest.approx(0.2)
    assert [a.text for a in fig.layout.annotations] == ["SP (fan-in)", "μP"]
    one = mup_figs.sweep_figure(runs[runs.param == "mup"], optima, title="μP alone")
    assert not one.layout.annotations and one.layout.title.text == "μP alone"  # no panel title under the title


def test_rules_table_holds_what_differs_with_width():
    from lmlab import mup
    from lmlab.display import mup as mup_figs

    table = mup_figs.rules_table()  # SP with one σ beside μP: μP's rules
    assert list(table.columns) == ["SP (constant σ)", "μP"] and table.columns.name == "quantity"
    assert table.index.is_unique and table.index.nlevels == 1 and table.columns.nlevels == 1  # one header row
    assert table.to_dict("index") == {
        "hidden matrices: init std": {"SP (constant σ)": "σ", "μP": "σ/√m"},
        "hidden matrices: Adam LR": {"SP (constant σ)": "η", "μP": "η/m"},
        "readout: output multiplier": {"SP (constant σ)": "α_out", "μP": "α_out/m"},
        "attention logits: scale": {"SP (constant σ)": "1/√d_head", "μP": "√d_head,base / d_head"}}
    assert "<th>quantity</th>" in table.to_html()  # the header row names the row titles' column
    # the embeddings and LayerNorms, the same in every parametrization, are left out (the chapter says so)
    every = mup_figs.rules_table(tuple(mup.RULES))
    assert list(every.columns) == list(mup.NAMES.values())
    assert not any(label.startswith(("embeddings", "LayerNorm")) for label in every.index)
    assert all(row.nunique() > 1 for _, row in every.iterrows())
    assert every.loc["readout: init std", "SP (fan-in)"] == "σ/√m (or 0)"  # fan-in SP's one row of its own
    assert every.loc["readout: init std", "μP"] == "σ (or 0)"


def test_rules_table_is_read_off_the_rules():
    """Not typed: give μP's LayerNorms an LR rule, and a row appears; make SP agree with μP on
    the hidden init, and that row goes."""
    from lmlab import mup
    from lmlab.display import mup as mup_figs

    rules = {param: dict(kinds) for param, kinds in mup.RULES.items()}
    rules["mup"]["vector"] = mup.Rule(lr=-1.0)
    rules["sp"]["hidden"] = mup.Rule(init=-0.5)
    table = mup_figs.rules_table(rules=rules)
    assert list(table.loc["LayerNorm: Adam LR"]) == ["η", "η/m"]
    assert "hidden matrices: init std" not in table.index


def test_mup_comparison_figure_is_a_dot_plot_with_intervals():
    import pandas as pd

    from lmlab.display import mup as mup_figs

    table = pd.DataFrame({"mean": [2.4, 2.5, 2.6], "half": [0.01, 0.02, np.nan], "n": [3, 3, 1]},
                         index=["a", "b", "c"])
    fig = mup_figs.comparison_figure(table, reference="b")
    assert [t.type for t in fig.data] == ["scatter"] * 3  # dots, not bars
    assert [t.x[0] for t in fig.data] == [2.4, 2.5, 2.6] and [t.error_x.array[0] for t in fig.data[:2]] == [0.01, 0.02]
    single = fig.data[2]  # one run: no interval, a hollow dot, and the label says so
    assert single.error_x.visible is False and single.marker.symbol == "circle-open"
    labels = [a.text for a in fig.layout.annotations]
    assert labels[0] == "a: 2.400 ± 0.010" and labels[2] == "c: 2.600 (1 run, no interval)"
    assert "dotted" in labels[1] and [s.x0 for s in fig.layout.shapes] == [2.5] * 3  # the reference's mean, each row
    low, high = fig.layout.xaxis.range
    assert low < 2.39 and high > 2.6  # every interval inside the axis
    assert not fig.layout.yaxis.showticklabels  # the names are above the rows, not in a margin


def test_mup_coordinate_figure_wraps_its_panels_into_rows():
    import pandas as pd

    from lmlab.display import mup as mup_figs

    params = ["sp_fanin", "mup", "mup-hidden_lr", "mup-attention_scale"]
    coords = pd.DataFrame([{"param": p, "width": w, "seed": 0, "t": t, "layer": layer, "l1": 1.0, "delta": t - 1.0}
                           for p in params for w in (32, 64) for t in (1, 2, 3) for layer in ("MLP 0", "logits")])
    fig = mup_figs.coord_figure(coords, stat="delta", first_t=2)
    assert len(fig.layout.sliders[0].steps) == 2  # t = 2 and 3 only
    assert [a.text for a in fig.layout.annotations] == [mup_figs.PARAM_NAMES[p] for p in params]
    layout = fig.to_plotly_json()["layout"]
    x_titles = {k: v.get("title", {}).get("text") for k, v in layout.items() if k.startswith("xaxis")}
    y_titles = {k: v.get("title", {}).get("text") for k, v in layout.items() if k.startswith("yaxis")}
    assert x_titles == {"xaxis": None, "xaxis2": None, "xaxis3": "width", "xaxis4": "width"}  # 2 × 2, the bottom row
    assert y_titles == {"yaxis": "mean |x_t − x_1|", "yaxis2": None, "yaxis3": "mean |x_t − x_1|", "yaxis4": None}
    assert layout["yaxis"]["domain"][0] > layout["yaxis3"]["domain"][1]  # two rows
    assert all(layout[f"xaxis{s}"]["tickangle"] == 0 for s in ("", "2", "3", "4"))
    assert fig.layout.sliders[0].pad.t > 40  # clear of the bottom row's axis title
    two = mup_figs.coord_figure(coords[coords.param.isin(params[:2])])
    assert "xaxis3" not in two.to_plotly_json()["layout"]  # two panels: one row
    with pytest.raises(ValueError, match="stat"):
        mup_figs.coord_figure(coords, stat="l2")


def test_isoflop_figure_without_profiles_says_so():
    """At `smoke` no budget has a profile: the figure says so instead of drawing empty log axes."""
    import pandas as pd

    from lmlab.display.scaling import isoflop_figure

    fig = isoflop_figure(pd.DataFrame(columns=["C", "N", "L"]), pd.DataFrame(columns=["N_opt"]))
    assert not fig.data and not fig.layout.xaxis.visible and "no compute budget" in fig.layout.annotations[0].text


def test_ladder_table_reads_each_rungs_verdicts_off_its_numbers():
    import pandas as pd

    from lmlab import claims, mup
    from lmlab.display import mup as mup_figs

    spreads = pd.DataFrame({"spread": [9.0, 6.0, 3.0, 1.5, 1.2], "layer": ["MLP 0"] * 3 + ["logits"] * 2,
                            "logits_min": [0.9] * 5, "logits_max": [1.0, 1.0, 1.0, 1.8, 0.6]}, index=list(mup.LADDER))
    shifts = {rung: claims.t(values) for rung, values in zip(mup.LADDER, (
        [-3.1, -3.3, -2.9], [-2.0, -2.4, -1.8], [-1.5, 0.4, 1.0], [0.2, -0.1, 0.05], [1.9, 2.1, 2.0]), strict=True)}
    table = mup_figs.ladder_table(spreads, shifts)
    assert list(table.index) == list(mup_figs.RUNGS.values())
    assert table["coordinate check"].str.split(":").str[0].tolist() == ["fails"] * 3 + ["passes"] * 2
    assert table["best LR moves (log2)"].str.split(":").str[0].tolist() == [
        "moves down", "moves down", "not resolved", "stays", "moves up"]
    assert table.loc["+ readout 1/m", "attention logits"] == "× 0.90 to 1.80"


def test_ladder_figure_slides_over_the_rungs_on_fixed_scales():
    import pandas as pd

    from lmlab import mup
    from lmlab.display import mup as mup_figs

    coords = pd.DataFrame([{"param": p, "layer": layer, "width": w, "t": t, "seed": 0, "delta": 0.1 * w * (i + 1)}
                           for i, p in enumerate(mup.LADDER) for layer in ("MLP 0", "logits") for w in (32, 64)
                           for t in (1, 2)])
    sweep = pd.DataFrame([{"param": p, "width": w, "log2_lr": lr, "seed": s, "avg_train": 2 + (lr + 7) ** 2 / 10 + s}
                          for p in mup.LADDER for w in (32, 64) for lr in (-8, -7, -6) for s in (0, 1)])
    optima = pd.DataFrame([{"param": p, "width": w, "opt": -7.0, "loss": 2.5} for p in mup.LADDER for w in (32, 64)])
    fig = mup_figs.ladder_figure(coords, sweep, optima)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == list(mup_figs.RUNGS.values())
    per_rung = len(fig.data) // len(steps)  # 2 layers + 2 widths × (band, line, star)
    assert per_rung == 8 and all(sum(s.args[0]["visible"]) == per_rung for s in steps)
    assert fig.layout.yaxis2.range[0] == pytest.approx(2.5 - 0.05)  # one loss scale for every rung
    one = mup_figs.ladder_figure(coords, sweep, optima, rungs=("mup",))  # the live panel's: no slider
    assert not one.layout.sliders and len(one.data) == per_rung
