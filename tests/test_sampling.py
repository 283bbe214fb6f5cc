import math

import pytest
import torch

from lmlab.corpus import CharTokenizer
from lmlab.model import GPT, GPTConfig
from lmlab.sampling import filter_logits, generate, next_token_probs, sample

PROBS = [0.5, 0.3, 0.15, 0.05]


def logits_of(probs, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(probs, dtype=dtype).log()


def kept(logits: torch.Tensor) -> list[int]:
    """Indices that survive the filter (finite logits)."""
    return torch.isfinite(logits).nonzero().flatten().tolist()


# ---------------------------------------------------------------- filter_logits


def test_filtered_tokens_get_minus_infinity_and_zero_probability():
    out = filter_logits(logits_of(PROBS), top_k=2)
    assert out[2] == out[3] == float("-inf")
    probs = out.softmax(-1)
    assert probs[2] == probs[3] == 0
    assert probs[:2].tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8])


def test_temperature_divides_the_logits():
    logits = torch.randn(7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(filter_logits(logits), logits)
    # divided less their maximum, so a tiny T never gives inf − inf (the same softmax at every T)
    assert torch.allclose(filter_logits(logits, temperature=2.0), (logits - logits.max()) / 2)
    assert torch.allclose(filter_logits(logits, temperature=0.5), (logits - logits.max()) * 2)


def test_top_k_keeps_all_ties_at_the_kth_logit():
    logits = torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0, 0.0])
    assert kept(filter_logits(logits, top_k=2)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, top_k=4)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, top_k=5)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("k", [6, 7, 1000])
def test_top_k_at_least_the_vocabulary_keeps_everything(k):
    logits = torch.randn(6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(filter_logits(logits, top_k=k), logits)


def test_top_k_one_keeps_the_argmax():
    logits = torch.randn(9, generator=torch.Generator().manual_seed(2))
    out = filter_logits(logits, top_k=1)
    assert kept(out) == [logits.argmax().item()]
    assert out[logits.argmax()] == logits.max()


def test_top_p_one_keeps_everything():
    logits = torch.tensor([10.0, 0.0, -10.0, -30.0])  # tiny probabilities too
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)


@pytest.mark.parametrize(("p", "n"), [(0.01, 1), (0.5, 1), (0.51, 2), (0.7, 2), (0.8, 2), (0.81, 3), (0.96, 4)])
def test_top_p_keeps_the_smallest_set_reaching_p(p, n):
    assert kept(filter_logits(logits_of(PROBS), top_p=p)) == list(range(n))


@pytest.mark.parametrize(("p", "n"), [(0.5, 1), (0.5000001, 2), (0.75, 2), (0.7500001, 3), (0.875, 3), (0.9, 4)])
def test_top_p_exact_boundaries(p, n):
    # powers of two survive softmax exactly in float64, so reaching p exactly stops there
    assert kept(filter_logits(logits_of([0.5, 0.25, 0.125, 0.0625, 0.0625], torch.float64), top_p=p)) == list(range(n))


def test_top_p_maps_back_to_the_original_order():
    logits = logits_of([0.15, 0.5, 0.05, 0.3])
    assert kept(filter_logits(logits, top_p=0.7)) == [1, 3]
    assert kept(filter_logits(logits, top_p=0.81)) == [0, 1, 3]


def test_top_p_breaks_ties_at_the_crossing_by_id():
    """Which of several tied tokens top-p keeps is fixed (the lower ids first), not left to the sort
    kernel, whose order among ties varies with the length of the row (and the device)."""
    for n in (3, 40, 200):
        logits = torch.zeros(n)
        assert kept(filter_logits(logits, top_p=1.5 / n)) == [0, 1]
        assert kept(filter_logits(logits.flip(0), top_p=2.5 / n)) == [0, 1, 2]


