"""How fast the live panels of chapters 5 and 6 answer a slider, and how fast lmlab generates text.

Why: the panel redraws the next-character distribution and generates fresh samples
on every slider move, and it should answer within 200 ms on 2 CPU cores at the
`book` size; the decoding grid generates prompts × settings continuations.

How: a GPT of the chosen budget's sampling shape (random weights: the time of a
forward pass does not depend on their values) on the current device. An "update"
is what the panel computes per move, `lmlab.sampling.sampling_frame`: the model's and the
filtered distribution after the prompt, then `shown_samples` continuations of
`sample_chars` characters (drawing the figure is left out). Generation speed is
measured with and without the KV cache, for one row and for a batch of `prompts`
rows. Chapter 6's panel draws greedy and top-k frames side by side from a model of
chapter 4's shape (ctx 64 at `book`: its continuations slide the window, so there is no
KV cache to help); a new k or seed recomputes the top-k column only. Updates: the
settings take turns for `--repeats` rounds after a warm-up round, median per setting.
Generation: median of `--repeats` calls after a warm-up call; a batch of `prompts` rows
is timed once (without the cache it takes minutes on a CPU).

    python benchmarks/sampling_latency.py                      # book budget
    python benchmarks/sampling_latency.py --budget gpu --out /tmp/sl.json
"""

import argparse
import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

from lmlab import budget, device
from lmlab.corpus import CharTokenizer, shakespeare
from lmlab.display.sampling import sampling_figure
from lmlab.model import GPT, GPTConfig
from lmlab.sampling import generate, sampling_frame

SETTINGS = {"greedy": {"temperature": 0}, "top-k 10": {"top_k": 10}, "top-p 0.9": {"top_p": 0.9},
            "min-p 0.1": {"min_p": 0.1}, "T 0.8, k 40, p 0.95": {"temperature": 0.8, "top_k": 40, "top_p": 0.95}}


def median_ms(call, repeats: int, warmup: bool = True) -> float:
    if warmup:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default=None, help="smoke | book | gpu (default: as lmlab.budget())")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    B = budget(args.budget)
    S, dev = B.sampling, device()
    tokenizer = CharTokenizer(shakespeare())
    cfg = GPTConfig(tokenizer.vocab_size, ctx=S.ctx, width=S.width, depth=S.depth, heads=S.heads)
    model = GPT(cfg).to(dev).eval()
    prompt = "ROMEO:\nBut soft, what light through yonder window breaks?\n"[: S.prompt_chars]
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} at the start; other processes will skew the times")

    # the settings take turns, round after round, so that a slow spell of the machine falls on all
    times = {name: [] for name in SETTINGS}
    for round_ in range(args.repeats + 1):
        for name, filters in SETTINGS.items():
            start = time.perf_counter()
            sampling_frame(model, tokenizer, prompt, S.sample_chars, S.shown_samples, seed=0, **filters)
            if round_:  # round 0 warms up
                times[name].append((time.perf_counter() - start) * 1000)
    updates = {name: statistics.median(t) for name, t in times.items()}
    for name, ms in updates.items():
        print(f"slider update, {name:>20}: {ms:6.1f} ms median, {max(times[name]):6.1f} ms worst "
              f"({S.shown_samples} × {S.sample_chars} characters)")
    frame = sampling_frame(model, tokenizer, prompt, S.sample_chars, S.shown_samples, top_k=10)
    figure_ms = median_ms(lambda: sampling_figure({"k = 10": frame}, tokenizer.chars, "", prompt), args.repeats)
    print(f"then building its plotly figure: {figure_ms:.1f} ms median")

    R, D = B.randomness, B.dropout  # chapter 6: greedy beside top-k, a model of chapter 4's shape
    small = GPT(GPTConfig(tokenizer.vocab_size, ctx=D.ctx, width=D.width, depth=D.depth, heads=D.heads)).to(dev).eval()

    def randomness_update():
        args = (small, tokenizer, prompt, R.sample_chars, R.shown_samples, 0)
        return {"greedy": sampling_frame(*args, temperature=0), "top-k": sampling_frame(*args, top_k=R.top_k)}

    randomness_ms = median_ms(randomness_update, args.repeats)  # a new model or prompt: both columns
    topk_ms = median_ms(lambda: sampling_frame(small, tokenizer, prompt, R.sample_chars, R.shown_samples, 0,
                                               top_k=R.top_k), args.repeats)  # a new k or seed: greedy is cached
    columns = randomness_update()
    randomness_figure_ms = median_ms(lambda: sampling_figure({"": columns}, tokenizer.chars, "", prompt),
                                     args.repeats)
    print(f"chapter 6's panel ({R.shown_samples} × {R.sample_chars} characters per column, width {D.width}, "
          f"ctx {D.ctx}): a new model or prompt (greedy + top-{R.top_k}) {randomness_ms:.1f} ms median, a new k or "
          f"seed (top-{R.top_k} only) {topk_ms:.1f} ms; figure {randomness_figure_ms:.1f} ms")

    speed = {}
    ids = torch.tensor([tokenizer.encode(prompt)], device=dev)
    for rows in (1, S.prompts):
        for cached in (True, False):
            def run(rows=rows, cached=cached):
                g = torch.Generator(dev).manual_seed(0)
                generate(model, ids.expand(rows, -1), S.sample_chars, top_k=40, generator=g, kv_cache=cached)
            # a batch of `prompts` rows without the cache runs for minutes: one call, no warm-up,
            # whose one-off costs are lost in its length
            ms = median_ms(run, 1, warmup=False) if rows > 1 else median_ms(run, args.repeats)
            key = f"{rows} rows, {'KV cache' if cached else 'no cache'}"
            speed[key] = rows * S.sample_chars / ms * 1000
            print(f"generation, {key:>22}: {speed[key]:9,.0f} characters/s ({ms:.0f} ms)")
    for rows in (1, S.prompts):
        print(f"KV cache speed-up at {rows} rows: "
              f"{speed[f'{rows} rows, KV cache'] / speed[f'{rows} rows, no cache']:.1f}×")

    result = {"date": str(date.today()), "device": str(dev), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "budget": B.name, "model": cfg.to_dict(), "prompt_chars": len(prompt), "sample_chars": S.sample_chars,
              "shown_samples": S.shown_samples, "update_ms": updates, "update_ms_all": times, "figure_ms": figure_ms,
              "chars_per_s": speed, "randomness_model": small.config.to_dict(), "randomness_update_ms": randomness_ms,
              "randomness_topk_ms": topk_ms, "randomness_figure_ms": randomness_figure_ms}
    out = args.out or Path(__file__).parent / "results" / f"sampling_latency-{dev.type}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
