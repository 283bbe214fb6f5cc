"""Scaling-law fits: a power law with an optional irreducible term, Chinchilla's parametric
L(N, D) fitted the way Hoffmann et al. (2022) fitted it, the closed-form compute-optimal
allocation of a fit under C = 6ND (for the published fits), the numerical optimum over a
model family under its own FLOP count (for ours), the IsoFLOP profiles and their parabolas
(approach 2), and every fitted quantity of one table of runs at once (`statistics`), which a
bootstrap over sizes and seeds calls once per resample.

These take numbers, not runs: `lmlab.experiments.scaling` holds the chapter's models, runs
and their family table.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize
from scipy.special import logsumexp

from lmlab.checks import check_positive_int


@dataclass(frozen=True)
class PowerLaw:
    """y = E + A·x^(−alpha), fitted in log space."""

    A: float
    alpha: float
    E: float
    r2: float  # of y, on its own scale

    def __call__(self, x):
        return self.E + self.A * np.asarray(x, dtype=float) ** -self.alpha


def fit_power_law(x, y, offset: bool = False) -> PowerLaw:
    """Fit y = E + A·x^(−alpha) by least squares on log y (E = 0 unless `offset`: Kaplan et al.'s
    pure power law), from several starting points. Intervals come from refitting resamples of
    the runs (`lmlab.stats.cluster_bootstrap`), not from the residuals of one fit: the points
    of one run's budgets, or of one seed's sizes, are not independent."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and the same length, got shapes {x.shape} and {y.shape}")
    if len(np.unique(x)) < 3:
        raise ValueError(f"x must hold at least 3 distinct values to fit a power law, got {len(np.unique(x))}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("x and y must be positive to fit a power law in log space")
    logx, logy = np.log(x), np.log(y)
    slope, intercept = np.polyfit(logx, logy, 1)
    A, alpha, E = float(np.exp(intercept)), float(-slope), 0.0
    if offset:
        y_min = float(y.min())

        def residuals(p):  # p = (log A, alpha, E); log(A·x^-alpha + E) without overflow
            return np.logaddexp(p[0] - p[1] * logx, np.log(p[2]) if p[2] > 0 else -np.inf) - logy

        def jacobian(p):  # exact, so each of the four fits costs no extra evaluations (a bootstrap runs thousands)
            share = np.exp(p[0] - p[1] * logx - (total := residuals(p) + logy))  # A·x^-alpha / (A·x^-alpha + E)
            return np.column_stack([share, -logx * share, np.exp(-total)])

        bounds = ([-np.inf, 0.0, 0.0], [np.inf, np.inf, 0.999 * y_min])
        starts = [(intercept + np.log(1 - f), -slope / (1 - f), f * y_min) for f in (0.0, 0.3, 0.6, 0.9)]
        best = min((least_squares(residuals, np.clip(s, *bounds), jac=jacobian, bounds=bounds, x_scale="jac")
                    for s in starts), key=lambda f: f.cost).x
        A, alpha, E = float(np.exp(best[0])), float(best[1]), float(best[2])
    pred = E + A * x**-alpha
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return PowerLaw(A, alpha, E, float(r2))


@dataclass(frozen=True)
class Chinchilla:
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __call__(self, N, D):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta


# the published fits: Hoffmann et al.'s approach 3 as printed (rounded), and Epoch AI's refit of
# their data (Besiroglu et al. 2024); both count every parameter, embeddings included
HOFFMANN = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
EPOCH = Chinchilla(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)

# Hoffmann et al.'s grid of starting points for L-BFGS
CHINCHILLA_STARTS = {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5),
                     "e": np.arange(-1, 1.01, 0.5), "a": np.arange(0, 26, 5), "b": np.arange(0, 26, 5)}


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)), np.clip(r, -delta, delta)


def _chinchilla_objective(p, logN, logD, logL, delta):
    """The summed Huber loss of log L and its gradient; p = (a, b, e, alpha, beta), A, B, E = exp(a, b, e).
    Summed, not averaged: Besiroglu et al. traced Hoffmann's early stop to an averaged loss."""
    a, b, e, alpha, beta = p
    terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    lse = logsumexp(terms, axis=0)
    w = np.exp(terms - lse)  # d lse / d term
    loss, dr = _huber(lse - logL, delta)
    grad = np.array([(dr * w[0]).sum(), (dr * w[1]).sum(), (dr * w[2]).sum(),
                     -(dr * w[0] * logN).sum(), -(dr * w[1] * logD).sum()])
    return loss.sum(), grad


