import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from lmlab.model import GPT, GPTConfig, flops_per_token, param_count

CONFIGS = [
    GPTConfig(vocab_size=17, ctx=8, width=16, depth=1, heads=2),
    GPTConfig(vocab_size=65, ctx=32, width=32, depth=2, heads=4),
    GPTConfig(vocab_size=80, ctx=16, width=48, depth=3, heads=3, param="mup", base_width=24),
    GPTConfig(vocab_size=5, ctx=4, width=64, depth=1, heads=8, zero_query=True, zero_readout=True),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_param_count_matches_the_model(cfg):
    model = GPT(cfg)
    assert param_count(cfg) == model.num_params(non_embedding=True)
    assert param_count(cfg, non_embedding=False) == sum(p.numel() for p in model.parameters())


def test_param_count_by_hand():
    cfg = GPTConfig(vocab_size=65, ctx=64, width=128, depth=2, heads=4)
    # per block: Q, K, V, output 4·128², MLP 8·128², two LayerNorms 4·128; then the final LayerNorm
    assert param_count(cfg) == 2 * (12 * 128**2 + 4 * 128) + 2 * 128 == 394_496
    assert param_count(cfg, non_embedding=False) == 394_496 + (65 + 64 + 65) * 128


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_flops_per_token_formula(cfg):
    readout = cfg.vocab_size * cfg.width
    assert flops_per_token(cfg) == 6 * (param_count(cfg) + readout) + 6 * cfg.depth * cfg.ctx * cfg.width


def test_flops_per_token_by_hand():
    cfg = GPTConfig(vocab_size=65, ctx=64, width=128, depth=2, heads=4)
    # 6 per non-embedding parameter, 6 per readout weight, 6·depth·ctx·width for attention
    assert flops_per_token(cfg) == 6 * 394_496 + 6 * 65 * 128 + 6 * 2 * 64 * 128 == 2_515_200


def linear_flops(model: GPT, include_head: bool) -> int:
    """Forward FLOPs per token of every matrix multiply by a weight: 2·in·out each (a multiply and an add)."""
    return sum(2 * m.in_features * m.out_features for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and (include_head or name != "head"))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}")
def test_linear_layers_are_all_the_weight_matmuls(cfg):
    """What torch actually multiplies in a forward pass, counted by torch's own FLOP counter,
    is the Linear layers' 2·in·out per token (the embeddings are lookups, attention is apart)."""
    model = GPT(cfg).eval()
    batch = 3
    x = torch.randint(cfg.vocab_size, (batch, cfg.ctx))
    with FlopCounterMode(display=False) as counter:
        model(x)
    counts = counter.get_flop_counts()["Global"]
    matmuls = sum(n for op, n in counts.items() if str(op).split(".")[1] in ("mm", "addmm", "matmul"))
    assert matmuls == linear_flops(model, include_head=True) * batch * cfg.ctx


SHAPES = CONFIGS + [GPTConfig(vocab_size=80, ctx=64, width=w, depth=d, heads=2) for w, d in ((4, 1), (12, 3), (40, 10))]


@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: f"w{c.width}d{c.depth}v{c.vocab_size}")
def test_flops_per_token_matches_torchs_flop_counter(cfg):
    """torch's FlopCounterMode over a real forward and backward pass: its dense matmuls are
    exactly 6 FLOPs per weight of every Linear layer, readout included, per token (2 forward, 4
    backward: the gradients of the input and of the weight). flops_per_token is that, plus the
    stated attention term 6·depth·ctx·width (which the counter does not see on a CPU, where
    attention runs in one fused kernel) and 6 per LayerNorm parameter (the 6N convention)."""
    model = GPT(cfg)
    batch = 2
    x = torch.randint(cfg.vocab_size, (batch, cfg.ctx))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    counts = counter.get_flop_counts()["Global"]
    matmuls = sum(n for op, n in counts.items() if str(op).split(".")[1] in ("mm", "addmm", "bmm", "matmul"))
    tokens = batch * cfg.ctx
    assert matmuls == 3 * linear_flops(model, include_head=True) * tokens
    vectors = sum(p.numel() for n, p in model.named_parameters() if model.param_kind(n) == "vector")
    assert vectors == cfg.depth * 4 * cfg.width + 2 * cfg.width
    attention = 6 * cfg.depth * cfg.ctx * cfg.width
    assert flops_per_token(cfg) * tokens == matmuls + (attention + 6 * vectors) * tokens


