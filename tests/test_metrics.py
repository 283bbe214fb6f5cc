import math

import numpy as np
import pytest
import torch

from lmlab.corpus import CharTokenizer
from lmlab.experiments.metrics import (
    bootstrap,
    copy_rate,
    decode_settings,
    decoding_table,
    distinct_n,
    measure,
    ngrams,
    paired_claim,
    paired_difference,
    pooled,
    real_word_rate,
    row_claim,
    row_nll,
    sample_nll,
    setting_seed,
    with_intervals,
)
from lmlab.likelihood import drift_blocks, drift_curves, likelihood_checks, surprise_and_entropy
from lmlab.model import GPT, GPTConfig
from lmlab.repetition import loop_period, near_loop, repeated_share, repetition_examples


def test_ngrams_of_characters_and_words():
    assert ngrams("abcd", 2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert ngrams("abc", 4) == []
    assert ngrams("To be, or NOT to be: that's it", 2, "word") == [
        ("to", "be"), ("be", "or"), ("or", "not"), ("not", "to"), ("to", "be"), ("be", "that's"), ("that's", "it")]


def test_distinct_n_counts_unique_over_all_pooled_across_texts():
    assert distinct_n(["abcdef"], 2) == 1.0
    assert distinct_n(["aaaa"], 1) == 0.25
    assert distinct_n(["abab", "abab"], 2) == pytest.approx(2 / 6)  # ab, ba: 2 distinct of 6
    assert distinct_n(["to be or not to be"], 1, "word") == pytest.approx(4 / 6)
    assert distinct_n(["to be or not to be"], 2, "word") == pytest.approx(4 / 5)


def test_distinct_n_bad_input():
    with pytest.raises(ValueError, match="unit"):
        distinct_n(["abc"], 1, "token")
    with pytest.raises(ValueError, match="n must be"):
        distinct_n(["abc"], 0)
    with pytest.raises(ValueError, match="at least one word 3-gram"):
        distinct_n(["one two", "!!"], 3, "word")


@pytest.mark.parametrize("text", [
    "x" * 10 + "ab" * 32,  # period 2
    "prefix " + "and the king " * 6,  # a phrase repeated
    "q" + "the sea, the sea, the sea. " * 3,  # period 27 ≤ 32
    "k" * 64,  # period 1
])
def test_loop_period_finds_an_exact_loop(text):
    assert loop_period(text, 64) is not None


def test_loop_period_is_the_shortest_repeating_phrase():
    assert loop_period("x" * 10 + "ab" * 32) == 2
    assert loop_period("prefix " + "and the king " * 6) == len("and the king ")
    assert loop_period("k" * 64) == 1
    assert loop_period("To be, or not to be, that is the question: Whether 'tis nobler in the mind") is None
    phrase = "".join(chr(65 + i % 26) for i in range(40))  # period 40 > 64 / 2: needs two repeats in the window
    assert loop_period(phrase * 3, 64) is None and loop_period(phrase * 3, 80) == 40


@pytest.mark.parametrize("period", [1, 2, 9, 30, 49])
def test_an_exact_loop_repeats_all_but_its_first_period(period):
    phrase = "".join(chr(0x3B1 + i) for i in range(period))  # every character once per period
    text = phrase * (200 // period + 1)
    assert repeated_share(text, 100, 8) == pytest.approx(1 - min(period, 93) / 93)


def test_a_loop_with_breaks_counts_where_the_exact_detector_sees_nothing():
    beam = "the with the with the with and the with the with the shall the the with the with and the with "
    broken = near_loop("and the king shall be the man ", 150, 2, seed=3)
    for text in (beam, broken):
        assert loop_period(text, 64) is None  # the control: the exact detector misses both
        assert repeated_share(text, 64) > 0.3  # real text: about 0.004 (repetition_examples)
    hamlet = "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer the slings"
    assert repeated_share(hamlet, 64) < 0.05


def test_near_loop_changes_one_character_in_every_nth_copy():
    text = near_loop("abcdefghij", 100, 2, seed=0)
    copies = [text[i : i + 10] for i in range(0, 100, 10)]
    assert copies[0::2] == ["abcdefghij"] * 5
    assert all(sum(a != b for a, b in zip(c, "abcdefghij", strict=True)) <= 1 for c in copies[1::2])
    with pytest.raises(ValueError, match="phrase"):
        near_loop("", 10, 1)


def test_repetition_examples_separate_loops_from_real_text():
    rng = np.random.default_rng(0)
    real = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz     "), 5000))  # no 8-gram is likely twice
    table = repetition_examples(real, window=100, windows=200)
    loops = table.drop("real text")
    assert (loops["repeated share"] > 0.15).all() and table.loc["real text", "repeated share"] < 0.05
    assert table.loc["real text", "texts"] == 200
    exact = table.index.str.endswith("exact")
    assert (table.loc[exact, "exact-loop detector"] == 1).all()
    assert (table.loc[~exact & (table.index != "real text"), "exact-loop detector"] < 0.5).all()


def test_repetition_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="at least window=64"):
        loop_period("short", 64)
    with pytest.raises(ValueError, match="at least window=100"):
        repeated_share("short", 100)
    with pytest.raises(ValueError, match="n must be at most window=4"):
        repeated_share("abcdefgh", 4, 8)
    with pytest.raises(ValueError, match="real must be"):
        repetition_examples("too short")


TOKENIZER = CharTokenizer("abcdefgh ")


@pytest.fixture
def model() -> GPT:
    cfg = GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=32, width=32, depth=1, heads=2, init_std=0.3)
    return GPT(cfg, seed=0).eval()


