"""What chapter 3's page reads into its numbers: intervals over seeds and over bootstrap resamples,
the words glued beside them, and the glue values of the IsoFLOP optima and of Chinchilla's surface.

These take numbers, tables and fits, never runs to train: `lmlab.experiments.scaling` makes the runs
and `lmlab.experiments.laws` fits them. Every word here comes from `lmlab.claims`, or from a comparison
of a measured range with a published number (`range_word`), so that the page's verdicts follow the
numbers of each build.
"""

from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from lmlab import claims

CHARS_PER_TOKEN = 4  # a GPT-2 BPE token is about four characters of English
CHINCHILLA_TPP = 20  # Chinchilla's tokens per parameter at the compute optimum, every parameter counted


# ---------------------------------------------------------------- intervals, and the words beside them
def paired_steps(runs: pd.DataFrame, by: str, order, metric: str = "final_val", unit: str = "seeds") -> list:
    """`claims.paired` intervals of `metric` at `order[i]` minus at `order[i + 1]` of column `by`,
    seed by seed (the runs of one seed share their data order), e.g. each size against the next
    larger one at one budget: an interval above 0 says the second is lower beyond seed noise."""
    table = runs.pivot_table(index="seed", columns=by, values=metric)
    missing = [v for v in order if v not in table.columns]
    if missing or table[list(order)].isna().any().any():
        raise ValueError(f"every seed needs a run at each {by} of {list(order)}; missing {missing or 'some seeds'}")
    return [claims.paired(table[a], table[b], unit=unit) for a, b in pairwise(order)]


def resampled_glue(name: str, estimate: float, draws, clusters: int, unit: str = "sizes",
                   with_estimate: bool = True) -> dict:
    """Glue values for a bootstrap interval of `estimate` from its resampled `draws` (NaN draws, where the
    statistic was undefined, are left out): NAME (unless not `with_estimate`, when it is glued elsewhere),
    NAME_lo and NAME_hi (the 2.5 and 97.5 percentiles; NaN when fewer than 2 resamples define it), NAME_n
    (`clusters`), NAME_resamples and NAME_ci, which says what the interval is: a 95 % bootstrap interval
    (`lmlab.claims`) from 1,000 resamples up, else a percentile range over too few, never called 95 %."""
    x = np.asarray(draws, dtype=float)
    total, x = len(x), x[np.isfinite(x)]
    low, high = (float(q) for q in np.quantile(x, [0.025, 0.975])) if len(x) >= 2 else (np.nan, np.nan)
    out = {f"{name}_lo": low, f"{name}_hi": high, f"{name}_n": int(clusters), f"{name}_resamples": len(x)}
    if with_estimate:
        out[name] = float(estimate)
    if len(x) < 2:
        return {**out, f"{name}_ci": f"percentile range left undefined ({len(x)} of {total:,} resamples define it)"}
    if len(x) >= 1000:
        return {**out, f"{name}_ci": claims.resampled(estimate, low, high, clusters, len(x), unit=unit).kind}
    which = f"the {len(x):,} of {total:,} resamples that define it" if len(x) < total else f"{len(x):,} resamples"
    return {**out, f"{name}_ci": f"percentile range over {which}, {clusters} {unit} (fewer than 1,000 resamples: "
                                 "not called a 95 % interval)"}


def interval_table(estimates: dict, draws: pd.DataFrame, clusters: int, unit: str = "sizes") -> pd.DataFrame:
    """One row per column of `draws` (a bootstrap's resampled statistics, e.g. `laws.statistics` per
    resample): the `estimates` value (from the fit to every run) and the columns lo, hi, n, resamples
    and ci that `resampled_glue` gives for it."""
    missing = [k for k in draws.columns if k not in estimates]
    if missing:
        raise ValueError(f"estimates must hold every statistic the draws hold; missing {missing}")
    rows = {k: {"estimate": float(estimates[k]),
                **{part.removeprefix(f"{k}_"): v for part, v in
                   resampled_glue(k, estimates[k], draws[k], clusters, unit, with_estimate=False).items()}}
            for k in draws.columns}
    return pd.DataFrame.from_dict(rows, orient="index")


def range_word(low: float, high: float, reference: float, above: str, below: str, spans: str,
               missing: str = "not comparable with") -> str:
    """`above` when the whole range [low, high] lies above `reference`, `below` when below, else `spans`
    (`missing` when the range was not measured, NaN): a range of measured values, not an interval, read
    against a published number."""
    if not np.isfinite([low, high]).all():
        return missing
    if low > high:
        raise ValueError(f"low must not exceed high, got {low} and {high}")
    return (above if claims.compare(low, reference) == "more" else below if claims.compare(high, reference) == "less"
            else spans)


# ---------------------------------------------------------------- the compute section's glue