def fit_chinchilla(N, D, L, delta: float = 1e-3, n_starts: int = 8, start: "Chinchilla | None" = None
                   ) -> Chinchilla:
    """Fit L = E + A/N^alpha + B/D^beta the way Hoffmann et al. (2022) did: a Huber loss
    (`delta`) on log L, minimised by L-BFGS from their grid of 4,500 starting points.

    Every grid point is scored at once and L-BFGS runs from the best `n_starts` of them.
    The stopping tolerances are tight on purpose: with δ = 1e-3 the loss and its gradient
    are tiny, and SciPy's defaults stop far from the optimum, the flaw Besiroglu et al.
    (2024) found in the original fit. With `start` (a fit of similar data, as in a bootstrap)
    L-BFGS also runs from there; `n_starts=0` then skips the grid.
    """
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    if not len(N) == len(D) == len(L):
        raise ValueError(f"N, D and L must be the same length, got {len(N)}, {len(D)} and {len(L)}")
    if len(N) < 5:
        raise ValueError(f"fit_chinchilla needs at least 5 runs for its 5 parameters, got {len(N)}")
    if (N <= 0).any() or (D <= 0).any() or (L <= 0).any():
        raise ValueError("N, D and L must all be positive")
    if start is None or n_starts != 0:  # n_starts=0 runs from `start` alone
        check_positive_int("n_starts", n_starts)
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    starts = []
    if n_starts:
        grid = np.array(np.meshgrid(*(CHINCHILLA_STARTS[k] for k in ("a", "b", "e", "alpha", "beta")),
                                    indexing="ij")).reshape(5, -1).T
        a, b, e, alpha, beta = grid.T[:, :, None]
        lse = logsumexp(np.stack(np.broadcast_arrays(a - alpha * logN, b - beta * logD, e + 0 * logN)), axis=0)
        scores = _huber(lse - logL, delta)[0].sum(axis=1)
        starts = list(grid[np.argsort(scores)[:n_starts]])
    if start is not None:
        starts.append(np.array([np.log(start.A), np.log(start.B), np.log(start.E), start.alpha, start.beta]))
    fits = [minimize(_chinchilla_objective, p0, args=(logN, logD, logL, delta), jac=True, method="L-BFGS-B",
                     options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
            for p0 in starts]
    a, b, e, alpha, beta = min(fits, key=lambda f: f.fun).x
    return Chinchilla(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha), beta=float(beta))


