"""What a search picks and how picks compare: seed means, the pick, one knob at a time, paired gaps."""

import numpy as np
import pandas as pd
import pytest

from lmlab import claims
from lmlab.experiments import tuning


def test_seed_means_average_each_point_and_a_diverged_seed_leaves_none():
    runs = pd.DataFrame({"init_std": 0.1, "seed": [0, 1, 0, 1], "log2_lr": [-8, -8, -7, -7],
                         "final_val": [2.0, 2.2, 1.9, np.nan]})  # seed 1 diverged at 2^-7
    means = tuning.seed_means(runs, ["init_std"]).set_index("log2_lr")
    assert means.final_val[-8] == pytest.approx(2.1) and np.isnan(means.final_val[-7])
    assert means.seeds.tolist() == [2, 2]
    assert means.loc[means.final_val.idxmin()].name == -8  # the lower mean on one seed is not the best
    best = means.reset_index().loc[0]
    assert tuning.setting_runs(runs.iloc[::-1], best, ["init_std"]).tolist() == [2.0, 2.2]  # in seed order


def test_pick_takes_the_lowest_seed_mean_never_a_point_where_a_seed_diverged():
    runs = pd.DataFrame({"init_std": [0.1] * 4 + [0.2] * 4, "seed": [0, 1] * 4, "log2_lr": [-8, -8, -7, -7] * 2,
                         "final_val": [2.0, 2.2, 1.9, np.nan, 2.3, 2.0, 2.1, 2.05]})
    means, best = tuning.pick(runs, ["init_std"])
    assert len(means) == 4 and (best.init_std, best.log2_lr) == (0.2, -7)  # 2.075, not 0.1's 1.9 on one seed
    assert best.final_val == pytest.approx(2.075)
    with pytest.raises(ValueError, match="diverged"):
        tuning.pick(runs.assign(final_val=np.nan), ["init_std"])


def test_best_inside_reads_a_grid():
    grid = pd.DataFrame({"width": 32, "seed": [0, 0, 0, 1, 1, 1], "log2_lr": [-8, -7, -6] * 2,
                         "final_val": [2.3, 2.1, 2.2, 2.4, 2.3, 2.2]})  # seed 1's best is on the edge
    assert tuning.best_inside(grid[grid.seed == 0], ["width"])
    assert not tuning.best_inside(grid[grid.seed == 1], ["width"])


def test_grid_word_and_differs():
    assert tuning.grid_word(0.1, (0.05, 0.1, 0.2)) == "inside"
    assert tuning.grid_word(0.2, (0.05, 0.1, 0.2)) == "on the edge of"
    assert tuning.grid_word(0.05, [0.2, 0.05, 0.1], "in", "at the edge") == "at the edge"
    a, b = {"init_std": 0.1, "attn_mult": 4.0, "lr": -7}, {"init_std": 0.2, "attn_mult": 4.0, "lr": -8}
    assert tuning.differs({"init_std": "σ", "attn_mult": "α_attn", "lr": "the LR"}, a, b) == ["σ", "the LR"]
    assert tuning.differs({"attn_mult": "α_attn"}, a, b) == []


def test_one_at_a_time_moves_one_knob_and_alone_finds_its_runs():
    centre = {"init_std": 0.1, "output_mult": 1.0, "attn_mult": 4.0}
    moves = tuning.one_at_a_time(centre, {"init_std": [0.05, 0.1], "attn_mult": [1.0, 4.0, 16.0]})
    assert moves["init_std"] == [{"init_std": 0.05, "output_mult": 1.0, "attn_mult": 4.0}, centre]
    assert [m["attn_mult"] for m in moves["attn_mult"]] == [1.0, 4.0, 16.0]
    assert all(list(m) == list(centre) for ms in moves.values() for m in ms)  # the centre's key order
    with pytest.raises(ValueError, match="grids must name knobs"):
        tuning.one_at_a_time(centre, {"dropout": [0.1]})
    runs = pd.DataFrame([m for ms in moves.values() for m in ms]).assign(loss=range(5))
    assert tuning.alone(runs, centre, "attn_mult").loss.tolist() == [1, 2, 3, 4]  # the centre's run is in both
    assert tuning.alone(runs, centre, "init_std").loss.tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="knob must be"):
        tuning.alone(runs, centre, "dropout")


def test_seed_losses_line_settings_up_seed_by_seed_and_the_table_reads_them():
    runs = pd.DataFrame({"setting": ["a", "b", "a", "b", "a", "b"], "seed": [3, 3, 1, 1, 2, 2],
                         "final_val": [2.3, 2.4, 2.1, 2.15, 2.2, 2.3]})
    loss = tuning.seed_losses(runs)
    assert loss["a"].tolist() == [2.1, 2.2, 2.3] and loss["b"].tolist() == [2.15, 2.3, 2.4]
    table = tuning.loss_table({**loss, "c": np.array([2.5])}, order=["b", "a", "c"])
    assert table.index.tolist() == ["b", "a", "c"] and table.n.tolist() == [3, 3, 1]
    assert table.loc["a", "mean"] == pytest.approx(2.2) and np.isnan(table.loc["c", "half"])
    assert table.loc["a", "half"] == pytest.approx(claims.t(loss["a"]).high - 2.2)


def test_gaps_are_paired_and_nearest_is_the_closest_from_below():
    loss = {"a": np.array([2.0, 2.1, 2.2]), "b": np.array([2.1, 2.2, 2.35]), "worst": np.array([2.3, 2.4, 2.5])}
    (gap,) = tuning.gaps(loss, {"a_vs_b": ("a", "b")}).values()
    assert gap.estimate == pytest.approx(-0.1 - 0.05 / 3) and gap.n == 3
    assert gap.high - gap.low < claims.t(loss["a"]).high - claims.t(loss["a"]).low  # pairing removes the seed noise
    with pytest.raises(ValueError, match="does not hold"):
        tuning.gaps(loss, {"x": ("a", "c")})
    near = tuning.nearest(loss, "worst")  # b is closer to worst than a is
    assert near.estimate == pytest.approx(np.mean([0.2, 0.2, 0.15]))
    with pytest.raises(ValueError, match="besides"):
        tuning.nearest({"a": loss["a"]}, "a")


def test_by_width_pairs_seeds_within_each_width():
    index = pd.MultiIndex.from_product([[64, 128], [2, 0, 1]], names=["width", "seed"])
    a = pd.Series([2.0, 2.2, 2.1, 1.9, 2.1, 2.0], index=index)  # seeds out of order
    b = (a + 0.1 + a.index.get_level_values("seed") / 100).sample(frac=1, random_state=0)  # shuffled
    gaps = tuning.by_width(a, b, [64, 128])
    assert list(gaps) == [64, 128] and all(g.estimate == pytest.approx(-0.11) for g in gaps.values())
    assert all(g.low == pytest.approx(-0.11 - claims.t([0, 1, 2]).high / 100 + 0.01) for g in gaps.values())


def test_cost_counts_a_search_in_runs_of_the_setting_it_is_judged_against():
    one_run = pd.DataFrame({"flops": [10.0, 10.0], "seconds": [2.0, 4.0]})
    searches = {"small": pd.DataFrame({"flops": [1.0] * 5, "seconds": [0.3] * 5}),
                "big": pd.DataFrame({"flops": [10.0] * 4, "seconds": [3.0] * 4})}
    assert tuning.cost(searches, one_run) == {"small": pytest.approx((0.5, 0.5)), "big": pytest.approx((4.0, 4.0))}
