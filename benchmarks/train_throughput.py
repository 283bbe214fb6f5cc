"""Training throughput of lmlab against a minimal plain GPT loop of the same shape.

Why: the book trains hundreds of small models, so lmlab's training step must cost
what the model costs and nothing more. The floor is a self-contained nanoGPT-style
loop written below (token + position embedding, pre-LN blocks with causal SDPA
attention and a 4x GELU MLP, no biases, untied head, `torch.optim.AdamW` with one
plain LR, no grad clipping) sampling batches the same way lmlab does: random
windows from the corpus's uint8 tensor. It does the same arithmetic as lmlab's
default step (no weight decay; on CUDA the autocast dtype, loss scaling and fused AdamW
that `lmlab.device.precision` picks, as lmlab), so the ratio measures lmlab's overhead
rather than a different recipe. lmlab must not be slower than it; the
`ratio` column is lmlab ms/step / plain ms/step.

How: lmlab is timed through its real `lmlab.train.train(...)` and nothing is
subtracted: the per-step time is read from the returned History, whose `seconds`
are cumulative wall time at each step, as the difference between step `warmup`
and the last step. That leaves out the initial evaluation and the warmup steps;
the final evaluation runs after the last timestamp, and `eval_every` is set to
the total step count so no evaluation falls inside the timed window. The plain
loop is timed over the same steps after the same warmup (on CUDA with
`torch.cuda.synchronize()` before each clock read; lmlab's timestamps are taken
on the host without a sync, so on a GPU its numbers can read slightly low).

The two implementations alternate per width (lmlab first in one round, plain
first in the next), so drift (thermal, other load) affects both alike; each
measurement is repeated twice, in two whole rounds over the widths so that one
burst of outside load cannot spoil both, and the faster (min) is kept.
`params` counts every trained parameter, embeddings and readout included.

    python benchmarks/train_throughput.py                 # defaults: widths 32..512, 30 steps after 5 warmup
    python benchmarks/train_throughput.py --widths 64 128 --steps 50
"""

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.corpus import CharDataset, shakespeare
from lmlab.device import device, precision
from lmlab.model import GPT, GPTConfig
from lmlab.train import TrainConfig, train

HEADS, LR, REPEATS = 4, 3e-3, 2


# --- the plain floor: a minimal nanoGPT-style model and loop ---------------------------------------------------

class PlainBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width, bias=False), nn.Linear(width, width, bias=False)
        self.up, self.down = nn.Linear(width, 4 * width, bias=False), nn.Linear(4 * width, width, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                   for t in self.qkv(self.ln1(x)).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class PlainGPT(nn.Module):
    def __init__(self, vocab, ctx, width, depth, heads):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(ctx, width)
        self.blocks = nn.ModuleList(PlainBlock(width, heads) for _ in range(depth))
        self.ln_f, self.head = nn.LayerNorm(width), nn.Linear(width, vocab, bias=False)

    def forward(self, idx, targets):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return F.cross_entropy(self.head(self.ln_f(x)).flatten(0, 1), targets.flatten())


def get_batch(ids, batch, ctx, g):
    starts = torch.randint(len(ids) - ctx, (batch,), generator=g)
    windows = torch.stack([ids[s : s + ctx + 1] for s in starts.tolist()]).long()
    return windows[:, :-1], windows[:, 1:]


def clock(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def plain_seconds(data, dev, width, args) -> float:
    """Seconds for `args.steps` plain training steps after `args.warmup` untimed ones."""
    torch.manual_seed(0)
    model = PlainGPT(data.vocab_size, args.ctx, width, args.depth, HEADS).to(dev).train()
    prec = precision(dev)  # the precision lmlab picks for this device: the same arithmetic
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, fused=prec.fused_adamw)
    scaler = prec.scaler()
    g = torch.Generator().manual_seed(0)
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = clock(dev)
        x, y = get_batch(data.train.ids, args.batch, args.ctx, g)
        with prec.autocast():
            loss = model(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return clock(dev) - start


def lmlab_seconds(data, width, args) -> tuple[float, int]:
    """Seconds for the same steps of lmlab's real `train`, read from its History; and the parameter count."""
    total = args.warmup + args.steps
    model = GPT(GPTConfig(data.vocab_size, ctx=args.ctx, width=width, depth=args.depth, heads=HEADS))
    cfg = TrainConfig(steps=total, batch_size=args.batch, lr=LR, eval_every=total, eval_batches=1, progress=False)
    hist = train(model, data, cfg)
    return hist.seconds[total - 1] - hist.seconds[args.warmup - 1], model.num_params(non_embedding=False)


# --- running and reporting -------------------------------------------------------------------------------------

def machine(dev) -> dict:
    cpu = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), None)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu or platform.processor() or None,
        "torch": torch.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else cpu or dev.type,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # anything else running skews every number
        "date": date.today().isoformat(),
    }