def compute_optimal(C, fit: Chinchilla) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) minimising `fit` at compute C = 6·N·D (Hoffmann et al. 2022, eq. 4):
    N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)/N_opt, G = (αA/(βB))^(1/(α+β))."""
    C = np.asarray(C, dtype=float)
    if (C <= 0).any():
        raise ValueError(f"C must be positive, got {C}")
    if fit.alpha <= 0 or fit.beta <= 0:
        raise ValueError(f"the fit's exponents must be positive for an optimum to exist, got {fit}")
    G = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / (fit.alpha + fit.beta))
    N = G * (C / 6) ** (fit.beta / (fit.alpha + fit.beta))
    return N, C / 6 / N


def isoflop_optimum(x, L) -> float:
    """The x (N or D) at the bottom of a parabola in log x fitted to one IsoFLOP profile
    (Hoffmann et al.'s approach 2)."""
    x, L = np.asarray(x, dtype=float), np.asarray(L, dtype=float)
    if len(np.unique(x)) < 3:
        raise ValueError(f"an IsoFLOP profile needs at least 3 distinct sizes, got {len(np.unique(x))}")
    c2, c1, _ = np.polyfit(np.log(x), L, 2)
    if c2 <= 0:
        raise ValueError("the IsoFLOP profile curves downward: its minimum is outside the sizes trained")
    return float(np.exp(-c1 / (2 * c2)))


def isoflop_profiles(runs: pd.DataFrame, budgets) -> pd.DataFrame:
    """Each model size's loss at each compute budget C, read off its runs.

    `runs` has a row per run: N, flops (of the whole run) and loss. A size trained
    for several budgets gives its loss at any C between its cheapest and dearest
    run, interpolated linearly in log C (that is, in log D, at fixed N); nothing is
    extrapolated. Returns a row per (C, N) with D = C / FLOPs per token and L.
    """
    rows = []
    for N, group in runs.groupby("N"):
        group = group.sort_values("flops")
        logc, loss = np.log(group.flops.to_numpy(float)), group.loss.to_numpy(float)
        per_token = (group.flops / group.tokens).iloc[0]
        for C in np.atleast_1d(budgets):
            if logc[0] <= np.log(C) <= logc[-1]:
                rows.append({"C": C, "N": N, "D": C / per_token, "L": float(np.interp(np.log(C), logc, loss))})
    return pd.DataFrame(rows, columns=["C", "N", "D", "L"])


def isoflop_optima(profiles: pd.DataFrame, min_sizes: int = 3) -> pd.DataFrame:
    """N_opt and D_opt of each IsoFLOP profile with at least `min_sizes` sizes whose parabola
    has its bottom inside the sizes trained; the others are left out, since their optimum
    would be an extrapolation. One row per kept C, with D_opt / N_opt as tokens_per_param."""
    rows = {}
    for C, g in profiles.groupby("C"):
        if g.N.nunique() < min_sizes:
            continue
        try:
            n_opt, d_opt = isoflop_optimum(g.N, g.L), isoflop_optimum(g.D, g.L)
        except ValueError:
            continue
        if g.N.min() < n_opt < g.N.max():
            rows[C] = {"N_opt": n_opt, "D_opt": d_opt, "sizes": g.N.nunique()}
    optima = pd.DataFrame.from_dict(rows, orient="index", columns=["N_opt", "D_opt", "sizes"]).rename_axis("C")
    optima["tokens_per_param"] = optima.D_opt / optima.N_opt
    return optima


def family_optimum(C: float, fit, members: pd.DataFrame, points: int = 4000) -> dict:
    """The size along the family `members` (`family`) that minimises `fit(N, D)` when compute C is
    spent on it, D = C / FLOPs per token of that size: found numerically over N, with FLOPs per
    token and N_total interpolated in log N between the members, so the optimum obeys the same
    FLOP count the runs were measured with (not C = 6ND).

    Returns N_opt, D_opt, N_total_opt, L_opt, the tokens per parameter with either count, and
    `depth`, `steps_tokens` (= C / its FLOPs per token): the nearest member in log N and the
    tokens that spend C on it. `inside` is False when the minimum lies at an end of the family."""
    if not np.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a positive number of FLOPs, got {C!r}")
    members = members.sort_values("N")
    logn = np.log(members.N.to_numpy(float))
    grid = np.linspace(logn[0], logn[-1], points)

    def along(x):  # the loss the fit predicts for size exp(x) spending C
        return np.asarray(fit(np.exp(x), C / np.exp(np.interp(x, logn, log_per_token))), dtype=float)

    log_per_token = np.log(members.flops_per_token.to_numpy(float))
    loss = along(grid)
    if not np.isfinite(loss).any():  # a degenerate fit (its constants overflow) has no optimum
        raise ValueError(f"the fit predicts no finite loss along the family at C = {C:.3g}: {fit}")
    i = int(np.nanargmin(loss))
    x = grid[i]
    if 0 < i < points - 1:  # the vertex of the parabola through the grid's three lowest neighbours
        c2, c1, _ = np.polyfit(grid[i - 1 : i + 2], loss[i - 1 : i + 2], 2)
        x = float(np.clip(-c1 / (2 * c2), grid[i - 1], grid[i + 1])) if c2 > 0 else x
    n_opt, l_opt = float(np.exp(x)), float(along(np.array([x]))[0])
    d_opt = float(C / np.exp(np.interp(x, logn, log_per_token)))
    n_total = float(np.exp(np.interp(x, logn, np.log(members.N_total.to_numpy(float)))))
    nearest = members.iloc[int(np.argmin(np.abs(logn - x)))]
    return {"C": float(C), "N_opt": n_opt, "D_opt": d_opt, "N_total_opt": n_total, "L_opt": l_opt,
            "tokens_per_param": d_opt / n_opt, "tokens_per_param_total": d_opt / n_total,
            "depth": int(nearest.depth), "tokens": float(C / nearest.flops_per_token),
            "inside": 0 < i < points - 1}


def statistics(means: pd.DataFrame, members: pd.DataFrame, C: float, d_fit: float, start: Chinchilla | None = None,
               isoflop_budgets: int = 8) -> dict:
    """Every fitted quantity of one table of (size, budget) points, `means` (columns N, tokens, loss,
    flops; a size may appear more than once, as in a bootstrap resample): Chinchilla's surface (E,
    A, B, alpha, beta and a = beta/(alpha+beta), warm-started from `start`), its optimum over the
    family `members` at compute C (N_opt, tokens per parameter with either count; NaN if the surface
    is degenerate), L(N) at D = `d_fit` with an offset (alpha_N) and without (alpha_N_pure; both NaN
    with fewer than 3 distinct sizes), and the IsoFLOP exponent a_N (NaN when no compute budget is
    reached by 3 sizes, or fewer than 3 profiles bottom out among the sizes)."""
    chin = fit_chinchilla(means.N, means.tokens, means.loss, n_starts=0 if start else 8, start=start)
    optimum = ("N_opt", "tokens_per_param", "tokens_per_param_total")
    try:
        best = family_optimum(C, chin, members)
    except ValueError:  # a resample's surface can be degenerate: its optimum is then undefined (NaN)
        best = dict.fromkeys(optimum, float("nan"))
    at_d = means[means.tokens == d_fit].groupby("N", as_index=False).loss.mean()
    out = {"E": chin.E, "A": chin.A, "B": chin.B, "alpha": chin.alpha, "beta": chin.beta, "alpha_N": float("nan"),
           "a": chin.beta / (chin.alpha + chin.beta), "alpha_N_pure": float("nan"), **{k: best[k] for k in optimum}}
    if at_d.N.nunique() >= 3:  # a resample may draw fewer distinct sizes than a power law needs
        out["alpha_N"] = fit_power_law(at_d.N, at_d.loss, offset=True).alpha
        out["alpha_N_pure"] = fit_power_law(at_d.N, at_d.loss).alpha
    points = means.groupby(["N", "tokens"], as_index=False)[["loss", "flops"]].mean()  # copies of a size: once
    front = frontier(points)
    out["alpha_C"] = fit_power_law(front.flops, front.loss, offset=True).alpha
    try:
        c_lo, c_hi = isoflop_range(points)
    except ValueError:  # a resample with too few distinct sizes has no IsoFLOP profile
        out["a_N"] = float("nan")
        return out
    optima = isoflop_optima(isoflop_profiles(points, np.geomspace(c_lo, c_hi, isoflop_budgets)))
    out["a_N"] = -fit_power_law(optima.index, optima.N_opt).alpha if len(optima) >= 3 else float("nan")
    return out


def frontier(points: pd.DataFrame) -> pd.DataFrame:
    """The compute frontier of (flops, loss) points: each point that no cheaper point beats."""
    ordered = points.sort_values("flops")
    return ordered[ordered.loss <= ordered.loss.cummin()]


def isoflop_range(points: pd.DataFrame, min_sizes: int = 3, n: int = 200) -> tuple[float, float]:
    """The compute budgets between which at least `min_sizes` sizes have runs on both sides (so that
    an IsoFLOP profile there is interpolated, never extrapolated): (lowest, highest) of `n` budgets
    log-spaced over all the runs' compute. Raises ValueError when no budget has that many."""
    budgets = np.geomspace(points.flops.min(), points.flops.max(), n)
    covered = isoflop_profiles(points, budgets).groupby("C").N.nunique()
    covered = covered[covered >= min_sizes]
    if covered.empty:
        raise ValueError(f"no compute budget is reached by {min_sizes} sizes: train more sizes or longer budgets")
    return float(covered.index.min()), float(covered.index.max())
