"""Chapter 3's figures and tables lay out for a phone's column: legends in rows under the plot,
L(N) at one budget apart from the others, a prediction as a dot with its interval beside the
measurement, and the two parameter counts side by side in one compact table."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lmlab.display import figures
from lmlab.display import scaling as scaling_figs
from lmlab.experiments.laws import PowerLaw


def test_legend_rows_wrap_at_a_phones_width():
    assert figures.legend_rows(["a"]) == 1
    assert figures.legend_rows(["x" * 15] * 2) == 1 and figures.legend_rows(["x" * 30] * 3) == 3
    assert figures.legend_rows(["D = 16.4K"] * 9) >= 3  # nine budgets take several rows on a phone
    with pytest.raises(ValueError, match="width"):
        figures.legend_rows(["a"], width=0)


def test_legend_below_sits_under_the_plot_with_room_for_its_rows():
    fig = go.Figure([go.Scatter(x=[1], y=[1], name=f"D = {k}K characters") for k in range(8)])
    figures.legend_below(fig)
    legend = fig.layout.legend
    assert legend.orientation == "h" and (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")
    rows = figures.legend_rows([t.name for t in fig.data], figures.PAGE_COLUMN)
    assert rows >= 2 and fig.layout.margin.b == 60 + figures.ROW_PX * rows + 8
    narrow = figures.legend_below(go.Figure(fig), width=figures.PHONE_COLUMN)
    assert narrow.layout.margin.b > fig.layout.margin.b  # more rows in a narrower column
    slid = go.Figure([go.Scatter(x=[1], y=[1], name="a"), go.Scatter(x=[1], y=[1], name="b")])
    slid.update_layout(sliders=[dict(steps=[dict(label="1"), dict(label="2")])])
    assert figures.legend_below(slid).layout.margin.b > fig.layout.margin.b - figures.ROW_PX * (rows - 1)


def points():
    rows = [{"N": n, "tokens": d, "loss": 1 + 50 * n**-0.5 + 3e3 / d**0.5, "se": 0.01}
            for n in (200, 1600, 5000, 12000, 40000) for d in (16_384, 131_072, 1_048_576)]
    return pd.DataFrame(rows)


def test_size_figure_puts_the_fitted_budget_alone_on_top():
    fit = PowerLaw(A=50.0, alpha=0.5, E=1 + 3e3 / 1_048_576**0.5, r2=1.0)
    fig = scaling_figs.size_figure(points(), 1_048_576, fit)
    top = [t for t in fig.data if t.yaxis == "y"]
    bottom = [t for t in fig.data if t.yaxis == "y2"]
    assert len(top) == 2 and len(bottom) == 3  # the runs at D and the fit; every budget below
    runs, law = top
    assert list(runs.x) == [200, 1600, 5000, 12000, 40000] and list(runs.error_y.array) == [0.02] * 5
    assert law.line.dash == "dash" and np.allclose(law.y, fit(law.x))
    assert {t.name for t in bottom if t.showlegend is not False} == {"D = 16.4K", "D = 131K"}
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"  # one N axis for both panels
    assert fig.layout.xaxis2.title.text and not fig.layout.xaxis.title.text  # one x title, under the bottom panel
    assert fig.layout.legend.orientation == "h" and len(fig.layout.title.text) <= 30
    with pytest.raises(ValueError, match="d_fit"):
        scaling_figs.size_figure(points(), 5.0, fit)


def test_interval_figure_draws_each_row_with_its_interval_and_the_reference_through_all():
    table = pd.DataFrame({"value": [1.90, 1.95, 1.93], "lo": [1.88, np.nan, 1.92], "hi": [1.93, np.nan, 1.94],
                          "interval": ["bootstrap", "", "t"]}, index=["predicted", "baseline", "measured"])
    fig = scaling_figs.interval_figure(table, "Held out", reference="measured")
    dots = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in dots] == list(table.index) and len(lines) == 2  # no line where no interval
    assert dots[1].marker.symbol.endswith("-open") and not dots[0].marker.symbol.endswith("-open")
    assert dots[2].marker.symbol == "circle" and len({d.marker.color for d in dots}) == 3  # a colour each
    marked = scaling_figs.interval_figure(table.assign(symbol=["diamond", "square", None]), "t", reference="measured")
    assert [t.marker.symbol for t in marked.data if t.mode == "markers"] == ["diamond", "square-open", "circle"]
    assert list(lines[0].x) == [1.88, 1.93] and fig.layout.shapes[0].x0 == 1.93
    texts = [a.text for a in fig.layout.annotations]
    assert texts[0] == "predicted: 1.900 (1.880–1.930)" and texts[1] == "baseline: 1.950"
    lo, hi = fig.layout.xaxis.range
    assert lo < 1.88 and hi > 1.95
    with pytest.raises(ValueError, match="reference"):
        scaling_figs.interval_figure(table, "t", reference="nope")
    with pytest.raises(ValueError, match="lo ≤ hi"):
        scaling_figs.interval_figure(table.assign(lo=[2.0, np.nan, 1.92]), "t")


def test_conventions_table_sets_the_counts_side_by_side():
    def table(alpha):
        return pd.DataFrame({"estimate": [alpha, 30.0], "lo": [alpha - 0.1, np.nan], "hi": [alpha + 0.1, np.nan]},
                            index=["alpha_N", "tokens_per_param"])

    shift = table(-0.2).drop(index="tokens_per_param")  # a difference of unlike ratios is left out
    styler = scaling_figs.conventions_table(
        {"non-embedding N": table(0.5), "all parameters": table(0.3), "shift": shift},
        {"alpha_N": "α_N", "tokens_per_param": "characters per parameter"})
    shown = styler.data
    assert list(shown.columns) == ["fitted", "non-embedding N", "all parameters", "shift"]
    assert shown.iloc[0].tolist() == ["α_N", "0.5<br>(0.4 to 0.6)", "0.3<br>(0.2 to 0.4)", "-0.2<br>(-0.3 to -0.1)"]
    assert shown.iloc[1, 1:].tolist() == ["30", "30", "—"]
    assert "font-size: 0.875em" in styler.to_html() and "<br>" in styler.to_html()
    tiny = scaling_figs.conventions_table({"n": table(0.5).assign(lo=[1e-10, np.nan], hi=[12345.0, np.nan])},
                                          {"alpha_N": "α_N"}).data
    assert tiny.iloc[0, 1] == "0.5<br>(0 to 12,345)"
    with pytest.raises(ValueError, match="no statistic"):
        scaling_figs.conventions_table({"n": table(0.5)}, {"beta": "β"})


def test_compact_table_keeps_the_styles_it_is_given():
    styler = pd.DataFrame({"a": [1.23456]}).style.format(precision=2)
    html = scaling_figs.compact_table(styler).to_html()
    assert "1.23" in html and "1.2346" not in html and "font-size: 0.875em" in html
    assert "font-size: 0.875em" in scaling_figs.compact_table(pd.DataFrame({"a": [1]})).to_html()


def test_left_out_points_are_drawn_hollow_and_named_but_not_fitted():
    df = pd.DataFrame({"D": [1e3, 1e4, 1e5, 1e3, 1e4, 1e5], "loss": [3.0, 2.5, 2.2, 2.9, 2.3, 2.0],
                       "N": [10] * 3 + [20] * 3, "out": [True, False, False] * 2})
    fit = PowerLaw(A=5.0, alpha=0.2, E=1.0, r2=1.0)
    fig = scaling_figs.loglog_figure(df, "D", "loss", "N", fits={20: fit}, left_out="out")
    lines = [t for t in fig.data if t.mode == "markers+lines"]
    assert [list(t.marker.symbol) for t in lines] == [["circle-open", "circle", "circle"]] * 2
    law = next(t for t in fig.data if t.name == "fit, 20")
    assert min(law.x) == pytest.approx(1e4)  # the fit is drawn over the fitted points only
    assert any("left out" in (t.name or "") for t in fig.data)
    plain = scaling_figs.loglog_figure(df, "D", "loss", "N")
    assert not any("left out" in (t.name or "") for t in plain.data)
    with pytest.raises(ValueError, match="left_out"):
        scaling_figs.loglog_figure(df, "D", "loss", "N", left_out="missing")
    dotted = scaling_figs.size_figure(points(), 1_048_576, fit, left_out=[16_384])
    short = next(t for t in dotted.data if (t.name or "").startswith("D = 16.4K"))
    assert short.line.dash == "dot" and short.name.endswith("not fitted")


def test_the_frontier_figure_draws_every_size_and_the_fit_over_the_frontier():
    from lmlab.experiments.laws import frontier

    p = points().assign(C=lambda t: 6 * t.N * t.tokens, flops=lambda t: 6 * t.N * t.tokens,
                        left_out=lambda t: t.tokens == 16_384)
    front = frontier(p)
    fit = PowerLaw(A=30.0, alpha=0.1, E=1.0, r2=1.0)
    fig = scaling_figs.frontier_figure(p, front, fit)
    names = [t.name for t in fig.data]
    assert names[:5] == [f"N = {scaling_figs.size_label(n)}" for n in (200, 1600, 5000, 12000, 40000)]
    assert names[-1] == "frontier fit" and "hollow: left out of the fits" in names
    line = fig.data[-1]
    assert (min(line.x), max(line.x)) == pytest.approx((front.flops.min(), front.flops.max()))
    assert np.allclose(line.y, fit(np.asarray(line.x)))
    rows = figures.legend_rows([n for n in names if n], figures.PAGE_COLUMN)  # the fit's entry counted
    assert fig.layout.margin.b == 60 + figures.ROW_PX * rows + 8
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