def test_surprise_and_entropy_per_character(model):
    ids = torch.randint(TOKENIZER.vocab_size, (3, 20), generator=torch.Generator().manual_seed(1))
    nll, ent = surprise_and_entropy(model, ids, 8)
    assert nll.shape == ent.shape == (3, 12)
    assert torch.allclose(nll.mean(1), row_nll(model, ids, 8), atol=1e-5)
    probs = model(ids[:, :-1]).softmax(-1)[:, 7:]
    assert torch.allclose(ent, -(probs * probs.log()).sum(-1), atol=1e-5)
    assert (ent > 0).all() and (ent <= math.log(TOKENIZER.vocab_size) + 1e-5).all()


def test_samples_at_t1_are_as_surprising_as_the_entropy_and_greedy_text_is_not(model):
    prompts = torch.randint(TOKENIZER.vocab_size, (400, 4), generator=torch.Generator().manual_seed(2))
    drawn = decode_settings(model, prompts, 12, {"pure": {}, "greedy": {"temperature": 0}}, seed=0)
    nll, ent = surprise_and_entropy(model, drawn["pure"], 4)
    gap = (nll - ent).mean(1).numpy()  # per row; rows are independent draws
    assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(len(gap))
    nll_g, ent_g = surprise_and_entropy(model, drawn["greedy"], 4)  # the control: the argmax is never a surprise
    assert (nll_g - ent_g).mean() < -10 * gap.std() / math.sqrt(len(gap))


def test_drift_blocks_average_stretches_of_the_continuation():
    values = torch.arange(40, dtype=torch.float).view(2, 20)  # rows 0..19 and 20..39
    table = drift_blocks(values, 4)
    assert list(table.index) == [5, 10, 15, 20] and list(table.columns) == ["mean", "lo", "hi"]
    assert table["mean"].tolist() == pytest.approx([12.0, 17.0, 22.0, 27.0])
    assert (table["lo"] < table["mean"]).all() and (table["mean"] < table["hi"]).all()
    with pytest.raises(ValueError, match="blocks must be at most the 20"):
        drift_blocks(values, 21)


