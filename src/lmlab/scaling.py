"""Parameter and FLOP counting (the scaling-laws chapter adds the fits).

N counts non-embedding parameters as Kaplan et al. (2020) do; training costs
about 6 FLOPs per parameter per token (2 forward, 4 backward) plus the
attention scores, 6·depth·ctx·width per token.
"""

from lmlab.model import GPTConfig


def param_count(cfg: GPTConfig, non_embedding: bool = True) -> int:
    """Parameters of `GPT(cfg)` without building it: 12·width² + 4·width per block (Q, K, V,
    output, a 4× MLP, two LayerNorms) plus the final LayerNorm; embeddings and readout on request."""
    w = cfg.width
    n = cfg.depth * (12 * w * w + 4 * w) + 2 * w
    if not non_embedding:
        n += (2 * cfg.vocab_size + cfg.ctx) * w
    return n


def flops_per_token(cfg: GPTConfig) -> float:
    """Training FLOPs per token, forward and backward: 6N + 6·depth·ctx·width (Kaplan et al. 2020, table 1)."""
    return 6 * param_count(cfg) + 6 * cfg.depth * cfg.ctx * cfg.width
