"""Chapter 5's model: the one GPT that chapters 5 and 6 sample from.

It is described once, so that chapter 6 asks the run cache for the same spec and
gets chapter 5's model back without training.
"""

from lmlab.model import GPTConfig
from lmlab.runs import RunSpec, dataset
from lmlab.train import TrainConfig


def model_spec(sizes) -> RunSpec:
    """The run of chapter 5's model at `budget().sampling` sizes: a context that holds a prompt and
    its whole continuation, so generation never slides its window."""
    model = GPTConfig(dataset().vocab_size, ctx=sizes.ctx, width=sizes.width, depth=sizes.depth, heads=sizes.heads)
    train = TrainConfig(steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr, warmup_steps=sizes.warmup_steps,
                        eval_every=sizes.eval_every, eval_batches=sizes.eval_batches, progress=False)
    return RunSpec(model, train)