def test_min_p_keeps_tokens_above_a_fraction_of_the_top():
    logits = logits_of(PROBS)
    assert kept(filter_logits(logits, min_p=0.0)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, min_p=0.05)) == [0, 1, 2, 3]  # 0.05 ≥ 0.025
    assert kept(filter_logits(logits, min_p=0.25)) == [0, 1, 2]  # ≥ 0.125
    assert kept(filter_logits(logits, min_p=0.4)) == [0, 1]  # ≥ 0.2
    assert kept(filter_logits(logits, min_p=0.7)) == [0]  # ≥ 0.35
    assert kept(filter_logits(logits, min_p=1.0)) == [0]


def test_min_p_keeps_ties_with_the_top():
    assert kept(filter_logits(torch.tensor([1.0, 1.0, 0.0]), min_p=1.0)) == [0, 1]


def test_filters_compose():
    logits = logits_of([0.4, 0.3, 0.2, 0.06, 0.04])
    # top-p after top-k sees the renormalised four: 0.4/0.96 + 0.3/0.96 + 0.2/0.96 = 0.9375 ≥ 0.93
    assert kept(filter_logits(logits, top_p=0.93)) == [0, 1, 2, 3]
    assert kept(filter_logits(logits, top_k=4, top_p=0.93)) == [0, 1, 2]
    assert kept(filter_logits(logits, top_k=3, min_p=0.6)) == [0, 1]


def test_top_k_ignores_temperature():
    logits = torch.randn(20, generator=torch.Generator().manual_seed(3))
    masks = [kept(filter_logits(logits, temperature=t, top_k=5)) for t in (0.1, 1.0, 10.0)]
    assert masks[0] == masks[1] == masks[2]
    assert len(masks[0]) == 5


def test_top_p_and_min_p_see_the_temperature():
    logits = logits_of(PROBS)
    assert kept(filter_logits(logits, temperature=0.2, top_p=0.7)) == [0]  # sharper: the top token suffices
    assert kept(filter_logits(logits, temperature=1.0, top_p=0.7)) == [0, 1]
    assert kept(filter_logits(logits, temperature=20.0, top_p=0.7)) == [0, 1, 2]  # flatter: more are needed
    assert len(kept(filter_logits(logits, temperature=0.2, min_p=0.1))) < len(kept(filter_logits(logits, min_p=0.1)))


def test_rows_are_filtered_independently():
    batch = torch.stack([logits_of(PROBS), logits_of(PROBS[::-1]), torch.tensor([0.0, 0.0, 0.0, 5.0])])
    for kw in ({"top_k": 2}, {"top_p": 0.7}, {"min_p": 0.4}, {"top_k": 3, "top_p": 0.9, "temperature": 0.7}):
        out = filter_logits(batch, **kw)
        for i in range(len(batch)):
            assert torch.equal(out[i], filter_logits(batch[i], **kw)), (kw, i)
    assert [kept(r) for r in filter_logits(batch, top_p=0.7)] == [[0, 1], [2, 3], [3]]
    assert filter_logits(torch.zeros(2, 3, 5), top_k=2).shape == (2, 3, 5)


@pytest.mark.parametrize(("kw", "name"), [
    ({"top_k": 0}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"temperature": -1.0}, "temperature"),
    ({"min_p": 2.0}, "min_p"),
    ({"min_p": -0.1}, "min_p"),
])
def test_bad_filter_values(kw, name):
    with pytest.raises(ValueError, match=name):
        filter_logits(torch.zeros(4), **kw)


# ---------------------------------------------------------------- generate and sample

TOKENIZER = CharTokenizer("abcdefghij ")
CTX = 16


@pytest.fixture
def model() -> GPT:
    return GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=CTX, width=32, depth=1, heads=2, init_std=0.2), seed=0)


def greedy_by_hand(model, idx, n):
    for _ in range(n):
        nxt = model(idx[:, -CTX:])[:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], 1)
    return idx


def prompt(n: int = 4, rows: int = 1) -> torch.Tensor:
    return torch.randint(TOKENIZER.vocab_size, (rows, n), generator=torch.Generator().manual_seed(0))