def isoflop_glue(optima: pd.DataFrame, drawn: int) -> dict:
    """Glue values of the IsoFLOP optima (`laws.isoflop_optima` with `scaling.with_total_count`'s columns),
    of `drawn` profiles: how many bottom out among the sizes (n_isoflop, n_isoflop_word), the least and most
    characters per parameter (tpp_lo … tpp_total_hi, with N non-embedding and every parameter) and tokens per
    parameter at `CHARS_PER_TOKEN` (tok_lo … tok_total_hi), read against Chinchilla's 20 (tok_word,
    tok_total_word); and, optimum by optimum in the total count, how many lie below 20 (tok_total_below_word,
    which names them "the cheapest" when they are), the range of the rest (tok_total_rest_lo, _hi) and a
    clause for it that reads right whether some, none or all lie below (tok_total_rest_word)."""
    for column in ("tokens_per_param", "tokens_per_param_total"):
        if column not in optima.columns:
            raise ValueError(f"optima must have a column {column!r}; it has {list(optima.columns)}")
    tpp = {f"tpp{k}_{end}": getattr(optima[f"tokens_per_param{k}"], f)()
           for k in ("", "_total") for end, f in (("lo", "min"), ("hi", "max"))}
    tokens = {f"tok{k}_{end}": tpp[f"tpp{k}_{end}"] / CHARS_PER_TOKEN for k in ("", "_total") for end in ("lo", "hi")}
    words = {f"tok{k}_word": range_word(tokens[f"tok{k}_lo"], tokens[f"tok{k}_hi"], CHINCHILLA_TPP, "all above",
                                        "all below", "a range that holds") for k in ("", "_total")}
    tok_c = optima.sort_index().tokens_per_param_total.to_numpy() / CHARS_PER_TOKEN  # by compute, cheapest first
    below = tok_c < CHINCHILLA_TPP
    n_below, rest = int(below.sum()), tok_c[~below]
    cheapest = ", the cheapest," if 0 < n_below < len(tok_c) and below[:n_below].all() else ""
    below_word = claims.count(n_below, len(tok_c), f"all {len(tok_c)}", "no") if len(tok_c) else "no"
    span = f"{rest.min():.0f}–{rest.max():.0f}" if len(rest) else ""
    rest_word = (f"the rest at {span}" if 0 < n_below < len(tok_c) else f"all at {span}" if span
                 else "none at or above it")  # some below 20; none below; all below (or no optimum at all)
    return {"n_isoflop": len(optima), **tpp, **tokens, **words,
            "tok_total_below_word": f"{below_word} IsoFLOP optima{cheapest}",
            "n_isoflop_word": claims.count(len(optima), drawn, f"all {drawn}", "none of the") if drawn
            else "none of the",
            "tok_total_rest_lo": rest.min() if len(rest) else np.nan,
            "tok_total_rest_hi": rest.max() if len(rest) else np.nan, "tok_total_rest_word": rest_word}


def surface_glue(fit, means: pd.DataFrame, intervals: pd.DataFrame, seeds: int) -> dict:
    """Glue values of Chinchilla's surface `fit` (`laws.Chinchilla`) and of the seed means it was fitted to
    (`scaling.seed_means`: N, tokens, loss and se, each a mean of `seeds` seeds): its constants (chin_E …
    chin_beta, chin_a = β/(α+β)); its root-mean-square error (chin_rmse), in median seed standard errors of
    a point (chin_rmse_ratio, seed_se) against a 95 % t-range (t95, t_df, chin_noise_word); how many of the
    n_pairs neighbouring sizes at a shared budget have the bigger one at the higher mean loss, which the
    separable surface says never happens (inversions_word); and from `intervals` (`interval_table` of its
    resampled statistics, the chapter's count), how constrained α is (alpha_ratio, constrained_word), whether
    N_opt grows with C (a_N_word, from a_N's range) and every statistic's lo, hi, n, resamples and ci."""
    for column in ("N", "tokens", "loss", "se"):
        if column not in means.columns:
            raise ValueError(f"means must have a column {column!r}; it has {list(means.columns)}")
    rmse = float(np.sqrt(np.mean((fit(means.N, means.tokens) - means.loss) ** 2)))
    seed_se = means.se.median()
    t95 = float(student_t.ppf(0.975, seeds - 1))  # a 95 % t-range of one point's seed mean, in SE
    steps_up = means.pivot(index="tokens", columns="N", values="loss").diff(axis=1).iloc[:, 1:]  # bigger − smaller
    n_pairs = int(steps_up.notna().sum().sum())
    alpha_ratio = intervals.loc["alpha", "hi"] / intervals.loc["alpha", "lo"]
    return {**{f"chin_{k}": getattr(fit, k) for k in ("E", "A", "B", "alpha", "beta")}, "chin_rmse": rmse,
            "chin_rmse_ratio": rmse / seed_se, "alpha_ratio": alpha_ratio, "t95": t95, "t_df": seeds - 1,
            "chin_noise_word": claims.compare(rmse / seed_se, t95, "beyond", "within"), "n_pairs": n_pairs,
            "inversions_word": claims.count(int((steps_up > 0).sum().sum()), n_pairs, "all", "none"),
            "constrained_word": claims.compare(alpha_ratio, 2, "barely constrained", "constrained"),
            # reported, not asserted: a range over fewer than 1,000 resamples, from a handful of sizes
            "a_N_word": range_word(intervals.loc["a_N", "lo"], intervals.loc["a_N", "hi"], 0, "grows", "falls",
                                   "has no trend the resamples resolve (its range holds 0)"),
            "seed_se": seed_se, "chin_a": fit.beta / (fit.alpha + fit.beta),
            **{f"{k}_{c}": intervals.loc[k, c] for k in intervals.index for c in ("lo", "hi", "n", "resamples", "ci")}}
