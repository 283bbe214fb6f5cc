"""What dropout costs per training step, and where: the whole GPT step, and attention alone.

Why: chapter 4 trains the same model at five dropout rates, and its CPU budget depends on
what a non-zero rate adds. Dropout's masks are cheap elementwise work, but a non-zero
`dropout_p` also takes `F.scaled_dot_product_attention` off its fused CPU kernel onto
the explicit path, which materialises and masks the attention matrix.

How: lmlab's real training step (forward, backward, AdamW with μP groups) on random ids,
and SDPA's forward + backward alone at the same shape, each at p = 0 and p > 0; one
torch thread (as the chapter's sweep workers use); 20 timed steps after 5 warm-up steps,
the faster of two rounds.

    python benchmarks/dropout_cost.py                  # widths 64 and 128, p 0 and 0.2
    python benchmarks/dropout_cost.py --widths 64 --ps 0 0.1 0.5 --out /tmp/dc.json
"""

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

from lmlab import mup
from lmlab.model import GPT, GPTConfig

VOCAB = 72


def timed(step, warmup: int, steps: int) -> float:
    """ms per call of `step`, the faster of two rounds."""
    best = float("inf")
    for _ in range(2):
        for _ in range(warmup):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps * 1000)
    return best


def gpt_step(width: int, p: float, args):
    model = GPT(GPTConfig(VOCAB, ctx=args.ctx, width=width, depth=args.depth, heads=args.heads, dropout=p)).train()
    opt = mup.optimizer(model, 1e-3, 0.0, (0.9, 0.95))
    x = torch.randint(VOCAB, (args.batch, args.ctx))

    def step():
        _, loss = model(x, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def attention_step(width: int, p: float, args):
    q = torch.randn(args.batch, args.heads, args.ctx, width // args.heads, requires_grad=True)
    return lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True, dropout_p=p).sum().backward()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--ps", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--ctx", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dropout_cost-cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} at the start; other processes will skew the times")
    rows = []
    for width in args.widths:
        for p in args.ps:
            rows.append({"width": width, "p": p,
                         "gpt_step_ms": timed(gpt_step(width, p, args), args.warmup, args.steps),
                         "attention_ms": timed(attention_step(width, p, args), args.warmup, args.steps)})
    print("| width | p | GPT train step (ms) | SDPA fwd+bwd per layer (ms) |\n|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['width']} | {r['p']} | {r['gpt_step_ms']:.1f} | {r['attention_ms']:.1f} |")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": str(date.today()), "machine": {
        "platform": platform.platform(), "cpu": cpu, "torch": torch.__version__, "threads": 1, "load_1min": load},
        "config": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows}, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
