"""Where each randomness lives: reruns of a model, held-out loss under temperature, top-k hit rates."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmlab import claims
from lmlab.corpus import CharDataset
from lmlab.experiments.randomness import (
    argmax_agreement,
    entropy,
    heldout_logits,
    interval_table,
    loss_vs_temperature,
    rerun_difference,
    top_k_hit_rate,
)
from lmlab.model import GPT, GPTConfig
from lmlab.rng import seeded
from lmlab.stats import mean_difference, t_interval
from lmlab.train import evaluate

TEXT = "to be or not to be, that is the question. " * 40


def gpt(dropout: float, ctx: int = 16) -> GPT:
    return GPT(GPTConfig(vocab_size=20, ctx=ctx, width=16, depth=1, heads=2, dropout=dropout, init_std=0.2), seed=1)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_eval_mode_reruns_are_bit_identical_whatever_the_dropout_rate(p):
    idx = torch.randint(20, (3, 16), generator=torch.Generator().manual_seed(0))
    assert rerun_difference(gpt(p), idx) == 0.0


def test_dropout_on_makes_reruns_differ_only_when_p_is_positive():
    idx = torch.randint(20, (3, 16), generator=torch.Generator().manual_seed(0))
    assert rerun_difference(gpt(0.5), idx, training=True) > 0
    assert rerun_difference(gpt(0.0), idx, training=True) == 0.0
    assert rerun_difference(gpt(0.5), idx, training=True, seeds=(3, 3)) == 0.0  # the same masks


def test_rerun_difference_leaves_the_rng_and_the_mode_alone():
    model, idx = gpt(0.5).train(), torch.zeros(1, 4, dtype=torch.long)
    torch.manual_seed(9)
    state = torch.get_rng_state()
    rerun_difference(model, idx, training=True)
    assert torch.equal(torch.get_rng_state(), state) and model.training
    with pytest.raises(ValueError, match="seeds"):
        rerun_difference(model, idx, seeds=(0,))


def test_heldout_logits_are_the_windows_evaluate_scores():
    data = CharDataset(TEXT * 3, val_fraction=0.3)
    model = GPT(GPTConfig(vocab_size=data.vocab_size, ctx=16, width=16, depth=1, heads=2), seed=0)
    logits, targets = heldout_logits(model, data.val.ids, batch_size=4, batches=3)
    assert logits.shape == (3 * 4 * 16, data.vocab_size) and targets.shape == (3 * 4 * 16,)
    expected = evaluate(model, data, batch_size=4, batches=3)["val"]
    assert F.cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="batches"):
        heldout_logits(model, data.val.ids, 4, 0)


def test_loss_vs_temperature():
    logits = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 3
    targets = logits.argmax(-1)  # the model is always right, so sharper is always better
    losses = loss_vs_temperature(logits, targets, (0.5, 1.0, 2.0))
    assert losses[1.0] == pytest.approx(F.cross_entropy(logits, targets).item())
    assert losses.is_monotonic_increasing and list(losses.index) == [0.5, 1.0, 2.0]
    flat = loss_vs_temperature(torch.zeros(4, 7), torch.arange(4), (0.3, 3.0))
    assert flat.tolist() == pytest.approx([math.log(7)] * 2)
    with pytest.raises(ValueError, match="temperature"):
        loss_vs_temperature(logits, targets, (0.0,))


def test_top_k_hit_rate_counts_ranks_and_ignores_temperature():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 0.0, 0.0]])
    targets = torch.tensor([0, 1, 1])  # ranks 1, 3, and tied for first
    rates = top_k_hit_rate(logits, targets, (1, 2, 3, 10))
    assert rates.tolist() == pytest.approx([2 / 3, 2 / 3, 1.0, 1.0])
    assert top_k_hit_rate(logits / 0.3, targets, (1, 2, 3)).equals(top_k_hit_rate(logits, targets, (1, 2, 3)))
    with pytest.raises(ValueError, match="k must be"):
        top_k_hit_rate(logits, targets, (0,))


def test_entropy_of_uniform_and_certain_predictions():
    assert entropy(torch.zeros(3, 5)) == pytest.approx(math.log(5))
    assert entropy(torch.tensor([[100.0, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-6)


def test_seeded_repeats_the_draws_and_leaves_the_callers_stream_alone():
    torch.manual_seed(9)
    state = torch.get_rng_state()
    with seeded(3):
        first = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded(3):
        assert torch.equal(torch.rand(4), first)


def test_argmax_agreement_is_one_without_dropout_and_below_one_with_much():
    idx = torch.randint(20, (4, 16), generator=torch.Generator().manual_seed(0))
    assert argmax_agreement(gpt(0.0), idx) == 1.0
    heavy = gpt(0.5).eval()
    assert argmax_agreement(heavy, idx, seed=1) < 1.0
    assert argmax_agreement(heavy, idx, seed=1) == argmax_agreement(heavy, idx, seed=1)  # the same masks
    assert not heavy.training  # the mode it had


def test_mean_difference_and_its_standard_error():
    diff, se = mean_difference([3.0, 3.2, 3.1], [2.0, 2.0, 2.0])
    assert diff == pytest.approx(1.1) and se == pytest.approx((0.01 / 3) ** 0.5)
    with pytest.raises(ValueError, match="two seeds"):
        mean_difference([1.0], [2.0, 3.0])


def test_t_interval_covers_the_mean_with_the_t_quantile():
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(mean - lo)
    assert hi - mean == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) · s / √n
    with pytest.raises(ValueError, match="at least two"):
        t_interval([1.0])


def test_paired_interval_is_the_t_interval_of_the_differences():
    from lmlab.stats import paired_interval

    mean, lo, hi = paired_interval([3.0, 4.0, 5.5], [2.0, 3.0, 4.0])
    assert (mean, lo, hi) == pytest.approx(t_interval([1.0, 1.0, 1.5]))
    with pytest.raises(ValueError, match="one result per seed"):
        paired_interval([1.0, 2.0], [1.0, 2.0, 3.0])


def test_bootstrap_weights_draw_every_resample_with_replacement():
    from lmlab.stats import bootstrap_weights

    w = bootstrap_weights(7, 200, seed=1)
    assert w.shape == (200, 7) and (w.sum(1) == 7).all() and (w >= 0).all()
    assert (w == bootstrap_weights(7, 200, seed=1)).all() and not (w == bootstrap_weights(7, 200, seed=2)).all()
    with pytest.raises(ValueError, match="n must be"):
        bootstrap_weights(1)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_weights(5, 3)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_units():
    from lmlab.stats import bootstrap_interval, percentile_interval

    rng = torch.Generator().manual_seed(0)
    small = torch.randn(20, generator=rng).tolist()
    large = torch.randn(2000, generator=rng).tolist()
    mean, lo, hi = bootstrap_interval(small)
    assert lo < mean < hi and hi - lo == pytest.approx(2 * 1.96 * torch.tensor(small).std().item() / 20**0.5, rel=0.3)
    _, lo2, hi2 = bootstrap_interval(large)
    assert hi2 - lo2 < (hi - lo) / 5
    assert percentile_interval(list(range(101)), 0.9) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval(list(range(20)), 1.5)


def test_half_samples_estimate_the_spread_of_a_mean_on_all_units():
    import numpy as np

    from lmlab.stats import centered_interval, half_samples

    w = half_samples(9, 50, seed=3)
    assert w.shape == (50, 9) and (w.sum(1) == 4).all() and set(np.unique(w)) == {0.0, 1.0}  # no unit twice
    x = np.random.default_rng(0).normal(size=400)
    w = half_samples(400, 2000)
    assert np.std(w @ x / w.sum(1)) == pytest.approx(x.std() / 20, rel=0.1)  # the full sample's standard error
    lo, hi = centered_interval(10.0, [1.0, 2.0, 3.0] * 10)
    assert lo < 10.0 < hi and hi - 10.0 == pytest.approx(10.0 - lo)  # the replicates' spread, the point's level
    with pytest.raises(ValueError, match="n must be"):
        half_samples(1)


def test_argmax_draw_share_is_how_often_a_sampler_does_what_greedy_would():
    from lmlab.experiments.randomness import argmax_draw_share

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p_top = math.exp(2) / (math.exp(2) + 2)
    assert argmax_draw_share(logits) == pytest.approx((p_top + 1 / 3) / 2)
    assert argmax_draw_share(logits, top_k=1) == pytest.approx((1 + 1 / 3) / 2)  # k = 1 keeps all three tied
    assert argmax_draw_share(logits, temperature=0) == pytest.approx(1.0)


def test_t_half_width_is_what_the_interval_puts_after_the_mean():
    from lmlab.stats import t_half_width, t_interval

    values = [2.0, 2.5, 2.1, 2.4]
    mean, low, high = t_interval(values)
    assert t_half_width(values) == pytest.approx(high - mean) == pytest.approx(mean - low)
    assert t_half_width(values, 0.99) > t_half_width(values)  # a wider confidence, a wider interval
    with pytest.raises(ValueError, match="two seeds"):
        t_half_width([1.0])


def test_interval_table_shows_each_claim_with_its_units():
    gain = claims.paired([1.0, 2.0, 3.0], [0.5, 1.0, 2.5])
    share = claims.resampled(0.1234567, 0.1, 0.15, n=64, resamples=1000)
    table = interval_table({"gain": gain, "share": share}, digits=3)
    assert list(table.index) == ["gain", "share"] and list(table.columns) == ["mean", "lo", "hi", "n", "interval"]
    assert table.loc["gain", "mean"] == pytest.approx(gain.estimate, abs=5e-4) and table.loc["gain", "n"] == 3
    assert table.loc["share", "mean"] == 0.123 and table.loc["share", "n"] == 64
    assert table.loc["gain", "interval"] == gain.kind and "2 degrees of freedom" in gain.kind
    assert "1,000 resamples" in table.loc["share", "interval"]


def test_copied_mask_marks_the_characters_of_every_copied_string_and_no_other():
    from lmlab.experiments.randomness import copied_mask

    source = "the quick brown fox jumps over the lazy dog"
    text = "XXXX" + "quick brown fo" + "YYYY"  # three 12-character strings of the source, overlapping
    mask = copied_mask(text, source, 12)
    assert mask[4:18].all() and not mask[:4].any() and not mask[18:].any()
    assert not copied_mask(text, source, 15).any()  # no 15-character string of the text is in the source
    assert not copied_mask("quick", source, 12).any()  # shorter than n: nothing to copy
    with pytest.raises(ValueError, match="n must be"):
        copied_mask(text, source, 0)


def test_uncopied_scores_only_the_characters_outside_copied_strings():
    from lmlab.corpus import CharTokenizer
    from lmlab.experiments.randomness import uncopied
    from lmlab.likelihood import surprise_and_entropy

    tok = CharTokenizer("abcdefghijklmnopqrst")  # 20 characters, the test model's vocabulary
    prompt = [3, 1, 4, 1]
    ids = torch.tensor([prompt + list(range(12)),  # continuation "abcdefghijkl": the whole source, copied
                        prompt + [12, 13, 14, 15, 16, 17, 18, 19, 12, 13, 14, 15]])  # "mnopqrstmnop": not
    model = gpt(0.0)
    u = uncopied(model, tok, ids, 4, source="abcdefghijkl", n=12)
    nll = surprise_and_entropy(model, ids, 4)[0]
    assert u["NLL, not copied"] == pytest.approx(nll[1].mean().item())  # the second row only
    assert u["NLL, not copied"] != pytest.approx(nll.mean().item())
    assert u["copied characters"] == 0.5
    assert u["distinct-4, not copied"] == pytest.approx(8 / 9)  # "mnop" twice among the second row's nine
    nothing = uncopied(model, tok, ids, 4, source="zzzzzzzzzzzzzzzz", n=12)
    assert nothing["NLL, not copied"] == pytest.approx(nll.mean().item()) and nothing["copied characters"] == 0


# ---------------------------------------------------------------- against the right baseline


def test_best_step_is_the_step_of_the_lowest_validation_loss():
    from lmlab.experiments.randomness import best_step
    from lmlab.history import History

    hist = History(eval_step=[0, 10, 20, 30], eval_val=[4.0, 2.5, 2.5, 3.0])
    assert best_step(hist) == 10  # the first of a tie: stopping as soon as the loss stops falling
    hist.eval_val[-1] = 1.0
    assert best_step(hist) == 30


def test_fit_temperature_finds_the_temperature_that_generated_the_targets():
    from lmlab.experiments.randomness import fit_temperature

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20_000, 8, generator=g) * 3
    for true_t in (0.5, 1.0, 2.5):  # targets drawn from softmax(logits / T): the fitted T must be T
        targets = torch.multinomial((logits / true_t).softmax(-1), 1, generator=g).squeeze(1)
        fitted = fit_temperature(logits, targets)
        assert fitted == pytest.approx(true_t, rel=0.05)
        grid = [F.cross_entropy(logits / t, targets).item() for t in (fitted * 0.9, fitted, fitted * 1.1)]
        assert grid[1] <= min(grid[0], grid[2])  # a minimum, not just near one
    assert fit_temperature(logits, logits.argmax(-1), high=3.0) < 0.06  # always right: as cold as allowed


def test_calibrated_fits_t_on_one_half_and_scores_on_the_other():
    from lmlab.corpus import windows
    from lmlab.experiments.randomness import (
        FITTED_T,
        LOSS_FIT,
        LOSS_T1,
        TOP1,
        calibrated,
        fit_temperature,
        window_logits,
    )

    data = CharDataset(TEXT * 3, val_fraction=0.3)
    model = GPT(GPTConfig(vocab_size=data.vocab_size, ctx=16, width=16, depth=1, heads=2, init_std=0.5), seed=0)
    x, y = windows(data.val.ids, 10, 16, torch.Generator().manual_seed(0))
    row = calibrated(model, x, y, batch_size=3, k=3)
    logits, targets = window_logits(model, x, y, batch_size=4)  # the batch size changes nothing
    assert logits.shape == (160, data.vocab_size)
    first, second = slice(0, 80), slice(80, None)
    t = fit_temperature(logits[first], targets[first])
    assert row[FITTED_T] == pytest.approx(t)
    assert t != pytest.approx(fit_temperature(logits, targets), rel=1e-3)  # the scoring half took no part in it
    assert row[LOSS_T1] == pytest.approx(F.cross_entropy(logits[second], targets[second]).item(), rel=1e-5)
    assert row[LOSS_FIT] == pytest.approx(F.cross_entropy(logits[second] / t, targets[second]).item(), rel=1e-5)
    hits = top_k_hit_rate(logits[second], targets[second], (1, 3))
    assert row[TOP1] == pytest.approx(hits[1]) and row["real char in top-3"] == pytest.approx(hits[3])
    with pytest.raises(ValueError, match="two windows"):
        calibrated(model, x[:1], y[:1], batch_size=3, k=3)


def test_stopped_all_brings_back_each_run_at_its_step(tiny_cfg, tiny_data, tiny_train_cfg, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import lmlab.runs
    from lmlab.experiments.randomness import stopped_all
    from lmlab.runs import RunSpec

    specs = {s: RunSpec(tiny_cfg, tiny_train_cfg, seed=s) for s in (0, 1)}
    monkeypatch.setattr(lmlab.runs.RunSpec, "data", lambda self: tiny_data)
    with ThreadPoolExecutor(2) as pool:
        got = stopped_all({s: (spec, 3 * (s + 1)) for s, spec in specs.items()}, executor=pool)
    assert [got[s][1].eval_step[-1] for s in (0, 1)] == [3, 6]
    here = stopped_all({0: (specs[0], 3)})  # from the cache now, the same model
    assert here[0][1] == got[0][1]
