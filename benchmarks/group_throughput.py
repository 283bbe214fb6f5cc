"""Same-shape runs trained as one batched model (`lmlab.group_train`) against the same runs trained one by one.

Why: the book's models are small (widths 32–256, ctx 64, batch 32, depth 2), and a small
model's step is mostly per-operation overhead: `benchmarks/gpu_plan.py --budget book` puts
the CPU build at 19–70 % of the CPU's peak. A group of K runs does the same arithmetic in
K-times-larger operations, so the overhead is paid once per group step instead of once per
run step. This measures what that buys, per run.

How: both sides are lmlab's real entry points, timed whole: `lmlab.train.train` for one
separate run, `lmlab.group_train.train_group` for a group of K runs at seeds 0..K-1 (one
shape, so the K separate runs cost K times one run, and one is timed). Each is called
twice, for `warmup` steps and for `warmup + steps` steps, with one evaluation batch and no
evaluation in between; the difference of the two wall times (after a CUDA sync) is the
cost of `steps` training steps, with set-up, the first steps and the evaluations cancelled
out. Each measurement is repeated in `--repeats` whole rounds (separate and group
alternating first), and the fastest kept.

- **ms per run-step**: separate: ms per step of one run; group: ms per group step / K.
- **% of peak**: the training FLOPs of one run-step by lmlab's own count
  (`flops_per_token × batch × ctx`), per second, over the CPU's fp32 peak as
  `gpu_plan.cpu_peak()` estimates it (cores × clock × 32 FLOP/cycle with AVX2 + FMA); on a
  GPU pass its peak with `--peak-tflops` (else the column is blank).

    .venv/bin/python benchmarks/group_throughput.py            # K = 1, 4, 8, 24; widths 32..256
    .venv/bin/python benchmarks/group_throughput.py --quick    # a minute: checks that it runs
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_plan import cpu_peak  # noqa: E402  (one estimate of the CPU's peak, shared with the plan)
from train_throughput import machine  # noqa: E402

from lmlab.corpus import CharDataset, shakespeare  # noqa: E402
from lmlab.device import device  # noqa: E402
from lmlab.group_train import train_group  # noqa: E402
from lmlab.model import GPT, GPTConfig, flops_per_token  # noqa: E402
from lmlab.train import TrainConfig, train  # noqa: E402

HEADS, LR = 4, 3e-3


def clock(dev) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def recipe(steps: int, args) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=args.batch, lr=LR, eval_every=steps, eval_batches=1, progress=False)


def seconds(data, width: int, runs: int | None, steps: int, args, dev) -> float:
    """Wall seconds of one whole call: `train` (runs None) or `train_group` of `runs` runs."""
    cfg = GPTConfig(data.vocab_size, ctx=args.ctx, width=width, depth=args.depth, heads=HEADS)
    if runs is None:
        model, start = GPT(cfg, 0), clock(dev)
        train(model, data, recipe(steps, args), 0)
    else:
        models, start = [GPT(cfg, s) for s in range(runs)], clock(dev)
        train_group(models, data, [recipe(steps, args)] * runs, list(range(runs)))
    return clock(dev) - start


def ms_per_run_step(data, width, runs, args, dev) -> float:
    """The cost of `args.steps` steps (two calls' difference), in ms per run and step."""
    short = seconds(data, width, runs, args.warmup, args, dev)
    long = seconds(data, width, runs, args.warmup + args.steps, args, dev)
    return 1e3 * (long - short) / args.steps / (runs or 1)


def table(rows, peak: float | None) -> str:
    lines = ["| width | K | separate ms/run-step | group ms/run-step | speed-up | separate % of peak "
             "| group % of peak |", "|---:|---:|---:|---:|---:|---:|---:|"]

    def share(ms, flops):
        return f"{100 * flops / (ms / 1e3) / peak:.1f}" if peak else ""

    for r in rows:
        lines.append(f"| {r['width']} | {r['K']} | {r['separate_ms']:.2f} | {r['group_ms']:.2f} "
                     f"| {r['separate_ms'] / r['group_ms']:.2f} | {share(r['separate_ms'], r['flops'])} "
                     f"| {share(r['group_ms'], r['flops'])} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--K", type=int, nargs="+", default=[1, 4, 8, 24], help="runs per group")
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="steps of the shorter call, cancelled out (≥ 1)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak (default: the CPU's estimate)")
    p.add_argument("--quick", action="store_true", help="widths 32 64, K 1 4, 4 steps, one repeat: does it run")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results (default benchmarks/results/group_throughput-<device>.json)")
    args = p.parse_args()
    if args.quick:
        args.widths, args.K, args.steps, args.warmup, args.repeats = [32, 64], [1, 4], 4, 1, 1
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1 or min(args.K) < 1:
        p.error("--warmup, --steps, --repeats and every --K must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    dev, wall = device(), time.perf_counter()
    peak, how = ((args.peak_tflops * 1e12, f"{args.peak_tflops} TFLOP/s as given") if args.peak_tflops
                 else cpu_peak() if dev.type == "cpu" else (None, "unknown: pass --peak-tflops"))
    data = CharDataset(shakespeare(), 0.1)
    info = machine(dev)
    print(f"{info['device_name']} ({dev}), torch {info['torch']}, {info['torch_threads']} threads; ctx {args.ctx}, "
          f"batch {args.batch}, depth {args.depth}, heads {HEADS}; {args.steps} timed steps, min of {args.repeats}; "
          f"peak {how}", flush=True)
    if info["load_average_1min"] > 0.5:
        print(f"warning: 1-minute load average {info['load_average_1min']:.1f} before starting; "
              "other processes will skew the timings", flush=True)
    times = {}
    for rnd in range(args.repeats):  # whole rounds, so a burst of outside load spoils one repeat, not all
        for width in args.widths:
            cases = [None, *args.K]
            for runs in cases if rnd % 2 == 0 else cases[::-1]:  # alternate, so drift hits both sides
                ms = ms_per_run_step(data, width, runs, args, dev)
                times.setdefault((width, runs), []).append(ms)
                print(f"round {rnd + 1}, width {width}, {'separate' if runs is None else f'group of {runs}'}: "
                      f"{ms:.2f} ms per run-step", flush=True)
    rows = []
    for width in args.widths:
        cfg = GPTConfig(data.vocab_size, ctx=args.ctx, width=width, depth=args.depth, heads=HEADS)
        flops = flops_per_token(cfg) * args.batch * args.ctx
        for runs in args.K:
            rows.append({"width": width, "K": runs, "flops": flops, "separate_ms": min(times[width, None]),
                         "group_ms": min(times[width, runs]), "separate_all_ms": times[width, None],
                         "group_all_ms": times[width, runs]})
    print(table(rows, peak))
    out = args.out or Path(__file__).resolve().parent / "results" / f"group_throughput-{dev.type}.json"
    if not args.quick or args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"config": {k: v for k, v in vars(args).items() if k != "out"}, "machine": info,
                                   "peak_flops": peak, "peak": how, "rows": rows,
                                   "wall_seconds": time.perf_counter() - wall}, indent=2, default=str) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
