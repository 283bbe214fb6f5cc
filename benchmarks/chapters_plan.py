"""What each chapter's notebook computes at a budget, from an empty run cache, as `gpu_plan.Work`.

One function per chapter, read off its notebook: the same spec builders the notebook calls
(`scaling.run_spec`, `dropout.model_spec`, `decoding.model_spec`, …), so a change of sizes in
`lmlab.budget` changes the plan. Runs that two cells share (the cache serves the second) are
counted once. What a reader's slider trains in a live panel is not counted: it runs only when
the reader asks, a few seconds to a minute each.

Each piece of work that is not a plain run carries `exercise`: the same code path at the same
shapes, cut to a step or two, which tests/test_gpu_shapes.py runs on the CPU. Plain runs are
exercised from their spec there.
"""

import torch
from plan_cost import Work, forward_work, run_work

from lmlab import GPTConfig, RunSpec, TrainConfig
from lmlab.corpus import ALL
from lmlab.experiments import coord_check, decoding, dropout, scaling
from lmlab.model import GPT, flops_per_token
from lmlab.runs import dataset
from lmlab.sampling import generate


def _runs(specs, what: str) -> list[Work]:
    """One Work per distinct spec (a WSD family is one), in order."""
    return [run_work(s, what) for s in dict.fromkeys(specs)]


def _generation(cfg: GPTConfig, what: str, rows: int, prompt: int, chars: int, calls: int = 1,
                dropout_on: bool = False) -> Work:
    """`calls` calls of `generate` on `rows` prompts of `prompt` characters, `chars` new ones each:
    one new token a step through the KV cache while the text fits in ctx (the whole window
    when dropout is on or the window slides), then the judge's scoring pass."""
    per_step = cfg.ctx if dropout_on or prompt + chars > cfg.ctx else 1
    work = forward_work(cfg, what, rows, calls * (chars + 1), per_step)
    work.flops += calls * rows * (prompt + chars) * flops_per_token(cfg) / 3  # the NLL pass over every text

    def exercise():
        model = GPT(cfg).eval()
        idx = torch.randint(cfg.vocab_size, (min(rows, 2), prompt))
        generate(model, idx, 2, top_k=10, dropout=dropout_on, generator=torch.Generator().manual_seed(0))

    work.exercise = exercise
    return work


def _coord_check(param: str, widths, steps: int, seeds, batch: int, ctx: int, depth: int, heads: int,
                 what: str, device=None) -> Work:
    """`coord_check`: `steps` Adam steps of every width and seed on one batch."""
    cfgs = [GPTConfig(dataset().vocab_size, ctx=ctx, width=w, depth=depth, heads=heads) for w in widths]
    work = run_work(RunSpec(cfgs[-1], TrainConfig(steps=steps, batch_size=batch, eval_every=steps)), what)
    work.runs, work.specs = 0, []
    work.flops = sum(steps * len(seeds) * batch * ctx * flops_per_token(c) for c in cfgs)
    work.steps = steps * len(seeds) * len(widths)

    def exercise():
        coord_check.coord_check(dataset(), param, [widths[0], widths[-1]], steps=1, seeds=(0,), batch_size=2,
                                ctx=ctx, depth=depth, heads=heads, base_width=widths[0], device=device)

    work.exercise = exercise
    return work


def lab(B) -> list[Work]:
    S = B.lab
    cfg = GPTConfig(dataset().vocab_size, ctx=S.ctx, width=S.width, depth=S.depth, heads=S.heads)
    spec = RunSpec(cfg, TrainConfig(steps=S.steps, batch_size=S.batch_size, lr=S.lr, warmup_steps=S.steps // 10,
                                    eval_every=S.eval_every, eval_batches=S.eval_batches))
    return [*_runs([spec] + [spec.replace(width=w) for w in S.widths], "width sweep"),
            _generation(cfg, "two samples", 2, len("ROMEO:\n"), S.sample_chars)]


def mup(B) -> list[Work]:
    M = B.mup
    vocab = dataset().vocab_size
    work = [_coord_check(p, M.coord_widths, M.coord_steps, M.coord_seeds, M.batch_size, M.ctx, M.depth, M.heads,
                         f"coordinate check, {p}") for p in ("sp", "mup")]
    train = TrainConfig(steps=M.steps, batch_size=M.batch_size, lr=1.0, schedule="constant", eval_every=M.steps,
                        eval_batches=M.eval_batches, progress=False)

    def spec(param, width, log2_lr, **kw):
        cfg = GPTConfig(vocab, ctx=M.ctx, width=width, depth=M.depth, heads=M.heads, param=param,
                        base_width=M.widths[0], **kw)
        from lmlab.experiments.transfer import canonical

        return canonical(RunSpec(cfg, train).replace(lr=2.0**log2_lr))

    lab_std, target = GPTConfig(vocab).init_std, M.widths[-1]
    specs = [spec(p, w, lg, init_std=M.init_std) for p in ("sp", "mup") for w in M.widths for lg in M.log2_lrs]
    specs += [spec("mup", M.widths[0], lg, init_std=s, output_mult=a)
              for s in M.proxy_stds for a in M.proxy_output_mults for lg in M.proxy_log2_lrs]
    specs += [spec("sp", target, lg, init_std=s) for s in (lab_std, M.init_std) for lg in M.log2_lrs]
    # the proxy's choices carried to the target, μP and SP (their values are found at run time:
    # the cost is three target runs whatever they are)
    specs += [spec(p, target, M.proxy_log2_lrs[0], init_std=M.proxy_stds[-1], output_mult=M.proxy_output_mults[-1])
              for p in ("mup", "sp")] + [spec("mup", target, M.proxy_log2_lrs[0], init_std=lab_std)]
    work += _runs(specs, "LR sweeps and transfer")
    # the comparison with the mup package runs on the CPU by design, at three small widths
    work.append(_coord_check("mup", M.coord_widths[:3], 3, M.coord_seeds, M.batch_size, M.ctx, M.depth, M.heads,
                             "mup package comparison (CPU)", device="cpu"))
    return work