def table(rows) -> str:
    lines = ["| width | params | lmlab ms/step | lmlab tokens/s | plain ms/step | plain tokens/s | ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['width']} | {r['params']:,} | {r['lmlab_ms']:.1f} | {r['lmlab_tokens_per_s']:,.0f} "
                     f"| {r['plain_ms']:.1f} | {r['plain_tokens_per_s']:,.0f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before them (at least 1)")
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results (default benchmarks/results/train_throughput-<device>.json)")
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be at least 1")

    dev, wall = device(), time.perf_counter()
    data = CharDataset(shakespeare(), 0.1)
    info = machine(dev)
    print(f"{info['device_name']} ({dev}), torch {info['torch']}, {info['torch_threads']} threads; "
          f"ctx {args.ctx}, batch {args.batch}, depth {args.depth}, heads {HEADS}; "
          f"{args.steps} timed steps after {args.warmup} warmup, min of {REPEATS}", flush=True)
    if info["load_average_1min"] > 0.5:
        print(f"warning: 1-minute load average {info['load_average_1min']:.1f} before starting; "
              "other processes will skew the timings", flush=True)
    seconds = {(impl, w): [] for impl in ("lmlab", "plain") for w in args.widths}
    params = {}
    for rnd in range(REPEATS):  # whole rounds, so a burst of outside load spoils one repeat, not both
        for width in args.widths:
            order = ("lmlab", "plain") if rnd % 2 == 0 else ("plain", "lmlab")  # alternate, so drift hits both
            for impl in order:
                if impl == "lmlab":
                    s, params[width] = lmlab_seconds(data, width, args)
                else:
                    s = plain_seconds(data, dev, width, args)
                seconds[impl, width].append(s)
            lmlab_ms, plain_ms = (1e3 * seconds[impl, width][-1] / args.steps for impl in ("lmlab", "plain"))
            print(f"round {rnd + 1}/{REPEATS}, width {width}: lmlab {lmlab_ms:.1f} ms/step, "
                  f"plain {plain_ms:.1f} ms/step", flush=True)
    tokens_per_step, rows = args.batch * args.ctx, []
    for width in args.widths:
        ms = {impl: [1e3 * s / args.steps for s in seconds[impl, width]] for impl in ("lmlab", "plain")}
        lmlab_ms, plain_ms = min(ms["lmlab"]), min(ms["plain"])
        rows.append({"width": width, "params": params[width],
                     "lmlab_ms": lmlab_ms, "lmlab_tokens_per_s": tokens_per_step / lmlab_ms * 1e3,
                     "plain_ms": plain_ms, "plain_tokens_per_s": tokens_per_step / plain_ms * 1e3,
                     "ratio": lmlab_ms / plain_ms, "lmlab_ms_all": ms["lmlab"], "plain_ms_all": ms["plain"]})
    wall = time.perf_counter() - wall

    print(f"\n{table(rows)}\n\nwall time {wall:.0f} s")
    out = args.out or Path(__file__).parent / "results" / f"train_throughput-{dev.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "out"} | {"heads": HEADS, "lr": LR, "repeats": REPEATS}
    out.write_text(json.dumps({"machine": info, "config": config, "wall_seconds": wall, "results": rows},
                              indent=2) + "\n")
    print(f"results in {out}")


if __name__ == "__main__":
    main()