def test_sample_nll_is_the_cross_entropy_of_the_continuation(model):
    ids = torch.randint(TOKENIZER.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    logp = model(ids).log_softmax(-1)
    by_hand = -torch.stack([logp[r, t - 1, ids[r, t]] for r in range(2) for t in range(8, 20)]).mean()
    assert sample_nll(model, ids, 8) == pytest.approx(by_hand.item(), rel=1e-5)


def test_sample_nll_bad_input(model):
    ids = torch.zeros(1, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="start"):
        sample_nll(model, ids, 0)
    with pytest.raises(ValueError, match="start"):
        sample_nll(model, ids, 10)
    with pytest.raises(ValueError, match="ctx=32"):
        sample_nll(model, torch.zeros(1, 33, dtype=torch.long), 5)


def test_decoding_table_measures_every_setting_and_the_human_text(model):
    texts = torch.randint(TOKENIZER.vocab_size, (6, 30), generator=torch.Generator().manual_seed(1))
    settings = {"greedy": {"temperature": 0}, "top-k 2": {"top_k": 2}, "pure": {}}
    table = decoding_table(model, TOKENIZER, texts, 10, settings, seed=0, window=8)
    assert list(table.index) == ["human", "greedy", "top-k 2", "pure"]
    assert table.loc["top-k 2", "top_k"] == 2 and math.isnan(table.loc["human", "top_k"])
    assert table.loc["human", "NLL"] == pytest.approx(sample_nll(model, texts, 10))
    assert table.loc["greedy", "NLL"] < table.loc["top-k 2", "NLL"] < table.loc["pure", "NLL"]
    assert table.loc["human", "sample"] == TOKENIZER.decode(texts[0, 10:])
    assert all(len(s) == 20 for s in table["sample"])
    assert table.equals(decoding_table(model, TOKENIZER, texts, 10, settings, seed=0, window=8))
    with pytest.raises(ValueError, match="prompt_chars"):
        decoding_table(model, TOKENIZER, texts, 30, settings)


def test_copy_rate_counts_the_ngrams_found_in_the_source():
    assert copy_rate(["abcd"], "xxabcxx", 3) == 0.5  # abc is there, bcd is not
    assert copy_rate(["abab", "zz"], "ab", 2) == pytest.approx(2 / 4)  # ab, ba, ab, zz
    assert copy_rate(["hello"], "hello world", 5) == 1.0
    with pytest.raises(ValueError, match="12-gram"):
        copy_rate(["short"], "short", 12)


def test_decoding_table_can_score_with_another_model_and_measure_copying(model):
    texts = torch.randint(TOKENIZER.vocab_size, (4, 30), generator=torch.Generator().manual_seed(1))
    judge = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=32, width=16, depth=1, heads=2), seed=3)
    settings = {"greedy": {"temperature": 0}}
    source = TOKENIZER.decode(texts[0])
    table = decoding_table(model, TOKENIZER, texts, 10, settings, window=8, scorer=judge, source=source,
                           copy_chars=4)
    assert table.loc["human", "NLL"] == pytest.approx(sample_nll(judge, texts, 10))
    assert table.loc["human", "copied"] >= 17 / 68  # the first row's 17 4-grams are all in the source
    assert "copied" not in decoding_table(model, TOKENIZER, texts, 10, settings, window=8).columns


def test_decoding_table_with_dropout_on_is_reproducible_and_leaves_the_global_rng_alone():
    cfg = GPTConfig(vocab_size=TOKENIZER.vocab_size, ctx=32, width=32, depth=1, heads=2, dropout=0.5, init_std=0.2)
    model = GPT(cfg, seed=0).eval()
    texts = torch.randint(TOKENIZER.vocab_size, (6, 30), generator=torch.Generator().manual_seed(1))
    settings = {"greedy": {"temperature": 0}, "greedy, dropout on": {"temperature": 0, "dropout": True}}
    torch.manual_seed(7)
    state = torch.get_rng_state()
    table = decoding_table(model, TOKENIZER, texts, 10, settings, seed=0, window=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert table.equals(decoding_table(model, TOKENIZER, texts, 10, settings, seed=0, window=8))
    assert table.loc["greedy", "sample"] != table.loc["greedy, dropout on", "sample"]


def test_decoding_table_reports_nan_for_texts_without_words():
    tok = CharTokenizer("ab ")
    model = GPT(GPTConfig(vocab_size=3, ctx=32, width=8, depth=1, heads=2), seed=0)
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.head.weight.zero_()
        model.head.weight[tok.encode(" ")[0]].fill_(1.0)  # a model that only ever writes spaces ...
    texts = torch.tensor([tok.encode("ab ab ab ab ab")] * 2)
    table = decoding_table(model, tok, texts, 4, {"greedy": {"temperature": 0}}, window=8)
    assert math.isnan(table.loc["greedy", "distinct-2 words"])  # ... has no words to count
    assert table.loc["greedy", "distinct-4 chars"] == pytest.approx(1 / 14)  # 7 four-space 4-grams per text


TEXTS = ["to be or not to be", "the king the king the king", "a rose by any other name", "zzzz qqqq"]


def test_pooled_with_every_weight_one_is_each_measure_on_all_the_texts():
    vocab = {"to", "be", "or", "not", "the", "king", "a", "rose"}
    m = measure(TEXTS, [1.0, 2.0, 3.0, 4.0], window=9, index={}, vocabulary=vocab, source="the king to be",
                copy_chars=4)
    row = pooled(m).iloc[0]
    assert row["distinct-4 chars"] == pytest.approx(distinct_n(TEXTS, 4))
    assert row["distinct-2 words"] == pytest.approx(distinct_n(TEXTS, 2, "word"))
    assert row["repetition"] == pytest.approx(np.mean([repeated_share(t, 9) for t in TEXTS])) and row["NLL"] == 2.5
    assert row["real words"] == pytest.approx(real_word_rate(TEXTS, vocab))
    assert row["copied"] == pytest.approx(copy_rate(TEXTS, "the king to be", 4))


def test_weights_count_a_text_as_often_as_it_is_drawn():
    m = measure(TEXTS, [1.0, 2.0, 3.0, 4.0], window=9, index={}, vocabulary={"zzzz"})
    twice = pooled(m, [[2.0, 0.0, 0.0, 1.0]]).iloc[0]
    texts = [TEXTS[0], TEXTS[0], TEXTS[3]]
    assert twice["NLL"] == pytest.approx(2.0) and twice["real words"] == pytest.approx(real_word_rate(texts, {"zzzz"}))
    assert twice["distinct-4 chars"] == pytest.approx(distinct_n(texts, 4))


def test_real_word_rate_and_its_bad_input():
    assert real_word_rate(["To be or nto be"], {"to", "be", "or"}) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="at least one word"):
        real_word_rate(["!!", "  "], {"to"})