def test_the_attention_term_is_half_the_full_score_matrix():
    """Attention written as two matmuls (what SDPA computes), counted by FlopCounterMode: QKᵀ and
    AV cost 4·ctx·width per token forward, 12·ctx·width with the backward. The causal mask makes
    half of the scores useful, which is the 6·ctx·width per layer flops_per_token counts."""
    ctx, width, heads = 16, 32, 4
    q, k, v = (torch.randn(1, heads, ctx, width // heads, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        y = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        y.sum().backward()
    full = counter.get_total_flops() / ctx  # per token
    assert full == 12 * ctx * width
    cfg = GPTConfig(vocab_size=5, ctx=ctx, width=width, depth=1, heads=heads)
    assert flops_per_token(cfg) - 6 * (param_count(cfg) + 5 * width) == full / 2


def test_the_readout_is_a_large_share_of_a_tiny_models_compute():
    small = GPTConfig(vocab_size=80, ctx=64, width=4, depth=1, heads=2)
    share = 6 * 80 * 4 / flops_per_token(small)
    assert 0.2 < share < 0.55


def test_flops_grow_with_every_size():
    base = GPTConfig(vocab_size=65, ctx=32, width=32, depth=2, heads=4)
    f = flops_per_token(base)
    for bigger in (dict(width=64), dict(depth=3), dict(ctx=64)):
        assert flops_per_token(GPTConfig(**{**base.to_dict(), **bigger})) > f
    bigger_vocab = GPTConfig(**{**base.to_dict(), "vocab_size": 1000})  # the readout costs 6·vocab·width
    assert flops_per_token(bigger_vocab) - f == 6 * (1000 - 65) * 32


# ---------------------------------------------------------------- fits

import numpy as np  # noqa: E402

from lmlab.experiments.laws import (  # noqa: E402
    EPOCH,
    HOFFMANN,
    Chinchilla,
    compute_optimal,
    family_optimum,
    fit_chinchilla,
    fit_power_law,
    frontier,
    isoflop_optimum,
    isoflop_range,
)


def test_power_law_recovers_its_parameters():
    x = np.logspace(3, 6, 8)
    fit = fit_power_law(x, 3.0 * x**-0.3)
    assert fit.alpha == pytest.approx(0.3, rel=1e-6) and fit.A == pytest.approx(3.0, rel=1e-5) and fit.E == 0
    assert fit.r2 == pytest.approx(1.0)


def test_power_law_with_an_irreducible_term():
    x = np.logspace(3, 6.5, 9)
    y = 1.2 + 40.0 * x**-0.35
    fit = fit_power_law(x, y, offset=True)
    assert (fit.E, fit.A, fit.alpha) == pytest.approx((1.2, 40.0, 0.35), rel=1e-3)
    plain = fit_power_law(x, y)  # without E the exponent comes out far too small
    assert plain.alpha < 0.5 * fit.alpha and plain.r2 < fit.r2


@pytest.mark.parametrize("bad, match", [
    (dict(x=[1, 2], y=[1, 2]), "at least 3 distinct"),
    (dict(x=[1, 2, 3], y=[1, 2]), "same length"),
    (dict(x=[1, 2, -3], y=[1, 2, 3]), "positive"),
])
def test_power_law_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(**bad)


def synthetic_runs(truth: Chinchilla, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    N, D = (g.ravel() for g in np.meshgrid(np.logspace(7.5, 10, 6), np.logspace(9, 11.5, 6)))
    return N, D, truth(N, D) * np.exp(rng.normal(0, noise, N.shape))


@pytest.mark.parametrize("truth", [HOFFMANN, EPOCH], ids=["hoffmann", "epoch"])
def test_chinchilla_fit_recovers_known_parameters(truth):
    fit = fit_chinchilla(*synthetic_runs(truth))  # noise-free: with 36 noisy runs A and α trade off
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(fit, name) == pytest.approx(getattr(truth, name), rel=0.05), name


def test_chinchilla_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 5 runs"):
        fit_chinchilla([1, 2], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        fit_chinchilla([1] * 6, [1] * 6, [1] * 5)


def test_compute_optimal_spends_the_budget_and_minimises_the_loss():
    C = 1e21
    N, D = compute_optimal(C, EPOCH)
    assert 6 * N * D == pytest.approx(C)
    for f in (0.8, 1.25):  # any other split of the same compute is worse
        assert EPOCH(N * f, D / f) > EPOCH(N, D)


def test_published_allocations_at_gophers_budget():
    """At Gopher's (and Chinchilla's) 5.76e23 FLOPs, Epoch AI's refit gives about 18 tokens per
    parameter, near Chinchilla's own 70B parameters on 1.4T tokens; Hoffmann et al.'s rounded
    approach-3 constants give about 93, the inconsistency Besiroglu et al. (2024) point out."""
    N, D = compute_optimal(5.76e23, EPOCH)
    assert float(f"{N:.2g}") == 7.2e10 and float(f"{D:.2g}") == 1.3e12 and round(D / N) == 18
    N, D = compute_optimal(5.76e23, HOFFMANN)
    assert float(f"{N:.2g}") == 3.2e10 and float(f"{D:.2g}") == 3.0e12 and round(D / N) == 93


def test_isoflop_parabola_finds_the_bottom():
    N = np.logspace(5, 7, 7)
    L = 2 + 0.1 * (np.log(N) - np.log(3e5)) ** 2
    assert isoflop_optimum(N, L) == pytest.approx(3e5)
    with pytest.raises(ValueError, match="curves downward"):
        isoflop_optimum(N, -L)


def test_isoflop_profiles_interpolate_and_never_extrapolate():
    import pandas as pd

    from lmlab.experiments.laws import isoflop_profiles

    # two sizes, each with 6N FLOPs per token, trained for 1e3, 1e4 and 1e5 tokens; L = 1/log10(D)
    runs = pd.DataFrame([{"N": N, "tokens": D, "flops": 6 * N * D, "loss": 1 / np.log10(D)}
                         for N in (10.0, 100.0) for D in (1e3, 1e4, 1e5)])
    prof = isoflop_profiles(runs, [6e4 * np.sqrt(10), 6e7])
    small = prof[prof.N == 10.0].iloc[0]  # C = 6·10·10^3.5: halfway between its runs in log D
    assert small.D == pytest.approx(10**3.5) and small.L == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert set(prof[prof.C == 6e7].N) == {100.0}  # beyond the small model's dearest run: not drawn
    assert len(prof[prof.C == 6e4 * np.sqrt(10)]) == 1  # below the big model's cheapest run: not drawn


def test_isoflop_optima_keep_only_interior_bottoms():
    import pandas as pd

    from lmlab.experiments.laws import isoflop_optima

    N = np.logspace(3, 5, 5)
    rows = [{"C": 1.0, "N": n, "D": 1 / n, "L": 2 + (np.log(n) - np.log(1e4)) ** 2} for n in N]  # bottom at 1e4
    rows += [{"C": 2.0, "N": n, "D": 2 / n, "L": 2 - np.log(n)} for n in N]  # always falling: no bottom
    rows += [{"C": 3.0, "N": n, "D": 3 / n, "L": 2 + (np.log(n) - np.log(1e6)) ** 2} for n in N]  # bottom beyond
    optima = isoflop_optima(pd.DataFrame(rows))
    assert list(optima.index) == [1.0] and optima.loc[1.0, "N_opt"] == pytest.approx(1e4)
    assert optima.loc[1.0, "tokens_per_param"] == pytest.approx(1e-4 / 1e4)


def test_chinchilla_fit_from_a_start_reaches_the_same_optimum():
    N, D, L = synthetic_runs(EPOCH, noise=0.01, seed=3)
    full = fit_chinchilla(N, D, L)
    warm = fit_chinchilla(N, D, L * 1.001, n_starts=0, start=full)  # a bootstrap-like perturbation
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(warm, name) == pytest.approx(getattr(full, name), rel=0.05), name


# ---------------------------------------------------------------- the chapter's family and compute model

import pandas as pd  # noqa: E402

from lmlab.budget import BUDGETS  # noqa: E402
from lmlab.experiments import scaling  # noqa: E402
from lmlab.experiments.laws import statistics as laws_statistics  # noqa: E402
from lmlab.stats import cluster_bootstrap  # noqa: E402
from lmlab.train import TrainConfig  # noqa: E402


def test_family_uses_the_engines_counts():
    sizes = BUDGETS["book"].scaling
    fam = scaling.family(sizes, depths=[1, 2, 10])
    cfg = scaling.model_config(sizes, 10)
    row = fam.set_index("depth").loc[10]
    assert row.width == 4 * 10 and row.N == param_count(cfg) and row.flops_per_token == flops_per_token(cfg)
    assert row.N_total == param_count(cfg, non_embedding=False)


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_the_family_keeps_its_head_size_so_mups_attention_is_sps(name):
    """Heads grow with width at a fixed d_head: μP's attention scale √d_head,base / d_head is then SP's
    1/√d_head at every size, the base's included. A fixed head count (the control) would cool the widest
    model's attention by √(its width / the base's) against SP."""
    sizes = BUDGETS[name].scaling
    for depth in sizes.depths:
        cfg = scaling.model_config(sizes, depth)
        assert cfg.head_dim == sizes.d_head and cfg.heads == cfg.width // sizes.d_head and cfg.head_dim_mult == 1
        attn = GPT(cfg).blocks[0].attn
        assert attn.scale == pytest.approx(1 / sizes.d_head**0.5)
    widest = scaling.model_config(sizes, sizes.depths[-1])
    fixed = GPTConfig(**{**widest.to_dict(), "heads": 1, "base_heads": 1})  # one head at every width: d_head grows
    assert GPT(fixed).blocks[0].attn.scale * (widest.width / widest.base_width) ** 0.5 == pytest.approx(
        1 / fixed.head_dim**0.5)
    with pytest.raises(ValueError, match="multiple of d_head"):
        scaling.shaped(80, 3, 4, 8, 16)


def test_family_optimum_minimises_along_the_family_with_its_own_flop_count():
    """With FLOPs per token of 6N + a fixed 6·10⁶ overhead (attention, readout), the optimum is not
    the closed form's; on the family's own line it beats every member and every nearby split."""
    N = np.geomspace(1e3, 1e7, 400)  # dense, so that interpolating between members costs nothing
    members = pd.DataFrame({"depth": range(1, 401), "N": N, "N_total": N + 5e3, "flops_per_token": 6 * N + 6e6})
    C = 1e14
    best = family_optimum(C, EPOCH, members)
    assert best["inside"] and best["D_opt"] * (6 * best["N_opt"] + 6e6) == pytest.approx(C, rel=1e-4)
    along = EPOCH(members.N, C / members.flops_per_token)
    assert best["L_opt"] <= along.min() + 1e-5  # to the kinks of interpolating between members
    for f in (0.9, 1.1):
        n = best["N_opt"] * f
        assert EPOCH(n, C / (6 * n + 6e6)) >= best["L_opt"] - 1e-6
    closed, _ = compute_optimal(C, EPOCH)  # C = 6ND ignores the overhead: a different answer
    assert abs(np.log(closed / best["N_opt"])) > 0.05
    assert best["tokens_per_param_total"] < best["tokens_per_param"]
    nearest = members.iloc[(np.log(members.N) - np.log(best["N_opt"])).abs().argmin()]
    assert best["depth"] == nearest.depth and best["tokens"] == pytest.approx(C / nearest.flops_per_token)
    with pytest.raises(ValueError, match="C must be"):
        family_optimum(-1.0, EPOCH, members)


def test_seed_means_give_the_spread_of_one_run_and_of_the_mean():
    runs = pd.DataFrame({"depth": 1, "N": 10, "N_total": 20, "steps": 5, "tokens": 50, "flops": 1e3,
                         "final_val": [2.0, 2.2, 2.4]})
    row = scaling.seed_means(runs).iloc[0]
    assert row.loss == pytest.approx(2.2) and row.sd == pytest.approx(0.2) and row.seeds == 3
    assert row.se == pytest.approx(0.2 / np.sqrt(3))


def test_cluster_bootstrap_keeps_clusters_and_units_whole():
    df = pd.DataFrame([{"size": s, "seed": k, "budget": b, "y": 10 * s + k}
                       for s in range(5) for k in range(3) for b in range(4)])
    seen = []

    def stat(sample):
        seen.append(sample)
        return {"mean": sample.y.mean()}

    draws = cluster_bootstrap(df, stat, cluster="size", unit="seed", n_boot=50, seed=1)
    assert len(draws) == 50 and draws["mean"].std() > 0
    for sample in seen:
        assert sample._copy.nunique() == 5 and sample["size"].nunique() >= 3
        # every drawn (copy, seed) brings that seed's whole trajectory: all four budgets
        assert (sample.groupby(["_copy", "seed"]).budget.nunique() == 4).all()
        assert (sample.groupby("_copy").size() == 12).all()
    again = cluster_bootstrap(df, stat, cluster="size", unit="seed", n_boot=50, seed=1)
    assert again.equals(draws)


@pytest.mark.parametrize(("kw", "match"), [({"n_boot": 0}, "n_boot"), ({"cluster": "nope"}, "no column"),
                                           ({"min_clusters": 9}, "min_clusters")])
def test_cluster_bootstrap_rejects_bad_input(kw, match):
    df = pd.DataFrame({"size": [1, 2, 3], "seed": [0, 0, 0], "y": [1.0, 2.0, 3.0]})
    args = {"cluster": "size", "unit": "seed"} | kw
    with pytest.raises(ValueError, match=match):
        cluster_bootstrap(df, lambda s: {}, **args)


def synthetic_grid(truth: Chinchilla, copies: int = 1) -> pd.DataFrame:
    """Seed means of a sweep on a known surface: six sizes of the book's family, six budgets each."""
    members = scaling.family(BUDGETS["book"].scaling, depths=range(1, 21))
    rows = []
    for copy in range(copies):
        for _, m in members[members.depth.isin([1, 2, 3, 4, 6, 10])].iterrows():
            for tokens in 2048 * np.array([16, 32, 64, 128, 256, 512]):
                flops = float(tokens) * m.flops_per_token
                rows.append({"_copy": copy, "N": m.N, "tokens": float(tokens), "flops": flops,
                             "loss": float(truth(m.N, tokens))})
    return pd.DataFrame(rows), members


def test_statistics_recover_a_known_surface():
    truth = Chinchilla(E=1.2, A=30.0, B=60.0, alpha=0.4, beta=0.3)
    means, members = synthetic_grid(truth)
    C = float(np.sqrt(means.flops.min() * means.flops.max()))
    got = laws_statistics(means, members, C, d_fit=2048 * 512.0)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert got[name] == pytest.approx(getattr(truth, name), rel=0.02), name
    assert got["a"] == pytest.approx(0.3 / 0.7, rel=0.02)
    best = family_optimum(C, truth, members)
    assert got["N_opt"] == pytest.approx(best["N_opt"], rel=0.05)
    assert got["tokens_per_param_total"] < got["tokens_per_param"]
    assert got["alpha_N"] > 0 and got["alpha_N_pure"] < got["alpha_N"]  # a pure power law flattens the exponent
    # a size drawn twice (a bootstrap resample) changes nothing on noise-free data
    twice, _ = synthetic_grid(truth, copies=2)
    again = laws_statistics(twice, members, C, d_fit=2048 * 512.0, start=truth)
    assert again["alpha"] == pytest.approx(got["alpha"], rel=1e-3)


def test_frontier_and_isoflop_range():
    points = pd.DataFrame({"N": [1, 1, 2, 2, 3, 3], "tokens": [10, 100] * 3, "flops": [10, 100, 20, 200, 30, 300],
                           "loss": [3.0, 2.5, 2.8, 2.2, 2.9, 2.0]})
    assert frontier(points).flops.tolist() == [10, 20, 100, 200, 300]
    lo, hi = isoflop_range(points)
    assert 30 <= lo <= hi <= 100  # where all three sizes have runs on both sides
    with pytest.raises(ValueError, match="no compute budget"):
        isoflop_range(points, min_sizes=4)


def test_statistics_of_a_resample_with_two_sizes_leave_the_size_laws_undefined():
    """A bootstrap resample can draw two distinct sizes only: no compute budget is then reached by
    three, so there is no IsoFLOP profile (a_N is NaN), nor an L(N) fit; the surface still stands."""
    truth = Chinchilla(E=1.2, A=30.0, B=60.0, alpha=0.4, beta=0.3)
    means, members = synthetic_grid(truth)
    two = means[means.N.isin(sorted(means.N.unique())[-2:])]
    C = float(np.sqrt(two.flops.min() * two.flops.max()))
    got = laws_statistics(two, members, C, d_fit=2048 * 512.0, start=truth)
    assert np.isnan([got[k] for k in ("a_N", "alpha_N", "alpha_N_pure")]).all()
    assert np.isfinite([got[k] for k in ("E", "alpha", "beta", "N_opt", "alpha_C")]).all()
    full = laws_statistics(means, members, C, d_fit=2048 * 512.0, start=truth)
    assert np.isfinite([full[k] for k in ("a_N", "alpha_N", "alpha_N_pure")]).all()  # the control: all sizes


def test_run_spec_seed_defaults_to_seed_0_moved_by_the_replication_offset(monkeypatch):
    sizes = BUDGETS["smoke"].scaling
    monkeypatch.delenv("LMLAB_SEED_OFFSET", raising=False)
    assert scaling.run_spec(sizes, 1, -6).seed == 0 and scaling.run_spec(sizes, 1, -6, seed=2).seed == 2
    monkeypatch.setenv("LMLAB_SEED_OFFSET", "1000")
    assert scaling.run_spec(sizes, 1, -6).seed == 1000 and scaling.run_spec(sizes, 1, -6, seed=2).seed == 2


def test_wsd_cost_is_the_longest_run_plus_the_shorter_budgets_cooldowns():
    sizes = BUDGETS["book"].scaling  # budgets 16 … 512 (and 1024, 2048 for the two smallest), 20 % cooldown
    cool = TrainConfig(steps=1).cooldown_fraction
    assert scaling.wsd_cost(sizes, 4) == pytest.approx(1 + cool * sum(sizes.budgets[:-1]) / sizes.budgets[-1], abs=0.01)
    longest = sizes.budgets + sizes.long_budgets
    assert scaling.wsd_cost(sizes, 1) == pytest.approx(1 + cool * sum(longest[:-1]) / longest[-1], abs=0.01)


def test_fits_leave_out_the_budgets_shorter_than_fit_warmups_warmups():
    sizes = BUDGETS["book"].scaling  # warmup 10 steps, 5 warmups: budgets 16 and 32 are left out
    assert scaling.min_fit_steps(sizes) == scaling.FIT_WARMUPS * sizes.warmup_steps == 50
    table = pd.DataFrame({"steps": [16, 32, 50, 64, 2048], "loss": [3.0, 2.9, 2.8, 2.7, 2.0]})
    assert list(scaling.in_fits(table, sizes).steps) == [50, 64, 2048]
    with pytest.raises(ValueError, match="steps"):
        scaling.in_fits(table.rename(columns={"steps": "budget"}), sizes)