def scaling_chapter(B) -> list[Work]:
    S = B.scaling
    lr = S.log2_lrs[len(S.log2_lrs) // 2]  # tuned at run time; the cost does not depend on it
    specs = [scaling.run_spec(S, S.tune_depth, lg, budgets=[S.budgets[-2]]) for lg in S.log2_lrs]
    specs += [scaling.run_spec(S, d, lr, seed=seed) for d in S.depths for seed in S.seeds]
    # the fit's three suggestions, at C = geomspace(c_lo, c_hi, 3) inside the grid's compute: at most
    # the largest size's longest common budget, at least the third size's shortest (three sizes must
    # cover c_lo); each counted at the largest size, the costliest per step
    tokens = S.batch_size * S.ctx
    c_hi = S.budgets[-1] * tokens * flops_per_token(scaling.model_config(S, S.depths[-1]))
    c_lo = S.budgets[0] * tokens * flops_per_token(scaling.model_config(S, S.depths[2]))
    top = flops_per_token(scaling.model_config(S, S.depths[-1])) * tokens
    specs += [scaling.run_spec(S, S.depths[-1], lr, budgets=[max(2 * S.warmup_steps, round(c / top))])
              for c in (c_lo, (c_lo * c_hi) ** 0.5, c_hi)]
    specs += [scaling.run_spec(S, S.repeat_depth, lr, seed=seed, train_chars=chars) for seed in S.seeds
              for chars in (ALL, S.repeat_chars)]
    return _runs(specs, "sizes × budgets")


def _dropout_runs(D, ps, seeds=(0,)) -> list:
    return [dropout.model_spec(D, p, D.small_chars, seed) for p in ps for seed in seeds]


def _mc(cfg: GPTConfig, what: str, passes: int, batches: int, batch: int, texts: int) -> Work:
    """`mc_uncertainty` on `texts` texts: per batch, one pass in eval mode and `passes` with dropout on."""
    work = forward_work(cfg, what, batch, texts * batches * (passes + 1), cfg.ctx)

    def exercise():
        dropout.mc_uncertainty(GPT(cfg), dataset().val.ids, 2, 1, 2)

    work.exercise = exercise
    return work


def dropout_chapter(B) -> list[Work]:
    D = B.dropout
    specs = [dropout.model_spec(D, p, chars) for chars in (D.small_chars, ALL) for p in sorted(D.ps, reverse=True)]
    mc_cfg = dropout.model_spec(D, D.mc_p, D.small_chars).model
    return [*_runs(specs, "dropout × data"), _mc(mc_cfg, "MC dropout", D.mc_passes, D.mc_batches, D.batch_size, 3)]


def sampling_chapter(B) -> list[Work]:
    S = B.sampling
    spec = decoding.model_spec(S)
    settings = 1 + (len(S.ks) - 1) + 1 + len(S.temperatures) + len(S.top_ps) + len(S.min_ps)
    return [run_work(spec, "the sampling model"),
            _generation(spec.model, f"decoding grid, {settings} settings", S.prompts, S.prompt_chars, S.sample_chars,
                        settings),
            _generation(spec.model, "static twin", S.shown_samples, S.prompt_chars, S.sample_chars, len(S.ks)),
            forward_work(spec.model, "logits of the held-out texts", S.prompts, 1, S.prompt_chars + S.sample_chars)]


def randomness(B) -> list[Work]:
    S, D = B.randomness, B.dropout
    judge = decoding.model_spec(B.sampling)
    chosen = D.ps[2]  # the best rate is found at run time; the cost is one model's whatever it is
    specs = _dropout_runs(D, D.ps) + _dropout_runs(D, (0.0, chosen), S.seeds)
    cfg = dropout.model_spec(D, chosen, D.small_chars).model
    rows = 2 * len(S.seeds)
    return [*_runs(specs, "chapter 4's grid and seeds"), run_work(judge, "the judge (chapter 5's model)"),
            _generation(cfg, "2 × 2 decoding, every seed", S.prompts, S.prompt_chars, S.sample_chars, 2 * rows),
            _generation(cfg, "reruns", S.prompts // 4, S.prompt_chars, S.sample_chars, 8),
            _generation(cfg, "texts by seed and static twin", S.shown_samples, S.prompt_chars, S.sample_chars,
                        S.text_seeds + 2 * len(S.ks)),
            _generation(cfg, "decoding with dropout on", S.prompts // 2, S.prompt_chars, S.sample_chars, 2,
                        dropout_on=True),
            _generation(cfg, "decoding, dropout off", S.prompts // 2, S.prompt_chars, S.sample_chars, 2),
            forward_work(cfg, "held-out logits", D.batch_size, rows * D.eval_batches, cfg.ctx),
            _mc(cfg, "MC dropout", D.mc_passes, D.mc_batches, D.batch_size, 1)]


CHAPTERS = {"lab": lab, "mup": mup, "scaling": scaling_chapter, "dropout": dropout_chapter,
            "sampling": sampling_chapter, "randomness": randomness}
