"""What maximum likelihood promises about probability, measured character by character.

A model trained by maximum likelihood is calibrated where it was trained: its mean loss on the
data equals the mean entropy of its predictions there, since loss minus entropy is the slope of
the loss in the scale of the logits. A character sampled at T = 1 is, in expectation, as
surprising as the entropy where it was drawn. `surprise_and_entropy` measures both along a
continuation; `drift_blocks` averages them over stretches of it, with intervals over the rows.
"""

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lmlab import claims
from lmlab.checks import check_positive_int
from lmlab.model import GPT, eval_mode
from lmlab.sampling import check_ids


def _continuation_logits(model: GPT, ids: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's fp32 logits for every token of `ids[:, start:]` (each conditioned on all before
    it, in eval mode), and `ids` checked and on the model's device."""
    T = ids.shape[1]
    if not 1 <= start < T:
        raise ValueError(f"start must be in [1, {T - 1}] for rows of {T} tokens, got {start}")
    if T > model.config.ctx:
        raise ValueError(f"rows must be at most ctx={model.config.ctx} tokens long, got {T}")
    ids = check_ids(model, ids, "ids")
    with eval_mode(model):
        return model(ids[:, :-1]).float()[:, start - 1 :], ids


@torch.no_grad()
def row_nll(model: GPT, ids: torch.Tensor, start: int) -> torch.Tensor:
    """Mean NLL in nats per token of each row's `ids[:, start:]` under `model` at temperature 1,
    each token conditioned on everything before it (rows must fit in the model's ctx), on the CPU."""
    logits, ids = _continuation_logits(model, ids, start)
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, start:], reduction="none")
    return nll.mean(1).cpu()


@torch.no_grad()
def surprise_and_entropy(model: GPT, ids: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per character of each row's `ids[:, start:]`: its NLL under `model` at temperature 1, and the
    entropy of the model's prediction at that place (both in nats, (rows, T − start), on the CPU).

    Why both: a character drawn from the model at T = 1 has, in expectation, an NLL equal to that
    entropy, so the NLL of pure samples follows the model's entropy along its own text; and real
    text's mean NLL minus the mean entropy on the same contexts is the slope of the loss in the
    logit scale, which maximum likelihood drives to 0 on the data (`drift_blocks` reads both)."""
    logits, ids = _continuation_logits(model, ids, start)
    logp = logits.log_softmax(-1)
    nll = -logp.gather(-1, ids[:, start:, None])[..., 0]
    return nll.cpu(), -(logp.exp() * logp).sum(-1).cpu()


def drift_blocks(per_char: torch.Tensor, blocks: int) -> pd.DataFrame:
    """Per-character values (rows, characters), e.g. `surprise_and_entropy`'s, in `blocks` equal
    stretches of the continuation: each stretch's mean over the rows (each row's own mean first)
    with its 95 % t-interval over the rows (columns mean, lo, hi), indexed by the stretch's last
    character."""
    check_positive_int("blocks", blocks)
    chars = per_char.shape[1]
    if blocks > chars:
        raise ValueError(f"blocks must be at most the {chars} characters per row, got {blocks}")
    edges = np.linspace(0, chars, blocks + 1).round().astype(int)
    rows = [claims.t(per_char[:, a:b].mean(1).numpy(), "prompts") for a, b in zip(edges, edges[1:], strict=False)]
    return pd.DataFrame([(i.estimate, i.low, i.high) for i in rows], columns=["mean", "lo", "hi"], index=edges[1:])


def drift_curves(real: tuple, samples: tuple, blocks: int) -> dict[str, pd.DataFrame]:
    """`drift_blocks` of the (NLL, entropy) pairs that `surprise_and_entropy` gives for real
    continuations and for samples from the same prompts: four curves along the continuation."""
    return {f"{who}: {what}": drift_blocks(values, blocks)
            for who, pair in (("real text", real), ("samples", samples))
            for what, values in zip(("NLL", "entropy"), pair, strict=True)}


def likelihood_checks(real: tuple, samples: tuple, stretch: int) -> dict[str, claims.Interval]:
    """What the likelihood lesson reads, from the (NLL, entropy) pairs of real continuations and of
    samples drawn from the same prompts, each a t-interval over the prompts (paired where two texts
    share a prompt): "calibration", real text's loss − entropy (0 at a maximum-likelihood optimum on
    its data); "start gap" and "end gap", samples − real in the first and the last `stretch`
    characters; "drift", how much more the samples' NLL grows from the first stretch to the last than
    the real text's; "own gap", the samples' NLL − entropy (0 in expectation: a check of the sampler)."""
    (h_nll, h_ent), (s_nll, s_ent) = real, samples
    check_positive_int("stretch", stretch)
    if stretch > h_nll.shape[1]:
        raise ValueError(f"stretch must be at most the {h_nll.shape[1]} characters per row, got {stretch}")
    first, last = slice(0, stretch), slice(-stretch, None)
    return {"calibration": claims.t(_per_row(h_nll - h_ent), "prompts"),
            "start gap": claims.paired(_per_row(s_nll[:, first]), _per_row(h_nll[:, first]), "prompts"),
            "end gap": claims.paired(_per_row(s_nll[:, last]), _per_row(h_nll[:, last]), "prompts"),
            "drift": claims.paired(_per_row(s_nll[:, last] - s_nll[:, first]),
                                   _per_row(h_nll[:, last] - h_nll[:, first]), "prompts"),
            "own gap": claims.t(_per_row(s_nll - s_ent), "prompts")}


def _per_row(values: torch.Tensor) -> np.ndarray:
    return values.mean(1).numpy()
