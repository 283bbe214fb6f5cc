"""Chapter 5's model: the one GPT that chapters 5 and 6 sample from, and its export for the HTML book.

It is described once, so that chapter 6 asks the run cache for the same spec and gets
chapter 5's model back without training. After the notebooks ran, `make book` runs this
module's command: it takes that model from the run cache and hands it to `lmlab.export`,
which writes and checks what the in-browser panel loads; it also wraps ONNX Runtime Web's
files for a page opened from disk.

    python -m lmlab.experiments.decoding model --out _build/html/_static/sampler --runtime _build/html/_static/ort
    python -m lmlab.experiments.decoding runtime --dist node_modules/onnxruntime-web/dist --out book/assets/ort
"""

import argparse

from lmlab.budget import budget
from lmlab.export import export_sampler, wrap_runtime
from lmlab.model import GPTConfig
from lmlab.runs import RunSpec, dataset, trained
from lmlab.seeds import fresh
from lmlab.train import TrainConfig


def model_spec(sizes) -> RunSpec:
    """The run of chapter 5's model at `budget().sampling` sizes: a context that holds a prompt and
    its whole continuation, so generation never slides its window. Its seed is 0, moved by the
    replication build's offset (`lmlab.seeds.fresh`)."""
    model = GPTConfig(dataset().vocab_size, ctx=sizes.ctx, width=sizes.width, depth=sizes.depth, heads=sizes.heads)
    train = TrainConfig(steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr, warmup_steps=sizes.warmup_steps,
                        eval_every=sizes.eval_every, eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model, train, seed=fresh(0))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lmlab.experiments.decoding", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model", help="export chapter 5's trained model (from the run cache) for the page")
    m.add_argument("--out", required=True, help="the folder the page loads meta.js and model.js from")
    m.add_argument("--runtime", help="the folder of wrap_runtime's scripts, as the built book has it")
    r = sub.add_parser("runtime", help="wrap onnxruntime-web's files as classic scripts")
    r.add_argument("--dist", required=True, help="onnxruntime-web's dist folder (from npm)")
    r.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.what == "runtime":
        files = wrap_runtime(args.dist, args.out)
        print(f"ONNX Runtime Web wrapped for the page: {', '.join(f.name for f in files)} in {args.out}")
        return
    sizes = budget().sampling
    model, _ = trained(model_spec(sizes))  # the chapter trained it: the run cache has it
    meta = export_sampler(model, dataset(), args.out, sizes, args.runtime)
    c = meta["check"]
    print(f"chapter 5's model for the page: {c['bytes']:,} bytes in {args.out}/model.onnx; against torch: "
          f"logits within {max(c['max_abs_diff_full'], c['max_abs_diff_cached']):.1e} (limit {c['atol']}), "
          f"{c['greedy_identical']}/{c['prompts']} greedy texts of {c['greedy_chars']} characters identical"
          + ("" if meta["runtime"] else f"; no ONNX Runtime Web in {args.runtime}: the page shows a notice"))


if __name__ == "__main__":
    main()
