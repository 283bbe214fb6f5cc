"""Scaling laws: the chapter's family of models and runs, and the fits.

The models share one shape (width = aspect · depth, fixed heads), and each size is
trained as a WSD family over several step budgets (`run_spec`). Parameters and FLOPs
are counted by `lmlab.model.param_count` and `flops_per_token`. The fits: a power law
with an optional irreducible term and bootstrap intervals, Chinchilla's parametric
L(N, D) fitted their way, its closed-form compute-optimal allocation, and the
parabola of an IsoFLOP profile.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize
from scipy.special import logsumexp

from lmlab.checks import check_positive_int
from lmlab.corpus import ALL
from lmlab.model import GPTConfig
from lmlab.runs import RunSpec, dataset
from lmlab.train import TrainConfig


def shaped(vocab_size: int, depth: int, aspect: int, heads: int, ctx: int, **config) -> GPTConfig:
    """A model of a fixed shape: width = aspect · depth, always `heads` heads (Kaplan et al.
    2020 found the shape matters little next to N, so a sweep holds it fixed; a fixed head
    count is also what μP's attention rule assumes)."""
    for name, value in (("depth", depth), ("aspect", aspect), ("heads", heads)):
        check_positive_int(name, value)
    return GPTConfig(vocab_size, ctx=ctx, width=aspect * depth, depth=depth, heads=heads, **config)


def model_config(sizes, depth: int) -> GPTConfig:
    """The chapter's model at `depth`, at `budget().scaling` sizes: μP from the smallest width, so one
    tuned LR serves every size."""
    return shaped(dataset().vocab_size, depth, sizes.aspect, sizes.heads, sizes.ctx, param="mup",
                  base_width=sizes.aspect * sizes.depths[0], init_std=sizes.init_std)


def step_budgets(sizes, depth: int) -> tuple[int, ...]:
    """The step budgets a size is trained for: every size gets `budgets`, the smallest also the long ones."""
    return sizes.budgets + (sizes.long_budgets if depth in sizes.depths[: sizes.long_depths] else ())


def run_spec(sizes, depth: int, log2_lr: float, budgets=None, seed: int = 0, train_chars: int | None = ALL
             ) -> RunSpec:
    """The WSD family of the model at `depth`, trained at LR 2**log2_lr for each of `budgets`
    (default: `step_budgets`), evaluated at the end of each run only."""
    budgets = tuple(budgets or step_budgets(sizes, depth))
    train = TrainConfig(steps=max(budgets), batch_size=sizes.batch_size, lr=2.0**log2_lr, schedule="wsd",
                        warmup_steps=sizes.warmup_steps, min_lr_ratio=0.0, eval_every=max(budgets),
                        eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model_config(sizes, depth), train, train_chars=train_chars, seed=seed, budgets=budgets)


# ---------------------------------------------------------------- fits


@dataclass(frozen=True)
class PowerLaw:
    """y = E + A·x^(−alpha), fitted in log space; `ci` holds bootstrap 95% intervals of each field."""

    A: float
    alpha: float
    E: float
    r2: float  # of y, on its own scale
    ci: dict = field(default_factory=dict, compare=False)

    def __call__(self, x):
        return self.E + self.A * np.asarray(x, dtype=float) ** -self.alpha


def _fit_power_law_once(logx, logy, offset: bool, start=None) -> tuple[float, float, float]:
    """(A, alpha, E) minimising the squared error of log y, from several starts or from `start`."""
    slope, intercept = np.polyfit(logx, logy, 1)
    if not offset:
        return float(np.exp(intercept)), float(-slope), 0.0
    y_min = float(np.exp(logy.min()))

    def residuals(p):  # p = (log A, alpha, E); log(A·x^-alpha + E) without overflow
        return np.logaddexp(p[0] - p[1] * logx, np.log(p[2]) if p[2] > 0 else -np.inf) - logy

    starts = [start] if start is not None else [
        (intercept + np.log(1 - f), -slope / (1 - f), f * y_min) for f in (0.0, 0.3, 0.6, 0.9)]
    bounds = ([-np.inf, 0.0, 0.0], [np.inf, np.inf, 0.999 * y_min])
    fits = [least_squares(residuals, np.clip(s, *bounds), bounds=bounds, x_scale="jac",
                          max_nfev=None if start is None else 50) for s in starts]
    best = min(fits, key=lambda f: f.cost).x
    return float(np.exp(best[0])), float(best[1]), float(best[2])


def fit_power_law(x, y, offset: bool = False, n_boot: int = 500, seed: int = 0) -> PowerLaw:
    """Fit y = E + A·x^(−alpha) by least squares on log y (E = 0 unless `offset`).

    The 95% intervals come from `n_boot` residual-bootstrap refits: the fit's residuals
    in log y, resampled and added back to the fitted curve. (Resampling the points
    themselves, with the handful of sizes a sweep has, leaves too few distinct x to pin
    three parameters.)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and the same length, got shapes {x.shape} and {y.shape}")
    if len(np.unique(x)) < 3:
        raise ValueError(f"x must hold at least 3 distinct values to fit a power law, got {len(np.unique(x))}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("x and y must be positive to fit a power law in log space")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer ≥ 0, got {n_boot!r}")
    logx, logy = np.log(x), np.log(y)
    A, alpha, E = _fit_power_law_once(logx, logy, offset)
    pred = E + A * x**-alpha
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    rng, samples = np.random.default_rng(seed), []
    logpred = np.log(pred)
    residuals = logy - logpred
    for _ in range(n_boot):  # from the full fit's optimum: one local search per resample
        resampled = logpred + rng.choice(residuals, size=len(x))
        samples.append(_fit_power_law_once(logx, resampled, offset, start=(np.log(A), alpha, E)))
    ci = {}
    if samples:
        s = np.array(samples)
        ci = {name: tuple(np.percentile(s[:, k], [2.5, 97.5])) for k, name in enumerate(("A", "alpha", "E"))}
    return PowerLaw(A, alpha, E, float(r2), ci)


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


def fit_chinchilla(N, D, L, delta: float = 1e-3, n_starts: int = 8) -> Chinchilla:
    """Fit L = E + A/N^alpha + B/D^beta the way Hoffmann et al. (2022) did: a Huber loss
    (`delta`) on log L, minimised by L-BFGS from their grid of 4,500 starting points.

    Every grid point is scored at once and L-BFGS runs from the best `n_starts` of them.
    The stopping tolerances are tight on purpose: with δ = 1e-3 the loss and its gradient
    are tiny, and SciPy's defaults stop far from the optimum, the flaw Besiroglu et al.
    (2024) found in the original fit.
    """
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    if not len(N) == len(D) == len(L):
        raise ValueError(f"N, D and L must be the same length, got {len(N)}, {len(D)} and {len(L)}")
    if len(N) < 5:
        raise ValueError(f"fit_chinchilla needs at least 5 runs for its 5 parameters, got {len(N)}")
    if (N <= 0).any() or (D <= 0).any() or (L <= 0).any():
        raise ValueError("N, D and L must all be positive")
    check_positive_int("n_starts", n_starts)
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    grid = np.array(np.meshgrid(*(CHINCHILLA_STARTS[k] for k in ("a", "b", "e", "alpha", "beta")),
                                indexing="ij")).reshape(5, -1).T
    a, b, e, alpha, beta = grid.T[:, :, None]
    lse = logsumexp(np.stack(np.broadcast_arrays(a - alpha * logN, b - beta * logD, e + 0 * logN)), axis=0)
    scores = _huber(lse - logL, delta)[0].sum(axis=1)
    fits = [minimize(_chinchilla_objective, p0, args=(logN, logD, logL, delta), jac=True, method="L-BFGS-B",
                     options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
            for p0 in grid[np.argsort(scores)[:n_starts]]]
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
