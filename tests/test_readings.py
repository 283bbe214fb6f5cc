"""What chapter 3's page reads into its numbers (`lmlab.experiments.readings`): paired steps over seeds,
bootstrap intervals and what they are called, a measured range read against a published number, and
the glue of the IsoFLOP optima and of Chinchilla's surface."""

import numpy as np
import pandas as pd
import pytest

from lmlab.experiments import readings
from lmlab.experiments.laws import Chinchilla


def test_paired_steps_pair_each_setting_with_the_next_seed_by_seed():
    """Each interval is setting i minus setting i + 1 over the seeds, a paired t-interval: a shift shared
    by the seeds (a seed's data order) cancels, so a small step is clear of noise that two means are not."""
    shift = {0: 0.0, 1: 0.3, 2: -0.2}  # per seed, shared by every depth
    runs = pd.DataFrame([{"depth": d, "seed": k, "final_val": 3.0 - 0.1 * d + shift[k] + 0.001 * d * k}
                         for d in (1, 2, 4) for k in shift])
    steps = readings.paired_steps(runs, "depth", [1, 2, 4])
    assert [s.n for s in steps] == [3, 3] and all(s.unit == "seeds" and s.method == "t" for s in steps)
    assert steps[0].estimate == pytest.approx(0.1 - 0.001) and steps[1].estimate == pytest.approx(0.2 - 0.002)
    assert all(s.direction == "above" for s in steps)  # lower at every step, beyond the shared noise
    flipped = readings.paired_steps(runs, "depth", [4, 1])[0]
    assert flipped.direction == "below"
    with pytest.raises(ValueError, match="every seed needs"):
        readings.paired_steps(runs[runs.seed != 2].query("depth != 4 or seed != 1"), "depth", [1, 4])
    with pytest.raises(ValueError, match="every seed needs"):
        readings.paired_steps(runs, "depth", [1, 3])


def test_resampled_glue_calls_95_percent_only_from_1000_resamples():
    rng = np.random.default_rng(0)
    draws = rng.normal(1.0, 0.1, 1000)
    got = readings.resampled_glue("x", 1.0, draws, clusters=6)
    assert got["x"] == 1.0 and got["x_n"] == 6 and got["x_resamples"] == 1000
    assert (got["x_lo"], got["x_hi"]) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])))
    assert got["x_ci"] == "95 % bootstrap interval, 6 sizes, 1,000 resamples"
    few = readings.resampled_glue("x", 1.0, draws[:100], clusters=6, with_estimate=False)
    assert "x" not in few and "not called a 95 % interval" in few["x_ci"] and "95 % bootstrap" not in few["x_ci"]
    holes = np.where(np.arange(1000) % 10 == 0, np.nan, draws)  # undefined in 100 resamples: 900 are left
    some = readings.resampled_glue("x", 1.0, holes, clusters=6)
    assert some["x_resamples"] == 900 and "900 of 1,000 resamples that define it" in some["x_ci"]
    none = readings.resampled_glue("x", 1.0, [np.nan] * 8, clusters=4)
    assert np.isnan(none["x_lo"]) and "undefined" in none["x_ci"]


def test_range_word_reads_a_range_against_a_reference():
    assert readings.range_word(17, 62, 20, "above", "below", "holds") == "holds"
    assert readings.range_word(21, 62, 20, "above", "below", "holds") == "above"
    assert readings.range_word(5, 19, 20, "above", "below", "holds") == "below"
    assert readings.range_word(np.nan, np.nan, 20, "above", "below", "holds") == "not comparable with"
    with pytest.raises(ValueError, match="low must not exceed high"):
        readings.range_word(30, 10, 20, "above", "below", "holds")


def test_interval_table_has_a_row_per_statistic():
    rng = np.random.default_rng(0)
    draws = pd.DataFrame({"alpha": rng.normal(0.5, 0.1, 1000), "a_N": np.r_[rng.normal(0.6, 0.1, 990), [np.nan] * 10]})
    table = readings.interval_table({"alpha": 0.5, "a_N": 0.6, "other": 1.0}, draws, clusters=6)
    assert list(table.index) == ["alpha", "a_N"] and table.loc["alpha", "estimate"] == 0.5
    assert table.loc["alpha", "lo"] == pytest.approx(np.quantile(draws.alpha, 0.025))
    assert table.loc["a_N", "resamples"] == 990 and "990 of 1,000" in table.loc["a_N", "ci"]
    assert table.loc["alpha", "ci"] == "95 % bootstrap interval, 6 sizes, 1,000 resamples"
    with pytest.raises(ValueError, match="missing"):
        readings.interval_table({"alpha": 0.5}, draws, clusters=6)


