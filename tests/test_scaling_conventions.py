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


def test_with_total_count_reads_each_optimum_in_every_parameter():
    """An optimum at a member's N has that member's N_total; between members, the count is interpolated in log N."""
    members = scaling.family(BUDGETS["book"].scaling, depths=DEPTHS)
    optima = pd.DataFrame({"N_opt": [members.N.iloc[1], np.sqrt(members.N.iloc[2] * members.N.iloc[3])],
                           "D_opt": [1e5, 2e5]}, index=pd.Index([1e10, 1e11], name="C"))
    got = scaling.with_total_count(optima, members.iloc[::-1])  # in any order
    assert got.N_total_opt.iloc[0] == pytest.approx(members.N_total.iloc[1])
    assert got.N_total_opt.iloc[1] == pytest.approx(np.sqrt(members.N_total.iloc[2] * members.N_total.iloc[3]))
    assert got.tokens_per_param_total.to_numpy() == pytest.approx(optima.D_opt / got.N_total_opt)
    assert (got.N_total_opt > got.N_opt).all() and list(got.columns[:2]) == ["N_opt", "D_opt"]
    with pytest.raises(ValueError, match="N_total"):
        scaling.with_total_count(optima, members.drop(columns="N_total"))


def test_in_counts_fits_each_count_on_the_same_runs_and_splits_them_back():
    """Each count's statistics come from its own column, its own start, under its own prefix; `by_count`
    returns the two sets under one set of names."""
    means = pd.DataFrame({"N": [1.0, 2.0], "N_total": [10.0, 20.0], "loss": [3.0, 2.0]})
    members = pd.DataFrame({"N": [1.0, 2.0], "N_total": [10.0, 20.0]})

    def statistic(m, fam, start, scale):  # what it saw: the column N, the family's N, the start, a keyword
        return {"N_sum": m.N.sum() * scale, "family_max": fam.N.max(), "start": start}

    got = scaling.in_counts(statistic, means, members, {"N": "s1", "N_total": "s2"}, scale=2)
    assert got == {"N_sum": 6.0, "family_max": 2.0, "start": "s1", "total_N_sum": 60.0, "total_family_max": 20.0,
                   "total_start": "s2"}
    split = scaling.by_count(pd.DataFrame({"x": range(6)}, index=list(got)))
    assert list(split["N"].index) == list(split["N_total"].index) == ["N_sum", "family_max", "start"]
    assert list(split["N_total"].x) == [3, 4, 5]
    with pytest.raises(ValueError, match="keyed by counts"):
        scaling.in_counts(statistic, means, members, {"N_all": None}, scale=1)


def test_count_bootstrap_resamples_whole_sizes_and_serves_both_counts():
    """Every resample is fitted in both counts (the same draw: a size drawn twice counts twice in each), and
    the estimates are the fit to the seed means given."""
    runs = pd.DataFrame([{"depth": d, "N": 10 * d, "N_total": 100 * d, "steps": 5, "tokens": 50, "flops": 1.0,
                          "seed": k, "final_val": 3.0 - 0.1 * d + 0.01 * k} for d in (1, 2, 3, 4) for k in (0, 1, 2)])
    means = scaling.seed_means(runs)

    def statistic(m, fam, start, **_):  # the distinct sizes a resample drew, and how many copies of them
        return {"sizes": m.N.nunique(), "copies": m._copy.nunique() if "_copy" in m else len(m), "mean_N": m.N.mean()}

    estimates, draws = scaling.count_bootstrap(statistic, runs, means, pd.DataFrame({"N": [1], "N_total": [1]}),
                                               {"N": None, "N_total": None}, n_boot=50, seed=0)
    assert estimates == {"sizes": 4, "copies": 4, "mean_N": 25.0, "total_sizes": 4, "total_copies": 4,
                         "total_mean_N": 250.0}
    assert len(draws) == 50 and (draws.copies == 4).all() and (draws.total_copies == 4).all()
    assert (draws.sizes < 4).any() and (draws.sizes == draws.total_sizes).all()  # some draw repeats a size
    assert np.allclose(draws.total_mean_N, 10 * draws.mean_N)  # the same resample in both counts
