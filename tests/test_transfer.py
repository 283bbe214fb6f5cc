"""μTransfer's measurements: the parabola optimum of a loss-vs-LR curve, its seed spread, and the
search that gives every setting the same grid."""

import numpy as np
import pandas as pd
import pytest

from lmlab.experiments import transfer


def test_parabola_optimum_finds_the_vertex_between_grid_points():
    x = np.arange(-10, -4)
    y = 2.0 + 0.1 * (x + 7.3) ** 2
    opt, loss, interior = transfer.parabola_optimum(x, y)
    assert interior and opt == pytest.approx(-7.3) and loss == pytest.approx(2.0)


def test_an_optimum_on_the_edge_is_not_interior():
    x = np.arange(-10, -6)
    opt, loss, interior = transfer.parabola_optimum(x, 3.0 - 0.1 * x)  # still falling at the top LR
    assert not interior and opt == -7 and loss == pytest.approx(3.7)


def test_diverged_runs_count_as_worse_than_any_finite_one():
    x = np.arange(-9, -4)
    y = np.array([2.5, 2.3, 2.2, 2.4, np.nan])
    opt, _, interior = transfer.parabola_optimum(x, y)
    assert interior and -8 < opt < -6
    with pytest.raises(ValueError, match="diverged"):
        transfer.parabola_optimum(x, np.full(5, np.nan))


@pytest.mark.parametrize(("x", "y", "window", "match"), [
    ([1, 2], [1.0], 2, "same length"), ([], [], 2, "non-empty"), ([1, 2, 3], [3.0, 1.0, 3.0], 0, "window")])
def test_parabola_optimum_rejects_bad_input(x, y, window, match):
    with pytest.raises(ValueError, match=match):
        transfer.parabola_optimum(x, y, window)


def test_optima_report_the_seed_spread():
    x = np.arange(-10, -3)
    rows = [{"param": "mup", "width": 32, "seed": s, "log2_lr": lg, "avg_train": 2 + 0.05 * (lg - c) ** 2}
            for s, c in enumerate((-7.2, -6.8, -7.0)) for lg in x]
    table = transfer.optima(pd.DataFrame(rows)).iloc[0]
    assert table.opt == pytest.approx(-7.0) and table.seeds == 3 and table.interior
    assert table.opt_se == pytest.approx(np.std([-7.2, -6.8, -7.0], ddof=1) / np.sqrt(3))
    assert table.loss == pytest.approx(2.0)


def test_optimum_shifts_pair_each_seed_across_widths():
    x = np.arange(-12, -3)
    centres = {(32, 0): -7.0, (32, 1): -6.6, (32, 2): -7.1, (256, 0): -9.0, (256, 1): -8.8, (256, 2): -9.4}
    rows = [{"param": "sp_fanin", "width": w, "seed": s, "log2_lr": lg, "avg_train": 2 + 0.05 * (lg - c) ** 2}
            for (w, s), c in centres.items() for lg in x]
    per_seed = transfer.seed_optima(pd.DataFrame(rows))
    assert len(per_seed) == 6 and per_seed.interior.all()
    (shifts,) = transfer.optimum_shifts(per_seed, 32, 256).values()
    assert shifts == pytest.approx([-2.0, -2.2, -2.3])  # seed by seed, in seed order
    with pytest.raises(ValueError, match="needs an optimum"):
        transfer.optimum_shifts(per_seed, 32, 64)


def test_flatness_reads_a_grid():
    grid = pd.DataFrame({"width": 32, "seed": [0, 0, 0, 1, 1, 1], "log2_lr": [-8, -7, -6] * 2,
                         "final_val": [2.3, 2.1, 2.2, 2.4, 2.3, 2.2]})  # seed 1's best is on the edge
    flat = transfer.flatness(grid, x="log2_lr")
    assert flat["curves"] == 2 and flat["edge"] == 1
    assert flat["range"] == pytest.approx(2.35 - 2.2)  # the seed-mean curve: 2.35, 2.2, 2.2
    assert flat["se"] == pytest.approx(np.std([2.3, 2.4], ddof=1) / np.sqrt(2))  # the median point's SE


class FakeSpec:
    """Stands in for a RunSpec in `lr_search`: it only needs `replace(lr=..., seed=...)`."""

    def __init__(self, centre, diverges_at=0.0, lr=None, seed=0):
        self.centre, self.diverges_at, self.lr, self.seed = centre, diverges_at, lr, seed

    def replace(self, lr, seed):
        return FakeSpec(self.centre, self.diverges_at, lr, seed)