def test_divergence_is_zero_for_the_same_text_and_one_bit_for_disjoint_text():
    index = {}
    a = measure(["abcdefgh" * 4], [0.0], 8, index)
    b = measure(["abcdefgh" * 4], [0.0], 8, index)
    c = measure(["stuvwxyz" * 4], [0.0], 8, index)
    assert pooled(a, reference=b).iloc[0]["divergence"] == pytest.approx(0.0, abs=1e-12)
    assert pooled(a, reference=c).iloc[0]["divergence"] == pytest.approx(1.0)
    assert "divergence" not in pooled(a).columns  # nothing to compare with


def test_bootstrap_replicates_are_paired_across_sets(model):
    texts = torch.randint(TOKENIZER.vocab_size, (8, 30), generator=torch.Generator().manual_seed(1))
    settings = {"greedy": {"temperature": 0}, "pure": {}}
    table, reps = decoding_table(model, TOKENIZER, texts, 10, settings, window=8, resamples=50)
    assert set(reps) == {"human", "greedy", "pure"} and reps["greedy"].shape[0] == 50
    assert reps["human"]["NLL"].std() > 0  # the prompts were resampled
    again = decoding_table(model, TOKENIZER, texts, 10, settings, window=8, resamples=50)[1]
    assert reps["pure"].equals(again["pure"])  # the same resamples every time
    with_ci = with_intervals(table, reps, ["NLL"])
    assert list(with_ci.columns) == ["NLL", "NLL lo", "NLL hi"]
    assert (with_ci["NLL lo"] <= with_ci["NLL"]).all() and (with_ci["NLL"] <= with_ci["NLL hi"]).all()
    assert bootstrap({"a": measure(["abcdefgh", "bcdefghi"], [1.0, 2.0], 8, {})}, resamples=20)["a"].shape[0] == 20


def test_every_setting_draws_from_its_own_seed(model):
    prompts = torch.randint(TOKENIZER.vocab_size, (4, 6), generator=torch.Generator().manual_seed(2))
    out = decode_settings(model, prompts, 12, {"a": {}, "b": {}, "greedy": {"temperature": 0}}, seed=0)
    assert not torch.equal(out["a"], out["b"])  # the same knobs, independent draws
    assert setting_seed(0, "a") != setting_seed(0, "b") and setting_seed(0, "a") == setting_seed(0, "a")
    assert torch.equal(out["a"], decode_settings(model, prompts, 12, {"a": {}}, seed=0)["a"])  # not its neighbours'


