"""Beam search, the repetition feedback loop, and the filter facts chapter 5 states."""

import itertools

import pytest
import torch

from lmlab.experiments.maximisation import beam_search, feedback_summary, over_units, repetition_feedback
from lmlab.model import GPT, GPTConfig
from lmlab.sampling import filter_logits, generate
from lmlab.stats import bootstrap_interval


def gpt(vocab: int = 5, ctx: int = 24) -> GPT:
    return GPT(GPTConfig(vocab_size=vocab, ctx=ctx, width=16, depth=1, heads=2, init_std=0.5), seed=3).eval()


def total_logprob(model, ids, start):
    with torch.no_grad():
        logp = model(ids[:, :-1]).log_softmax(-1)
    return logp.gather(-1, ids[:, 1:, None])[:, start - 1 :, 0].sum(1)


def test_width_one_is_greedy_decoding():
    model, prompts = gpt(), torch.randint(5, (6, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(beam_search(model, prompts, 12, 1), generate(model, prompts, 12, temperature=0))


def test_a_beam_as_wide_as_every_prefix_finds_the_most_probable_continuation():
    model, prompts = gpt(vocab=3), torch.randint(3, (4, 3), generator=torch.Generator().manual_seed(1))
    found = beam_search(model, prompts, 3, width=9, chunk=3)  # 9 = every 2-token prefix: the search is exhaustive
    for row, prompt in enumerate(prompts):
        every = torch.tensor([[*prompt.tolist(), *c] for c in itertools.product(range(3), repeat=3)])
        best = every[total_logprob(model, every, 3).argmax()]
        assert torch.equal(found[row], best)


def test_wider_beams_find_text_at_least_as_probable_as_greedy_on_average():
    model, prompts = gpt(vocab=6), torch.randint(6, (16, 4), generator=torch.Generator().manual_seed(2))
    scores = {w: total_logprob(model, beam_search(model, prompts, 10, w), 4).mean().item() for w in (1, 4)}
    assert scores[4] >= scores[1]


def test_beam_search_leaves_the_mode_alone_and_checks_its_input():
    model = gpt().train()
    prompts = torch.zeros(2, 4, dtype=torch.long)
    assert beam_search(model, prompts, 3, 2).shape == (2, 7) and model.training
    with pytest.raises(ValueError, match="width must be"):
        beam_search(model, prompts, 3, 0)
    with pytest.raises(ValueError, match="fit in ctx=24"):
        beam_search(model, prompts, 21, 2)


def test_repetition_feedback_is_the_probability_of_each_copy_given_the_ones_before():
    model = gpt(vocab=7, ctx=32)
    phrases = torch.randint(7, (3, 5), generator=torch.Generator().manual_seed(4))
    control = torch.randint(7, (3, 5), generator=torch.Generator().manual_seed(5))
    copies, after = repetition_feedback(model, phrases, 4, control)
    assert copies.shape == after.shape == (3, 4)
    seq = phrases.repeat(1, 4)
    with torch.no_grad():
        p = model(seq[:, :-1]).softmax(-1).gather(-1, seq[:, 1:, None])[..., 0]
    assert copies[:, 2] == pytest.approx(p[:, 10:14].mean(1), rel=1e-5)  # copy 3's tokens after its first
    with torch.no_grad():
        alone = model(control[:, :-1]).softmax(-1).gather(-1, control[:, 1:, None])[..., 0].mean(1)
    assert after[:, 0] == pytest.approx(alone, rel=1e-5)  # no copy before it: the control on its own
    assert repetition_feedback(model, phrases, 4)[1] is None


def test_repetition_feedback_checks_that_the_copies_fit():
    model = gpt(vocab=7, ctx=32)
    with pytest.raises(ValueError, match="2 to 7 tokens long"):
        repetition_feedback(model, torch.zeros(2, 8, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="control must have"):
        repetition_feedback(model, torch.zeros(2, 5, dtype=torch.long), 4, torch.zeros(2, 4, dtype=torch.long))


def hugging_face_top_p(logits, top_p):
    """Hugging Face's TopPLogitsWarper, written out: sort ascending, drop the tokens whose cumulative
    probability stays at or below 1 − top_p, always keep the most likely one."""
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop = cumulative <= 1 - top_p
    drop[..., -1:] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


@pytest.mark.parametrize("top_p", [0.3, 0.5, 0.62, 0.9])
def test_top_p_keeps_as_many_tokens_as_hugging_face_even_where_the_boundary_is_a_tie(top_p):
    ties = torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5, 0.5, 0.0]])
    ours = torch.isfinite(filter_logits(ties, top_p=top_p)).sum(-1)
    theirs = torch.isfinite(hugging_face_top_p(ties, top_p)).sum(-1)
    assert torch.equal(ours, theirs)


def test_k_one_keeps_every_token_tied_for_first_so_it_is_greedy_only_without_ties():
    tied = torch.tensor([1.0, 3.0, 3.0, 0.0])
    assert torch.isfinite(filter_logits(tied, top_k=1)).sum() == 2  # both tied tokens can be drawn
    assert torch.isfinite(filter_logits(tied, temperature=0)).sum() == 1  # greedy takes the first


def test_feedback_summary_reads_every_copy_and_the_changes_with_bootstrap_intervals():
    g = torch.Generator().manual_seed(6)
    copies, after = torch.rand(20, 4, generator=g), torch.rand(20, 4, generator=g)
    per_copy, control, rises = feedback_summary(copies, after, resamples=1000, seed=3)
    assert list(per_copy.index) == [1, 2, 3, 4] and list(per_copy.columns) == ["mean", "lo", "hi"]
    assert per_copy.loc[2].tolist() == pytest.approx(bootstrap_interval(copies[:, 1].numpy(), resamples=1000, seed=3))
    assert control["mean"].tolist() == pytest.approx(after.mean(0).tolist())
    rise = rises["copy 2 − copy 1"]
    assert rise.estimate == pytest.approx((copies[:, 1] - copies[:, 0]).mean().item())
    assert (rise.n, rise.unit, rise.method, rise.resamples) == (20, "phrases", "bootstrap", 1000)
    assert set(rises) == {"copy 2 − copy 1", "last − copy 2", "control after the copies − alone"}
    assert feedback_summary(copies)[1] is None and len(feedback_summary(copies)[2]) == 2
    flat = over_units([1.0, 1.0, 1.0]).describe(1)
    assert flat == "1.0 [1.0, 1.0] (95 % bootstrap interval, 3 phrases, 2,000 resamples)"
    with pytest.raises(ValueError, match="copies"):
        feedback_summary(copies[:, :1])
