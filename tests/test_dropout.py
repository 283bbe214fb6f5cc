"""Dropout by hand against nn.Dropout, the dropout sites of the GPT, and MC dropout."""

import pytest
import torch
import torch.nn as nn

from lmlab.experiments.dropout import Uncertainty, dropout, dropout_sites, mc_uncertainty
from lmlab.model import GPT, GPTConfig
from lmlab.train import train


@pytest.mark.parametrize("p", [0.1, 0.3, 0.8])
def test_same_mask_and_values_as_nn_dropout(p):
    x = torch.randn(64, 33)
    torch.manual_seed(5)
    ours = dropout(x, p)
    torch.manual_seed(5)
    assert torch.equal(ours, nn.Dropout(p)(x))


def test_inverted_scaling_keeps_the_mean():
    x = torch.randn(10)
    g = torch.Generator().manual_seed(0)
    y = dropout(x.expand(200_000, -1), 0.4, generator=g)
    ratio = y / x
    kept = ratio[ratio != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.6))  # zeroed, or scaled by 1/(1-p)
    assert (y == 0).float().mean().item() == pytest.approx(0.4, abs=0.005)
    assert torch.allclose(y.mean(0), x, atol=0.02)
    assert torch.allclose(y.var(0) / x**2, torch.full((10,), 0.4 / 0.6), rtol=0.05)


def test_identity_in_eval_and_at_zero():
    x = torch.randn(5, 7)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.2"])
def test_bad_rate_names_the_argument(p):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        dropout(torch.ones(3), p)


def test_dropout_sites_of_the_gpt(tiny_cfg):
    from dataclasses import replace

    sites = dropout_sites(GPT(replace(tiny_cfg, depth=2, dropout=0.3)))
    assert [w for w, _ in sites] == ["drop", "blocks.0.attn (attention weights)", "blocks.0.drop",
                                     "blocks.1.attn (attention weights)", "blocks.1.drop"]
    assert {p for _, p in sites} == {0.3}


@pytest.fixture
def dropout_model(tiny_cfg, tiny_data, tiny_train_cfg):
    from dataclasses import replace

    model = GPT(replace(tiny_cfg, dropout=0.3), seed=0)
    train(model, tiny_data, tiny_train_cfg)
    return model


def test_mc_uncertainty_decomposes_entropy(dropout_model, tiny_data):
    u = mc_uncertainty(dropout_model, tiny_data.val.ids, passes=8, batches=2, batch_size=4)
    assert isinstance(u, Uncertainty) and u.entropy.shape == (2 * 4 * 16,)
    assert torch.allclose(u.mutual_info, u.entropy - u.expected_entropy)
    assert (u.mutual_info > -1e-5).all()  # Jensen: the entropy of a mean is at least the mean entropy
    assert (u.mutual_info.mean() > 0) and not dropout_model.training
    assert set(u.means()) == {"entropy", "expected_entropy", "mutual_info", "nll_mc", "nll"}


def test_mc_uncertainty_nll_is_the_eval_loss_and_runs_are_repeatable(dropout_model, tiny_data):
    from lmlab.corpus import EVAL_SEED, windows

    a = mc_uncertainty(dropout_model, tiny_data.val.ids, passes=3, batches=1, batch_size=4, seed=1)
    rng = torch.get_rng_state()
    b = mc_uncertainty(dropout_model, tiny_data.val.ids, passes=3, batches=1, batch_size=4, seed=1)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone
    assert torch.equal(a.entropy, b.entropy) and torch.equal(a.nll_mc, b.nll_mc)
    x, y = windows(tiny_data.val.ids, 4, 16, torch.Generator().manual_seed(EVAL_SEED))
    with torch.no_grad():
        assert a.nll.mean().item() == pytest.approx(dropout_model(x, y)[1].item(), rel=1e-5)
    c = mc_uncertainty(dropout_model, tiny_data.val.ids, passes=3, batches=1, batch_size=4, seed=2)
    assert not torch.equal(a.entropy, c.entropy) and torch.equal(a.nll, c.nll)  # new masks, same windows


def test_mc_uncertainty_rejects_a_model_without_dropout(tiny_model, tiny_data):
    with pytest.raises(ValueError, match="no dropout"):
        mc_uncertainty(tiny_model, tiny_data.val.ids, passes=2, batches=1, batch_size=2)
    model = GPT(GPTConfig(tiny_data.vocab_size, ctx=16, width=32, depth=1, heads=2, dropout=0.1))
    with pytest.raises(ValueError, match="passes must be an integer"):
        mc_uncertainty(model, tiny_data.val.ids, passes=0, batches=1, batch_size=2)
    with pytest.raises(ValueError, match="ctx must be less than the text's 5 characters"):
        mc_uncertainty(model, tiny_data.val.ids[:5], passes=1, batches=1, batch_size=2)