def test_a_setting_can_be_a_decoder_of_its_own(model):
    prompts = torch.randint(TOKENIZER.vocab_size, (3, 6), generator=torch.Generator().manual_seed(2))
    def zeros(p, chars):
        return torch.cat([p, torch.zeros(len(p), chars, dtype=torch.long)], 1)
    out = decode_settings(model, prompts, 5, {"zeros": zeros})
    assert torch.equal(out["zeros"][:, 6:], torch.zeros(3, 5, dtype=torch.long))


def test_row_nll_is_per_text(model):
    ids = torch.randint(TOKENIZER.vocab_size, (3, 20), generator=torch.Generator().manual_seed(0))
    rows = row_nll(model, ids, 8)
    assert rows.shape == (3,) and rows[1].item() == pytest.approx(sample_nll(model, ids[1:2], 8), rel=1e-5)


def test_paired_claim_is_paired_difference_with_its_prompts_and_halves(model):
    texts = torch.randint(TOKENIZER.vocab_size, (8, 30), generator=torch.Generator().manual_seed(1))
    table, reps = decoding_table(model, TOKENIZER, texts, 10, {"greedy": {"temperature": 0}, "pure": {}}, window=8,
                                 resamples=1000)
    d = paired_claim(table, reps, "pure", "greedy", "NLL", 8)
    assert (d.estimate, d.low, d.high) == pytest.approx(paired_difference(table, reps, "pure", "greedy", "NLL"))
    assert (d.n, d.unit, d.method, d.resamples) == (8, "prompts", "half-sample", 1000)
    assert d.kind == "95 % half-sample interval, 8 prompts, 1,000 resamples"
    r = row_claim(table, reps, "human", "NLL", 8)
    assert r.estimate == pytest.approx(table.loc["human", "NLL"]) and r.low <= r.estimate <= r.high
    shown = with_intervals(table, reps, ["NLL"]).loc["human"]
    assert (r.low, r.high) == pytest.approx((shown["NLL lo"], shown["NLL hi"]))
    with pytest.raises(ValueError, match="resamples"):  # fewer than 1,000 halves is not a 95 % interval
        paired_claim(table, {k: v.iloc[:50] for k, v in reps.items()}, "pure", "greedy", "NLL", 8)


def test_likelihood_checks_read_the_lesson_and_fail_where_the_texts_differ():
    g = torch.Generator().manual_seed(0)
    nll, ent = torch.rand(64, 20, generator=g) + 1.0, torch.rand(64, 20, generator=g) + 1.0
    same = likelihood_checks((nll, ent), (nll, ent), 5)
    assert set(same) == {"calibration", "start gap", "end gap", "drift", "own gap"}
    assert same["start gap"].estimate == same["end gap"].estimate == same["drift"].estimate == 0  # itself
    drifting = nll + torch.linspace(0, 1, 20)  # the control: samples whose NLL grows along the continuation
    moved = likelihood_checks((nll, ent), (drifting, ent), 5)
    assert moved["drift"].direction == "above" and moved["end gap"].direction == "above"
    assert moved["start gap"].estimate < moved["end gap"].estimate
    assert list(drift_curves((nll, ent), (drifting, ent), 4)) == ["real text: NLL", "real text: entropy",
                                                                    "samples: NLL", "samples: entropy"]
    with pytest.raises(ValueError, match="stretch must be at most the 20"):
        likelihood_checks((nll, ent), (nll, ent), 21)


def test_bracket_finds_the_neighbouring_settings_either_side_of_the_target():
    import pandas as pd

    from lmlab.experiments.metrics import bracket

    table = pd.DataFrame({"distinct-4 chars": [0.26, 0.01, 0.14, 0.26, 0.37, 0.42]},
                         index=["human", "k = 1", "k = 5", "k = 10", "k = 20", "pure sampling"])
    order = ["k = 1", "k = 5", "k = 10", "k = 20", "pure sampling"]
    assert bracket(table, order, "distinct-4 chars") == ("k = 5", "k = 10")  # at the target: the first pair
    table.loc["human", "distinct-4 chars"] = 0.3
    assert bracket(table, order, "distinct-4 chars") == ("k = 10", "k = 20")
    assert bracket(table, order[::-1], "distinct-4 chars") == ("k = 20", "k = 10")  # either order of the knob
    table.loc["human", "distinct-4 chars"] = 0.5
    assert bracket(table, order, "distinct-4 chars") is None  # the knob never reaches it