def test_isoflop_glue_reads_the_optima_against_chinchillas_20():
    """Characters per parameter over 4 are tokens per parameter: 40 and 120 characters are 10 and 30 tokens,
    a range that holds 20; the cheapest optimum alone lies below it, and the page names it so."""
    optima = pd.DataFrame({"tokens_per_param": [60.0, 200.0, 400.0], "tokens_per_param_total": [40.0, 80.0, 120.0]},
                          index=pd.Index([1e9, 1e10, 1e11], name="C"))
    got = readings.isoflop_glue(optima, drawn=4)
    assert (got["tpp_lo"], got["tpp_hi"], got["tpp_total_lo"], got["tpp_total_hi"]) == (60, 400, 40, 120)
    assert (got["tok_lo"], got["tok_hi"], got["tok_total_lo"], got["tok_total_hi"]) == (15, 100, 10, 30)
    assert got["tok_word"] == got["tok_total_word"] == "a range that holds"
    assert got["tok_total_below_word"] == "1 of 3 IsoFLOP optima, the cheapest,"
    assert (got["tok_total_rest_lo"], got["tok_total_rest_hi"]) == (20, 30)
    assert got["tok_total_rest_word"] == "the rest at 20–30"
    assert got["n_isoflop"] == 3 and got["n_isoflop_word"] == "3 of 4"
    dearest_below = optima.assign(tokens_per_param_total=[120.0, 80.0, 40.0])  # the dearest below 20: not "cheapest"
    assert readings.isoflop_glue(dearest_below, 3)["tok_total_below_word"] == "1 of 3 IsoFLOP optima"
    above = readings.isoflop_glue(optima * 10, 3)  # every optimum above 20
    assert above["tok_word"] == "all above" and above["tok_total_below_word"] == "no IsoFLOP optima"
    assert above["tok_total_rest_word"] == "all at 100–300"  # no "rest" when none lie below
    below = readings.isoflop_glue(optima / 10, 3)  # every optimum below 20: nothing is left above
    assert below["tok_total_below_word"] == "all 3 IsoFLOP optima"
    assert below["tok_total_rest_word"] == "none at or above it"
    none = readings.isoflop_glue(optima.iloc[:0], drawn=0)  # no profile bottoms out (the smoke budget)
    assert none["n_isoflop"] == 0 and none["n_isoflop_word"] == "none of the" and np.isnan(none["tok_total_rest_lo"])
    assert none["tok_total_rest_word"] == "none at or above it"
    with pytest.raises(ValueError, match="tokens_per_param_total"):
        readings.isoflop_glue(optima.drop(columns="tokens_per_param_total"), 3)


def surface_intervals(alpha=(0.3, 0.9), a_n=(0.1, 0.5)):
    return pd.DataFrame({"estimate": [0.5, 0.3], "lo": [alpha[0], a_n[0]], "hi": [alpha[1], a_n[1]], "n": [6, 6],
                         "resamples": [1000, 900], "ci": ["95 %", "range"]}, index=["alpha", "a_N"])


def test_surface_glue_measures_the_misses_and_the_inversions():
    """On points that lie on the surface but one, the error is that point's miss over √(points); a bigger
    model above its smaller neighbour at one budget is one inversion of the pairs; the intervals' words follow."""
    fit = Chinchilla(E=1.0, A=10.0, B=100.0, alpha=0.5, beta=0.5)
    N, D = np.meshgrid([100.0, 400.0, 1600.0], [1e4, 1e5])
    means = pd.DataFrame({"N": N.ravel(), "tokens": D.ravel(), "se": 0.01})
    means["loss"] = fit(means.N, means.tokens)
    means.loc[5, "loss"] += 0.3  # the largest size at the longest budget: now above the one before it
    got = readings.surface_glue(fit, means, surface_intervals(), seeds=3)
    assert got["chin_rmse"] == pytest.approx(0.3 / np.sqrt(6)) and got["chin_rmse_ratio"] == pytest.approx(
        0.3 / np.sqrt(6) / 0.01)
    assert got["t_df"] == 2 and got["t95"] == pytest.approx(4.303, abs=1e-3) and got["chin_noise_word"] == "beyond"
    assert got["n_pairs"] == 4 and got["inversions_word"] == "1 of 4"
    assert got["alpha_ratio"] == pytest.approx(3) and got["constrained_word"] == "barely constrained"
    assert got["a_N_word"] == "grows" and got["chin_a"] == 0.5 and got["chin_alpha"] == 0.5
    assert got["a_N_resamples"] == 900 and got["alpha_lo"] == 0.3 and got["alpha_ci"] == "95 %"
    means["loss"] = fit(means.N, means.tokens)  # back on the surface: no miss, no inversion
    clean = readings.surface_glue(fit, means, surface_intervals(alpha=(0.4, 0.6), a_n=(-0.2, 0.3)), seeds=3)
    assert clean["chin_noise_word"] == "within" and clean["inversions_word"] == "none"
    assert clean["constrained_word"] == "constrained" and clean["a_N_word"].startswith("has no trend")
    with pytest.raises(ValueError, match="'se'"):
        readings.surface_glue(fit, means.drop(columns="se"), surface_intervals(), seeds=3)