def test_model_spec_is_chapter_4s_run_at_a_rate_slice_and_seed():
    from lmlab.budget import BUDGETS
    from lmlab.experiments.dropout import model_spec

    s = BUDGETS["smoke"].dropout
    spec = model_spec(s, 0.1, s.small_chars, seed=2)
    assert spec.model.dropout == 0.1 and spec.model.width == s.width and spec.seed == 2
    assert spec.train_chars == s.small_chars and spec.train.steps == s.steps
    assert model_spec(s, 0.1, None).train_chars is None and model_spec(s, 0.1, None).seed == 0
    with pytest.raises(ValueError, match="p must be"):
        model_spec(s, 1.0, None)


def test_best_rate_is_the_lowest_loss_among_positive_rates():
    from lmlab.experiments.dropout import best_rate

    assert best_rate({0.0: 2.0, 0.1: 2.6, 0.2: 2.5, 0.5: 2.7}) == 0.2  # p = 0 never counts
    with pytest.raises(ValueError, match="p > 0"):
        best_rate({0.0: 2.0})


def test_dropout_moments_match_the_theory_and_the_uninverted_control_fails():
    from lmlab.experiments.dropout import dropout_moments

    x = torch.randn(500, generator=torch.Generator().manual_seed(0))
    m = dropout_moments(x, 0.3, 10_000)
    assert m["max_z"] < 5 and m["var_ratio"] == pytest.approx(0.3 / 0.7, rel=0.05) and m["var_theory"] == 0.3 / 0.7
    assert m["mean_err"] < 5 * x.abs().max().item() * (0.3 / 0.7 / 10_000) ** 0.5
    plain = dropout_moments(x, 0.3, 10_000, inverted=False)  # the mean misses x by p·x
    assert plain["max_z"] > 20
    with pytest.raises(ValueError, match="without zeros"):
        dropout_moments(torch.zeros(3), 0.3, 10)


def test_dropout_places_counts_every_application_in_a_forward_pass(tiny_cfg):
    from dataclasses import replace

    from lmlab.experiments.dropout import dropout_places

    for depth in (1, 3):
        model = GPT(replace(tiny_cfg, depth=depth, dropout=0.2)).eval()
        idx = torch.zeros(1, 8, dtype=torch.long)
        assert dropout_places(model, idx) == 1 + 3 * depth  # embeddings; per block attention weights and two outputs
        assert len(dropout_sites(model)) == 1 + 2 * depth  # one nn.Dropout per block serves both outputs
        assert not model.training


def test_the_seed_offset_moves_the_masks_of_mc_dropout_and_of_the_moments(dropout_model, tiny_data, monkeypatch):
    from lmlab.experiments.dropout import dropout_moments
    from lmlab.seeds import ENV

    x = torch.randn(50, generator=torch.Generator().manual_seed(0))
    kw = dict(passes=3, batches=1, batch_size=4)
    base, base_m = mc_uncertainty(dropout_model, tiny_data.val.ids, **kw, seed=7), dropout_moments(x, 0.3, 100, seed=7)
    monkeypatch.setenv(ENV, "7")  # offset 7: seed 0 now draws what seed 7 drew, and the windows move too
    moved = mc_uncertainty(dropout_model, tiny_data.val.ids, **kw, seed=0)
    assert not torch.equal(moved.nll, base.nll)  # fresh evaluation windows
    assert dropout_moments(x, 0.3, 100, seed=0) == base_m  # fresh masks: seed 0 + 7
    monkeypatch.setenv(ENV, "0")
    assert dropout_moments(x, 0.3, 100, seed=0) != base_m


def test_mc_by_text_is_mc_uncertainty_text_by_text(dropout_model, tiny_data):
    from lmlab.experiments.dropout import mc_by_text

    texts = {"unseen": tiny_data.val.ids, "seen": tiny_data.train.ids}
    table = mc_by_text(dropout_model, texts, passes=3, batches=1, batch_size=4, seed=1)
    assert list(table.index) == ["unseen", "seen"] and set(table.columns) == set(Uncertainty.__dataclass_fields__)
    for name, ids in texts.items():  # the same masks' seed for every text
        assert table.loc[name].to_dict() == mc_uncertainty(dropout_model, ids, 3, 1, 4, seed=1).means()
    assert table.loc["unseen", "nll"] != table.loc["seen", "nll"]  # each row its own text
    with pytest.raises(ValueError, match="texts must name at least one text"):
        mc_by_text(dropout_model, {}, passes=3, batches=1, batch_size=4)
