"""Chapter 3's conventions: the same laws fitted with N counted two ways (non-embedding, Kaplan's;
every parameter, Chinchilla's), how far C = 6·N·D is from the chapter's own FLOP count, and the
helpers that say what the held-out prediction rests on."""

import numpy as np
import pandas as pd
import pytest

from lmlab.budget import BUDGETS
from lmlab.experiments import scaling
from lmlab.experiments.laws import Chinchilla, frontier, statistics

DEPTHS = [1, 2, 3, 4, 6, 10]


def grid_on(truth: Chinchilla, count: str):
    """Seed means of the book's six sizes at six budgets, on a surface `truth` of N counted by `count`."""
    members = scaling.family(BUDGETS["book"].scaling, depths=range(1, 21))
    rows = []
    for _, m in members[members.depth.isin(DEPTHS)].iterrows():
        for tokens in 2048 * np.array([16, 32, 64, 128, 256, 512], dtype=float):
            rows.append({"N": m.N, "N_total": m.N_total, "tokens": tokens, "flops": tokens * m.flops_per_token,
                         "loss": float(truth(m[count], tokens))})
    return pd.DataFrame(rows), members


def test_statistics_fit_the_count_they_are_given():
    """On a surface in total parameters, fitting in total parameters recovers it; the non-embedding
    count, whose share of the smallest models is small, bends the exponent: the two differ."""
    truth = Chinchilla(E=1.2, A=30.0, B=60.0, alpha=0.4, beta=0.3)
    means, members = grid_on(truth, "N_total")
    C = float(np.sqrt(means.flops.min() * means.flops.max()))
    total = statistics(scaling.counted(means, "N_total"), scaling.counted(members, "N_total"), C, d_fit=2048 * 512.0)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert total[name] == pytest.approx(getattr(truth, name), rel=0.02), name
    assert total["tokens_per_param"] == pytest.approx(total["tokens_per_param_total"])  # one count: one ratio
    kaplan = statistics(scaling.counted(means), scaling.counted(members), C, d_fit=2048 * 512.0)  # non-embedding
    assert abs(kaplan["alpha"] - truth.alpha) > 0.05 and abs(kaplan["alpha_N"] - total["alpha_N"]) > 0.02
    assert kaplan["alpha_C"] == pytest.approx(total["alpha_C"])  # the frontier does not count parameters
    with pytest.raises(ValueError, match="count must name a column"):
        scaling.counted(means, "N_all")


def test_six_nd_share_is_the_shortcut_over_the_chapters_count():
    members = scaling.family(BUDGETS["book"].scaling, depths=DEPTHS)
    kaplan, chinchilla = scaling.six_nd_share(members), scaling.six_nd_share(members, "N_total")
    assert list(kaplan.index) == DEPTHS
    assert kaplan.iloc[0] == pytest.approx(6 * members.N.iloc[0] / members.flops_per_token.iloc[0])
    assert (kaplan < 1).all() and (np.diff(kaplan) > 0).all()  # leaves out the readout and attention: less, ever less
    assert chinchilla.iloc[0] > 1  # the embeddings' lookups cost nothing, yet 6N counts them
    exact = members.assign(flops_per_token=6 * members.N)
    assert np.allclose(scaling.six_nd_share(exact), 1.0) and scaling.flops_exponent(exact) == pytest.approx(1.0)
    assert 0.5 < scaling.flops_exponent(members) < 0.95 < scaling.flops_exponent(members, "N_total")
    with pytest.raises(ValueError, match="members must have a column"):
        scaling.six_nd_share(members.drop(columns="flops_per_token"))


def test_top_run_counts_the_frontiers_top_end_at_one_budget():
    points = pd.DataFrame({"N": [1, 2, 3, 1, 2, 3], "tokens": [10, 10, 10, 40, 40, 40],
                           "flops": [10, 20, 30, 40, 80, 120], "loss": [3.0, 2.9, 2.8, 2.7, 2.5, 2.4]})
    front = frontier(points)
    assert scaling.top_run(front, "tokens", 40) == 3 and scaling.top_run(front, "tokens", 10) == 0
    assert scaling.top_run(front[front.tokens == 10], "tokens", 10) == 3
    with pytest.raises(ValueError, match="front must have columns"):
        scaling.top_run(front, "steps", 10)


def test_interval_table_has_a_row_per_statistic():
    rng = np.random.default_rng(0)
    draws = pd.DataFrame({"alpha": rng.normal(0.5, 0.1, 1000), "a_N": np.r_[rng.normal(0.6, 0.1, 990), [np.nan] * 10]})
    table = scaling.interval_table({"alpha": 0.5, "a_N": 0.6, "other": 1.0}, draws, clusters=6)
    assert list(table.index) == ["alpha", "a_N"] and table.loc["alpha", "estimate"] == 0.5
    assert table.loc["alpha", "lo"] == pytest.approx(np.quantile(draws.alpha, 0.025))
    assert table.loc["a_N", "resamples"] == 990 and "990 of 1,000" in table.loc["a_N", "ci"]
    assert table.loc["alpha", "ci"] == "95 % bootstrap interval, 6 sizes, 1,000 resamples"
    with pytest.raises(ValueError, match="missing"):
        scaling.interval_table({"alpha": 0.5}, draws, clusters=6)