def test_greedy_ignores_the_seed_and_matches_argmax(model):
    model.eval()
    x = prompt()
    outs = [generate(model, x, 24, temperature=0, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert torch.equal(outs[0], greedy_by_hand(model, x, 24))
    assert torch.equal(outs[0][:, :4], x)
    assert torch.equal(generate(model, x, 24, top_k=1, generator=torch.Generator().manual_seed(9)), outs[0])


def test_same_seed_same_text_different_seed_different_text(model):
    x = prompt()

    def run(seed):
        return generate(model, x, 40, temperature=1.0, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_prompt_longer_than_ctx(model):
    with pytest.raises(ValueError, match="ctx"):
        generate(model, prompt(CTX + 1), 5)
    assert generate(model, prompt(CTX), 1).shape == (1, CTX + 1)


def test_generation_longer_than_ctx_slides_the_window(model):
    model.eval()
    x = prompt(4, rows=2)
    out = generate(model, x, 3 * CTX, temperature=0)
    assert out.shape == (2, 4 + 3 * CTX)
    assert torch.equal(out, greedy_by_hand(model, x, 3 * CTX))
    sampled = generate(model, x, 3 * CTX, top_p=0.9, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (2, 4 + 3 * CTX)
    assert int(sampled.max()) < TOKENIZER.vocab_size


def test_sampling_never_picks_a_filtered_token(model):
    x = prompt(4, rows=8)
    out = generate(model, x, 10, top_k=1, temperature=5.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, generate(model, x, 10, temperature=0))


@pytest.mark.parametrize(("kw", "name"), [({"temperature": -1.0}, "temperature"),
                                          ({"max_new_tokens": 0}, "max_new_tokens")])
def test_generate_bad_arguments(model, kw, name):
    with pytest.raises(ValueError, match=name):
        generate(model, prompt(), **{"max_new_tokens": 3, **kw})


@pytest.mark.parametrize("training", [True, False])
def test_mode_is_restored(model, training):
    model.train(training)
    generate(model, prompt(), 3)
    assert model.training is training
    sample(model, TOKENIZER, "abc", 3)
    assert model.training is training


def test_dropout_adds_no_randomness_to_greedy_decoding():
    cfg = GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=CTX, width=32, depth=1, heads=2, dropout=0.5, init_std=0.2)
    model = GPT(cfg, seed=0).train()
    x = prompt()
    assert torch.equal(generate(model, x, 20, temperature=0), generate(model, x, 20, temperature=0))


def test_dropout_on_makes_greedy_decoding_random_and_the_global_seed_reproduces_it():
    cfg = GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=CTX, width=32, depth=1, heads=2, dropout=0.5, init_std=0.2)
    model = GPT(cfg, seed=0).eval()
    x = prompt(4, rows=4)

    def mc(seed):
        torch.manual_seed(seed)
        return generate(model, x, 2 * CTX, temperature=0, dropout=True)

    assert torch.equal(mc(0), mc(0))
    assert not torch.equal(mc(0), mc(1))
    assert not torch.equal(mc(0), generate(model, x, 2 * CTX, temperature=0))
    assert not model.training  # the mode it had


def test_dropout_on_a_model_without_dropout_changes_nothing(model):
    x = prompt(4, rows=2)
    torch.manual_seed(0)
    assert torch.equal(generate(model, x, 20, temperature=0, dropout=True), generate(model, x, 20, temperature=0))


def test_sample_returns_strings_of_the_requested_length(model):
    out = sample(model, TOKENIZER, "abc ", chars=30, num_samples=3, seed=5)
    assert len(out) == 3
    assert all(isinstance(s, str) and len(s) == 30 for s in out)
    assert all(set(s) <= set(TOKENIZER.chars) for s in out)
    assert len(set(out)) == 3  # each row draws its own sample
    assert sample(model, TOKENIZER, "abc ", chars=30, num_samples=3, seed=5) == out
    assert sample(model, TOKENIZER, "abc ", chars=30, num_samples=3, seed=6) != out


def test_sample_passes_filters_through(model):
    greedy = sample(model, TOKENIZER, "hi", chars=20, num_samples=2, temperature=0)
    assert greedy[0] == greedy[1]
    assert sample(model, TOKENIZER, "hi", chars=20, num_samples=2, top_k=1, seed=3) == greedy


def test_sample_bad_arguments(model):
    with pytest.raises(ValueError, match="prompt"):
        sample(model, TOKENIZER, "", 5)
    with pytest.raises(ValueError, match="num_samples"):
        sample(model, TOKENIZER, "a", 5, num_samples=0)
    with pytest.raises(ValueError, match="'z'"):
        sample(model, TOKENIZER, "z", 5)


def test_sampled_frequencies_follow_the_filtered_distribution():
    """Many draws from one filtered row: frequencies match the renormalised kept probabilities."""
    probs = filter_logits(logits_of(PROBS), top_p=0.7).softmax(-1)
    draws = torch.multinomial(probs.expand(4000, 4), 1, generator=torch.Generator().manual_seed(0)).flatten()
    freq = torch.bincount(draws, minlength=4) / 4000
    assert freq[2] == freq[3] == 0
    assert freq[0].item() == pytest.approx(0.625, abs=0.03)
    assert math.isclose(freq.sum().item(), 1.0)


def test_the_kv_cache_changes_no_token(model):
    """Cached and uncached generation draw the same tokens, within ctx and after the window slides."""
    x = prompt(4, rows=3)
    for kw in ({"temperature": 0}, {"top_k": 5}, {"top_p": 0.9, "temperature": 1.3}):
        cached, plain = (generate(model, x, 2 * CTX, generator=torch.Generator().manual_seed(0), kv_cache=c, **kw)
                         for c in (True, False))
        assert torch.equal(cached, plain), kw


def test_next_token_probs_is_what_generate_draws_from(model):
    probs = next_token_probs(model, TOKENIZER, "abc", top_k=3)
    assert probs.shape == (TOKENIZER.vocab_size,) and probs.sum().item() == pytest.approx(1.0)
    assert (probs > 0).sum() == 3
    logits = model.eval()(torch.tensor([TOKENIZER.encode("abc")]))[0, -1]
    assert torch.allclose(next_token_probs(model, TOKENIZER, "abc"), logits.softmax(-1), atol=1e-6)
    greedy = next_token_probs(model, TOKENIZER, "abc", temperature=0)
    assert greedy.argmax() == logits.argmax() and greedy.sum() == 1 and greedy.max() == 1
    long_prompt = "abcdefghij" * 5  # longer than ctx: the model sees its last ctx characters
    seen = next_token_probs(model, TOKENIZER, long_prompt[-CTX:])
    assert torch.equal(next_token_probs(model, TOKENIZER, long_prompt), seen)
    with pytest.raises(ValueError, match="prompt"):
        next_token_probs(model, TOKENIZER, "")
    with pytest.raises(ValueError, match="top_k"):
        next_token_probs(model, TOKENIZER, "a", top_k=0)


def test_model_spec_is_one_run_of_the_budget_sizes():
    from lmlab.budget import BUDGETS
    from lmlab.experiments.decoding import model_spec

    sizes = BUDGETS["smoke"].sampling
    spec = model_spec(sizes)
    cfg, train = spec.model, spec.train
    assert (cfg.ctx, cfg.width, cfg.depth, cfg.heads) == (sizes.ctx, sizes.width, sizes.depth, sizes.heads)
    assert cfg.dropout == 0
    assert (train.steps, train.batch_size, train.lr) == (sizes.steps, sizes.batch_size, sizes.lr)
    assert cfg.vocab_size == spec.data().vocab_size and spec.seed == 0 and spec.budgets == ()


def test_generated_ids_can_train_a_model(model):
    """generate decodes in inference mode; what it returns must still work as training input."""
    out = generate(model, prompt(), 8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert not out.is_inference()
    _, loss = model.train()(out[:, :-1], out[:, 1:])
    loss.backward()
    model.zero_grad()
