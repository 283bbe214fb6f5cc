"""The claims layer: words that follow the numbers, asserts that fail when the words would be false."""

import numpy as np
import pandas as pd
import pytest

from lmlab import claims, seeds


def test_words_follow_the_interval():
    up = claims.paired([1.0, 1.2, 1.1, 1.3], [0.5, 0.6, 0.4, 0.55])
    across = claims.paired([1.0, 0.0, 1.1, -0.9], [0.5, 0.6, 0.4, 0.55])
    down = claims.paired([0.5, 0.6, 0.4, 0.55], [1.0, 1.2, 1.1, 1.3])
    assert (up.verdict, up.word("grows", "falls", "stays")) == ("excludes 0", "grows")
    assert (across.verdict, across.word("grows", "falls", "stays")) == ("holds 0", "stays")
    assert (down.verdict, down.word("grows", "falls", "stays")) == ("excludes 0", "falls")


def test_an_interval_that_excludes_zero_below_is_not_called_holds_zero():
    # chapter 4's sentence: "−0.0015 nats, interval [−0.0025, −0.0006], which holds 0" was false
    d = claims.Interval(-0.0015, -0.0025, -0.0006, 5)
    assert d.verdict == "excludes 0" and d.direction == "below"


def test_require_fails_for_the_reason_the_prose_gives():
    gain = claims.t([0.02, 0.01, 0.03, 0.015, 0.025])
    claims.require("gain", gain, "above")
    with pytest.raises(AssertionError, match="gain"):
        claims.require("gain", gain, "below")
    with pytest.raises(AssertionError, match="holds|\\["):
        claims.require("thin", claims.t([0.02, -0.01, 0.03, -0.015, 0.0]), "above")  # control: holds 0


def test_t_interval_names_its_degrees_of_freedom_and_95_needs_t_not_two_se():
    x = [0.1, 0.2, 0.15]
    d = claims.t(x)
    assert d.kind == "95 % t-interval, 3 seeds (2 degrees of freedom)"
    two_se = 2 * np.std(x, ddof=1) / np.sqrt(3)
    assert d.high - d.estimate > 2 * two_se  # t at 2 df is 4.30: ± 2 SE is not a 95 % interval


def test_resampled_intervals_need_1000_resamples():
    assert "1,000 resamples" in claims.resampled(0.1, 0.05, 0.2, 48, 1000).kind
    with pytest.raises(ValueError, match="resamples"):
        claims.resampled(0.1, 0.05, 0.2, 48, 100)


@pytest.mark.parametrize("bad", [dict(n=1), dict(method="2se"), dict(low=1.0, high=0.0), dict(low=np.nan)])
def test_bad_intervals_are_refused(bad):
    args = dict(estimate=0.5, low=0.1, high=0.9, n=5) | bad
    with pytest.raises(ValueError):
        claims.Interval(**args)


def test_glue_hands_the_page_every_part():
    g = claims.t([0.02, 0.021, 0.019]).glue("gain", "above", "below", "indistinguishable from")
    assert set(g) == {"gain", "gain_lo", "gain_hi", "gain_n", "gain_ci", "gain_word", "gain_verdict_word"}
    assert g["gain_word"] == "above" and g["gain_n"] == 3


def test_trend_count_and_compare():
    assert claims.trend([0.138, 0.113, 0.063]) == "falls"  # chapter 6's exercise 4 read "grows"
    assert claims.trend([1, 2, 3]) == "grows" and claims.trend([1, 3, 2]) == "does not move one way"
    assert claims.count(3, 3) == "every" and claims.count(0, 3) == "none" and claims.count(1, 3) == "1 of 3"
    assert claims.compare(1.68, 2.52, "stronger", "weaker") == "weaker"
    with pytest.raises(ValueError):
        claims.trend([1.0])
    with pytest.raises(ValueError):
        claims.count(4, 3)


def test_require_that_names_its_claim():
    claims.require_that("exact", True)
    with pytest.raises(AssertionError, match="exact"):
        claims.require_that("exact", False, "1 ≠ 2")


def test_seed_offset_moves_every_budget_seed_and_the_cache(monkeypatch, tmp_path):
    import lmlab
    from lmlab.cache import default_root

    base = lmlab.budget("book")
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("LMLAB_SEED_OFFSET", "1000")
    moved = lmlab.budget("book")
    assert moved.dropout.confirm_seeds == tuple(s + 1000 for s in base.dropout.confirm_seeds)
    assert moved.mup.tune_seeds == tuple(k + 1000 for k in base.mup.tune_seeds)
    assert moved.randomness.text_seeds == base.randomness.text_seeds  # a count, not a seed
    assert seeds.fresh(3) == 1003 and default_root() == tmp_path / "offset-1000"
    monkeypatch.setenv("LMLAB_SEED_OFFSET", "-1")
    with pytest.raises(ValueError, match="LMLAB_SEED_OFFSET"):
        seeds.seed_offset()


def test_seed_offset_moves_the_evaluation_windows(monkeypatch):
    import torch

    from lmlab.corpus import eval_windows

    ids = torch.arange(5000)
    first = next(eval_windows(ids, 4, 16, 1))[0]
    monkeypatch.setenv("LMLAB_SEED_OFFSET", "1000")
    assert not torch.equal(first, next(eval_windows(ids, 4, 16, 1))[0])
    monkeypatch.delenv("LMLAB_SEED_OFFSET")
    assert torch.equal(first, next(eval_windows(ids, 4, 16, 1))[0])


def test_checked_claims_are_logged_and_tabled(monkeypatch, tmp_path):
    logs = []
    for offset in ("0", "1000"):
        monkeypatch.setenv("LMLAB_SEED_OFFSET", offset)
        monkeypatch.setenv("LMLAB_CLAIMS_LOG", str(tmp_path / f"{offset}.jsonl"))
        claims.require("gain", claims.t([0.02, 0.021, 0.019]), "above")
        claims.require("gain", claims.t([0.5, 0.6, 0.55]), "above")  # a second check of one claim: a row of its own
        claims.require_that("exact", True, "1 = 1")
        claims.require_that("series", True, pd.Series([0.01, 0.02], name="gap"))  # as chapter 4 logs it
        with pytest.raises(AssertionError):
            claims.require("thin", claims.t([0.02, -0.01, 0.0]), "above")
        logs.append(tmp_path / f"{offset}.jsonl")
    table = claims.claims_table(*logs)
    assert "| claim | offset 0 | offset 1000 |" in table and table.count("**FAILS**") == 2
    assert "0.02 [" in table and "1 = 1" in table and "Name: gap" in table
    assert "| gain #2 | 0.55 [" in table
    assert all(line.startswith("|") and line.endswith("|") for line in table.splitlines())
