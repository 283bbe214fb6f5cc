"""The `gpu` budget sized on paper for a T4, and the `book` budget set beside what the CPU build achieved.

For every chapter at a budget this counts what its notebook trains from an empty run cache
(what a fresh Colab runtime trains): the runs, their training FLOPs by lmlab's own count
(`lmlab.model.flops_per_token`, forward and backward, plus the evaluations' forward passes
and the chapter's other work: coordinate checks, generation, MC dropout), the peak memory
of the largest run, and the minutes a T4 would take at several model-FLOP utilisations.

The cost model (what a step costs, memory, the per-operation floor) is in plan_cost.py; what
each chapter computes, in chapters_plan.py.

    .venv/bin/python benchmarks/gpu_plan.py                 # the gpu plan, as a markdown table
    .venv/bin/python benchmarks/gpu_plan.py --groups        # the same, same-shape runs trained in groups
    .venv/bin/python benchmarks/gpu_plan.py --budget book   # book, beside the last build's CPU times

`chapter_work(name, budget)` is also what tests/test_gpu_shapes.py executes, at gpu shapes.
"""

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from chapters_plan import CHAPTERS  # noqa: E402  (one function per chapter)
from plan_cost import MFUS, OP_SECONDS, Work, grouped  # noqa: E402

from lmlab.budget import BUDGETS  # noqa: E402


def chapter_work(name: str, budget) -> list[Work]:
    return CHAPTERS[name](budget)


def summary(name: str, budget, cached: set | None = None, groups: bool = False) -> dict:
    """A chapter's totals; runs in `cached` (specs an earlier chapter of the same build trained)
    are served by the run cache and cost nothing. The new runs are added to `cached`. With
    `groups`, same-shape runs train in groups, as `lmlab.run_groups` trains them on a GPU."""
    work = chapter_work(name, budget)
    if cached is not None:
        work = [w for w in work if not w.specs or w.specs[0] not in cached]
        cached.update(s for w in work for s in w.specs)
    if groups:
        work = grouped(work)
    largest = max(work, key=lambda w: w.memory)
    return {"chapter": name, "runs": sum(w.runs for w in work), "pflops": sum(w.flops for w in work) / 1e15,
            "steps": sum(w.steps for w in work), "trainings": sum(1 for w in work if w.specs),
            "peak_gb": largest.memory / 1e9, "largest": largest.what,
            **{f"t4_min_{round(m * 100)}": sum(w.seconds(m) for w in work) / 60 for m in MFUS},
            "floor_min": sum(w.steps * w.ops * OP_SECONDS for w in work) / 60}


# ---------------------------------------------------------------- the book build's CPU times


def measured_book_seconds(cache_dir: Path = ROOT / "_build" / ".jupyter_cache") -> dict:
    """Each chapter's execution time in the last `make book`, from myst-nb's execution cache."""
    try:
        from jupyter_cache import get_cache
    except ImportError:
        return {}
    if not cache_dir.exists():
        return {}
    return {Path(r.uri).parent.name: r.data.get("execution_seconds") for r in get_cache(cache_dir).list_cache_records()}


def cpu_peak() -> tuple[float, str]:
    """This CPU's fp32 peak: cores × clock × FLOPs per cycle per core (two 256-bit FMA pipes: 32 with
    AVX2 + FMA, as on Zen 3 and Zen 4, whose AVX-512 runs on the same two 256-bit pipes)."""
    flags, mhz, model = "", 0.0, platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
            elif line.startswith("model name"):
                model = line.split(":")[1].strip()
    except OSError:
        pass
    per_cycle = 32 if " fma" in flags and " avx2" in flags else 16
    cores = os.cpu_count() or 1
    return cores * mhz * 1e6 * per_cycle, f"{cores} cores × {mhz / 1000:.2f} GHz × {per_cycle} FLOP/cycle ({model})"


def table(budget_name: str, jupyter_cache: Path = ROOT / "_build" / ".jupyter_cache", groups: bool = False) -> str:
    budget = BUDGETS[budget_name]
    if budget_name == "gpu":  # each chapter alone, from an empty cache, as a fresh Colab runtime runs it
        rows = [summary(name, budget, groups=groups) for name in CHAPTERS]
    else:  # as `make book` runs them: in alphabetical order, sharing one run cache
        cached = set()
        rows = sorted((summary(name, budget, cached) for name in sorted(CHAPTERS)),
                      key=lambda r: list(CHAPTERS).index(r["chapter"]))
    out = []
    if budget_name == "gpu":
        out.append("| chapter | runs (trainings) | training + eval PFLOP | peak memory (largest work) "
                   "| T4 minutes at 10 / 15 / 20 / 30 % MFU | per-step floor alone |")
        out.append("|---|---:|---:|---|---:|---:|")
        for r in rows:
            out.append(f"| {r['chapter']} | {r['runs']} ({r['trainings']}) | {r['pflops']:.2f} | {r['peak_gb']:.2f} GB "
                       f"({r['largest']}) "
                       f"| {r['t4_min_10']:.1f} / {r['t4_min_15']:.1f} / {r['t4_min_20']:.1f} / {r['t4_min_30']:.1f} "
                       f"| {r['floor_min']:.1f} |")
    else:
        measured = measured_book_seconds(jupyter_cache)
        peak, how = cpu_peak()
        out.append(f"CPU peak: {peak / 1e9:.0f} GFLOP/s = {how}.")
        out.append("")
        out.append("| chapter | runs | training + eval TFLOP | measured seconds (last build) | achieved GFLOP/s "
                   "| % of the CPU's peak |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            s = measured.get(r["chapter"])
            rate = r["pflops"] * 1e15 / s if s else float("nan")
            out.append(f"| {r['chapter']} | {r['runs']} | {1000 * r['pflops']:.1f} | {s or float('nan'):.0f} "
                       f"| {rate / 1e9:.1f} | {100 * rate / peak:.1f} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="gpu", choices=sorted(BUDGETS))
    parser.add_argument("--groups", action="store_true",
                        help="train same-shape runs in groups, as lmlab.run_groups does on a GPU (gpu budget)")
    parser.add_argument("--jupyter-cache", type=Path, default=ROOT / "_build" / ".jupyter_cache",
                        help="the build whose execution times --budget book reads (default: this checkout's)")
    args = parser.parse_args()
    print(table(args.budget, args.jupyter_cache, args.groups))


if __name__ == "__main__":
    main()
