"""Standard parametrization (SP) and μP in one table, read by model init and optimizer alike.

Every rule is an exponent of the width multiplier m = width / base_width, except the
attention scale's, which is an exponent of the head-size multiplier d_head / d_head,base
(equal to m at a fixed head count). μP is written in the form of Tensor Programs V's table 8
(Yang et al. 2022): the readout keeps its init and LR and its output is multiplied by α_out/m,
which is table 3's form (readout init variance ∝ 1/fan_in², LR ∝ 1/fan_in) with the factor
1/m moved from the weight into a multiplier. The coordinate check that tests the rules is
`lmlab.experiments.coord_check`. At the base width every parametrization is the same model;
they part only as width grows. Two SPs:

- "sp": the base model's constants kept at every width (GPT-2's habit of one σ);
- "sp_fanin": init variance ∝ 1/fan_in for every matrix whose fan-in is the width (hidden
  matrices and readout), as PyTorch's default layers, TP-V's SP and the `mup` package's SP do;
  no width-dependent learning rate, output or attention scaling.
"""

import math
from dataclasses import dataclass

import pandas as pd
import torch

from lmlab.checks import check_choice, check_range


@dataclass(frozen=True)
class Rule:
    """Exponents of m: init std ∝ m**init, Adam LR ∝ m**lr, forward multiplier ∝ m**mult."""

    init: float = 0.0
    lr: float = 0.0
    mult: float = 0.0


KINDS = {
    "embedding": "token and position embeddings",
    "hidden": "hidden matrices: Q, K, V, attention output, MLP up and down",
    "readout": "the unembedding that produces the logits",
    "attention": "the attention-logit scale (no parameter)",
    "vector": "LayerNorm gains and biases",
}

RULES = {
    "sp": {kind: Rule() for kind in KINDS},
    "sp_fanin": {kind: Rule(init=-0.5) if kind in ("hidden", "readout") else Rule() for kind in KINDS},
    "mup": {
        "embedding": Rule(),
        "hidden": Rule(init=-0.5, lr=-1.0),  # variance ∝ 1/fan_in, Adam LR η/m
        "readout": Rule(mult=-1.0),  # logits × α_out/m in every forward path
        "attention": Rule(mult=-0.5),  # 1/√d_head · (d_head/d_head,base)^-½ = √d_head,base / d_head
        "vector": Rule(),
    },
}
# The μP ladder: SP to μP one width rule at a time, each rung a parametrization of its own, so that
# the model, the optimizer, the run cache and the coordinate check take it as they take "sp". There
# is no embedding rung: under Adam, μP keeps the embeddings' init and LR constant in width, as SP
# does (TP-V, table 3), so their multiplier α_in is a constant to tune, not a width rule.
RULES["sp_fanin_lr"] = {**RULES["sp_fanin"], "hidden": RULES["mup"]["hidden"]}
RULES["mup_no_attn"] = {**RULES["mup"], "attention": Rule()}
LADDER = {
    "sp": "SP: one σ at every width",
    "sp_fanin": "+ init ∝ 1/√fan_in (hidden matrices, readout)",
    "sp_fanin_lr": "+ hidden Adam LR η/m",
    "mup_no_attn": "+ readout: logits × 1/m, init back to σ",
    "mup": "+ attention √d_head,base / d_head: μP",
}


# What each rule multiplies, at the base width (m = 1); "" where a kind has no such quantity.
BASE = {
    "embedding": {"init": "σ", "lr": "η", "mult": "α_in"},
    "hidden": {"init": "σ", "lr": "η", "mult": "1"},
    "readout": {"init": "σ (or 0)", "lr": "η", "mult": "α_out"},
    "attention": {"init": "", "lr": "", "mult": "1/√d_head"},
    "vector": {"init": "1 (gains), 0 (biases)", "lr": "η", "mult": "1"},
}
COLUMNS = {"init": "init std", "lr": "Adam LR", "mult": "forward multiplier"}
NAMES = {"sp": "SP (constant σ)", "sp_fanin": "SP (fan-in)", "mup": "μP", "sp_fanin_lr": "SP (fan-in) + η/m",
         "mup_no_attn": "μP with 1/√d_head"}  # in RULES' order