def test_lr_search_widens_each_grid_until_its_lowest_point_is_inside(monkeypatch):
    def fake_summaries(specs, executor=None, desc=""):
        lg = [np.log2(s.lr) for s in specs]
        loss = [2 + 0.1 * (g - s.centre) ** 2 if g < s.diverges_at else np.nan for g, s in zip(lg, specs, strict=True)]
        return pd.DataFrame({"centre": [s.centre for s in specs], "log2_lr": lg, "seed": [s.seed for s in specs],
                             "avg_train": loss})

    monkeypatch.setattr(transfer, "summaries", fake_summaries)
    specs = [FakeSpec(-9.0), FakeSpec(-5.0), FakeSpec(-7.0), FakeSpec(-5.6, -5.5)]
    runs = transfer.lr_search(specs, start=(-8, -7, -6),
                              seeds=(0, 1))
    grids = {c: sorted(set(g.log2_lr)) for c, g in runs.groupby("centre")}
    assert grids[-9.0] == [-10, -9, -8, -7, -6]  # widened downwards until -9 has a point below it
    assert grids[-5.0] == [-8, -7, -6, -5, -4]  # upwards
    assert grids[-7.0] == [-8, -7, -6]  # already inside: nothing added
    assert grids[-5.6] == [-8, -7, -6, -5]  # -5 diverges (NaN): a diverged point above stops the search
    assert all(g.seed.tolist().count(0) == g.seed.tolist().count(1) for _, g in runs.groupby("centre"))


def test_lr_search_rejects_empty_input():
    with pytest.raises(ValueError, match="must not be empty"):
        transfer.lr_search([], start=(-7,))


def test_an_ablated_run_trains_the_model_without_its_rule(tiny_data, monkeypatch):
    """train_ablated is the run with the rule undone: the same as training that model by hand."""
    import math

    from lmlab.model import GPT, GPTConfig
    from lmlab.runs import RunSpec
    from lmlab.train import TrainConfig, train

    spec = RunSpec(GPTConfig(tiny_data.vocab_size, ctx=16, width=32, depth=1, heads=2, param="mup", base_width=16),
                   TrainConfig(steps=4, batch_size=2, lr=1e-2, eval_every=4, eval_batches=1, progress=False))
    monkeypatch.setattr(RunSpec, "data", lambda self: tiny_data)
    got = transfer.train_ablated({"spec": spec.to_dict(), "ablate": "attention_scale"})
    model = GPT(spec.model, spec.seed)
    for block in model.blocks:
        block.attn.scale = 1 / math.sqrt(spec.model.head_dim)
    want = train(model, tiny_data, spec.train, spec.seed)
    assert got["final_val"] == want.final_val and not got["diverged"]
    plain = train(GPT(spec.model, spec.seed), tiny_data, spec.train, spec.seed)
    assert plain.final_val != want.final_val  # the rule mattered


def test_ablated_runs_of_one_shape_train_as_a_group_with_each_rule_undone(tiny_data, monkeypatch):
    """A sweep hands same-shape ablated runs to `train_ablated_all` together: each is the run
    `train_ablated` trains alone (to the group's tolerance), its own rule undone."""
    import math

    from lmlab import run_groups
    from lmlab.model import GPTConfig
    from lmlab.runs import RunSpec
    from lmlab.train import TrainConfig

    spec = RunSpec(GPTConfig(tiny_data.vocab_size, ctx=16, width=32, depth=1, heads=2, param="mup", base_width=16),
                   TrainConfig(steps=4, batch_size=2, lr=1e-2, eval_every=4, eval_batches=1, progress=False))
    monkeypatch.setattr(RunSpec, "data", lambda self: tiny_data)
    monkeypatch.setattr(run_groups, "CPU_GROUP", 4)  # a CPU trains runs alone; here, as an accelerator would
    configs = [{"spec": spec.replace(seed=k).to_dict(), "ablate": a}
               for k, a in ((0, "attention_scale"), (1, "output_mult"), (0, "output_mult"))]
    assert transfer.ablated_sets(configs) == [[0, 1, 2]]
    together = transfer.train_ablated_all(configs)
    alone = [transfer.train_ablated(c) for c in configs]
    for g, a in zip(together, alone, strict=True):
        assert math.isclose(g["avg_train"], a["avg_train"], rel_tol=1e-4) and not g["diverged"]
    assert not math.isclose(together[0]["avg_train"], together[2]["avg_train"], rel_tol=1e-4)  # rules differ