# The same quantity in the form papers print it
SPELLED = {("attention", "mult", -0.5): "√d_head,base / d_head"}


def _times_m(base: str, exponent: float) -> str:
    """`base` × m**exponent, written the way a paper would."""
    if not base or exponent == 0:
        return base or "—"
    power = {0.5: "√m", 1.0: "m"}.get(abs(exponent), f"m^{abs(exponent):g}")
    return f"{base}·{power}" if exponent > 0 else f"{base}/{power}" if base != "1" else f"1/{power}"


def rules_table() -> pd.DataFrame:
    """The `RULES` table written out, both SPs beside μP, with m = width / base_width.

    The book prints this table, so text and code cannot disagree.
    """
    rows = {}
    for kind, what in KINDS.items():
        for col in COLUMNS:
            for param in RULES:
                exponent = getattr(RULES[param][kind], col)
                cell = SPELLED.get((kind, col, exponent)) or _times_m(BASE[kind][col], exponent)
                rows.setdefault(what, {})[COLUMNS[col], NAMES[param]] = cell
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "parameter"
    return table


def rule(param: str, kind: str) -> Rule:
    check_choice("param", param, tuple(RULES))
    check_choice("kind", kind, tuple(KINDS))
    return RULES[param][kind]


def init_scale(param: str, kind: str, m: float) -> float:
    return m ** rule(param, kind).init


def lr_scale(param: str, kind: str, m: float) -> float:
    return m ** rule(param, kind).lr


def forward_scale(param: str, kind: str, m: float) -> float:
    return m ** rule(param, kind).mult


def optimizer(model, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.95), fused: bool | None = None):
    """AdamW with one parameter group per kind, each at `lr` × its μP (or SP) multiplier.

    Each group keeps its multiplier as `group["lr_scale"]` so a schedule can set
    `group["lr"] = lr_now * group["lr_scale"]`. Weight decay applies to matrices
    only; note that AdamW multiplies it by the group's LR, so under μP the hidden
    matrices' decay shrinks like 1/m unless `weight_decay` is scaled with width.
    """
    check_range("lr", lr, 0, float("inf"), low_open=True, high_open=True)
    check_range("weight_decay", weight_decay, 0, float("inf"), high_open=True)
    cfg = model.config
    groups = {}
    for name, p in model.named_parameters():
        kind = model.param_kind(name)
        if kind not in groups:
            scale = lr_scale(cfg.param, kind, cfg.width_mult)
            decay = weight_decay if kind != "vector" else 0.0
            groups[kind] = {"params": [], "kind": kind, "lr": lr * scale, "lr_scale": scale, "weight_decay": decay}
        groups[kind]["params"].append(p)
    if fused is None:
        fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(list(groups.values()), lr=lr, betas=betas, fused=fused)


# μP with one rule taken out, for negative controls: what each ablation undoes
ABLATIONS = {
    "hidden_lr": "hidden matrices learn at η, not η/m",
    "attention_scale": "attention logits scaled by 1/√d_head, not √d_head,base / d_head",
    "output_mult": "logits not multiplied by 1/m",
}


def ablate_rule(model, ablation: str, opt=None) -> None:
    """Undo one μP rule (a key of ABLATIONS) in a μP `model`, in place; "hidden_lr" acts on its
    optimizer `opt` (from `optimizer`), the others on the model itself."""
    check_choice("ablate", ablation, tuple(ABLATIONS))
    cfg = model.config
    if cfg.param != "mup":
        raise ValueError(f"ablate removes a μP rule, so param must be 'mup', got {cfg.param!r}")
    if ablation == "hidden_lr":
        if opt is None:
            raise ValueError("ablate='hidden_lr' changes the optimizer: pass opt")
        for group in opt.param_groups:
            if group["kind"] == "hidden":
                group["lr_scale"], group["lr"] = 1.0, group["lr"] / group["lr_scale"]
    elif ablation == "attention_scale":
        for block in model.blocks:
            block.attn.scale = cfg.attn_mult / math.sqrt(cfg.head_dim)
    else:
        model.output_mult = cfg.output_mult
