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
from lmlab.experiments import coord_check, decoding, dropout, maximisation, scaling
from lmlab.experiments.transfer import canonical
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
                 what: str, device=None, ablate=None) -> Work:
    """`coord_check`: `steps` Adam steps of every width and seed on one batch (μP without the rule
    `ablate`, for a negative control)."""
    cfgs = [GPTConfig(dataset().vocab_size, ctx=ctx, width=w, depth=depth, heads=heads) for w in widths]
    work = run_work(RunSpec(cfgs[-1], TrainConfig(steps=steps, batch_size=batch, eval_every=steps)), what)
    work.runs, work.specs = 0, []
    work.flops = sum(steps * len(seeds) * batch * ctx * flops_per_token(c) for c in cfgs)
    work.steps = steps * len(seeds) * len(widths)

    def exercise():
        coord_check.coord_check(dataset(), param, [widths[0], widths[-1]], steps=1, seeds=(0,), batch_size=2,
                                ctx=ctx, depth=depth, heads=heads, base_width=widths[0], device=device,
                                ablate=ablate)

    work.exercise = exercise
    return work


def lab(B) -> list[Work]:
    S = B.lab
    cfg = GPTConfig(dataset().vocab_size, ctx=S.ctx, width=S.width, depth=S.depth, heads=S.heads)
    spec = RunSpec(cfg, TrainConfig(steps=S.steps, batch_size=S.batch_size, lr=S.lr, warmup_steps=S.steps // 10,
                                    eval_every=S.eval_every, eval_batches=S.eval_batches))
    compared = sorted({min(S.widths), max(S.widths), S.width})  # the notebook's narrowest, widest and bench model
    extra = [spec.replace(width=w, seed=s) for w in compared for s in S.seeds[1:]]
    return [*_runs([spec] + [spec.replace(width=w) for w in S.widths], "width sweep"),
            *_runs(extra, "narrowest, widest and bench width at the other seeds"),
            _generation(cfg, "two samples", 2, len("ROMEO:\n"), S.sample_chars)]


def mup(B) -> list[Work]:
    M = B.mup
    vocab = dataset().vocab_size
    checked = (("sp_fanin", None), ("mup", None), ("mup", "hidden_lr"), ("mup", "attention_scale"))
    work = [_coord_check(p, M.coord_widths, M.coord_steps, M.coord_seeds, M.batch_size, M.ctx, M.depth, M.heads,
                         f"coordinate check, {p}" + (f" without {a}" if a else ""), ablate=a) for p, a in checked]
    train = TrainConfig(steps=M.steps, batch_size=M.batch_size, lr=1.0, schedule="constant", eval_every=M.steps,
                        eval_batches=M.eval_batches, progress=False)

    def spec(param, width, log2_lr, std, mult=1.0, attn=1.0, seed=M.tune_seeds[0], zero=False):
        cfg = GPTConfig(vocab, ctx=M.ctx, width=width, depth=M.depth, heads=M.heads, param=param,
                        base_width=M.widths[0], init_std=float(std), output_mult=float(mult), attn_mult=float(attn),
                        zero_query=zero, zero_readout=zero)
        return canonical(RunSpec(cfg, train, seed=seed).replace(lr=2.0**log2_lr))

    # An LR search widens its grid at run time until the best LR is inside it: counted as its start
    # and one more LR per curve, and two more where SP's optimum drifts (the sweep's wider SP widths
    # and the searches at the target), which is what the book budget's searches took.
    w0, target, start = M.widths[0], M.widths[-1], list(M.start_log2_lrs)
    one, two = start + [start[0] - 1], start + [start[0] - 1, start[0] - 2]
    grid = [(s, a, t) for s in M.proxy_stds for a in M.proxy_output_mults for t in M.proxy_attn_mults]
    lab_std, std, mult, attn, lr = GPTConfig(vocab).init_std, M.proxy_stds[len(M.proxy_stds) // 2], 1.0, 1.0, start[1]
    specs = [spec("mup", w0, lg, s, a, t, seed=k, zero=z) for s, a, t in grid for lg in one for k in M.tune_seeds
             for z in (False, True)]  # the proxy's search, and again with query and readout at zero
    specs += [spec("mup", target, lr, std, seed=k, zero=True) for k in M.eval_seeds]  # its best at the target
    specs += [spec("mup", w0, lg, lab_std, seed=k) for lg in one for k in M.tune_seeds]  # the untuned base's
    specs += [spec(p, w, lg, std, mult, attn, seed=k) for p in ("sp_fanin", "mup") for w in M.widths for k in M.seeds
              for lg in (two if p == "sp_fanin" and w > w0 else one)]  # the LR sweep over seeds
    specs += [spec("mup", w, lr, s, mult, attn, seed=k) for w in M.hp_widths for s in M.hp_stds for k in M.seeds]
    specs += [spec("mup", w, lr, std, a, attn, seed=k) for w in M.hp_widths for a in M.hp_output_mults for k in M.seeds]
    specs += [spec("mup", w, lr, std, mult, t, seed=k) for w in M.hp_widths for t in M.hp_attn_mults for k in M.seeds]
    specs += [spec(p, target, lg, s, a, t) for p in ("sp_fanin", "mup") for s, a, t in grid
              for lg in two]  # SP's and μP's searches at the target
    specs += [spec(p, target, lr, s, seed=k) for p, s in (("mup", std), ("mup", 2 * std), ("sp_fanin", std),
                                                         ("mup", lab_std), ("sp_fanin", 2 * std)) for k in M.eval_seeds]
    work += _runs(specs, "proxy search, LR sweep, σ, α_out and α_attn, the searches at the target, and the target")
    work += _runs([spec("mup", w, lr, std, seed=k) for w in M.widths[1:] for k in M.seeds],
                  "μP with attention 1/√d_head at every width")
    # the μP ladder: the rungs between fan-in SP and μP that section 3 and the sweep have not run
    work += [_coord_check(p, M.coord_widths, M.coord_steps, M.coord_seeds, M.batch_size, M.ctx, M.depth, M.heads,
                          f"coordinate check, {p} (the ladder)") for p in ("sp", "sp_fanin_lr")]
    work += _runs([spec(p, w, lg, std, mult, attn, seed=k) for p in ("sp", "sp_fanin_lr", "mup_no_attn")
                   for w in M.widths for k in M.seeds for lg in (two if p != "mup_no_attn" and w > w0 else one)],
                  "the μP ladder's LR sweeps")
    work += _runs([spec("mup", target, lr, std, seed=k) for k in M.eval_seeds], "the target, attention 1/√d_head")
    # the comparison with the mup package runs on the CPU by design, at three small widths
    work.append(_coord_check("mup", M.coord_widths[:3], 3, M.coord_seeds, M.batch_size, M.ctx, M.depth, M.heads,
                             "mup package comparison (CPU)", device="cpu"))
    return work


def scaling_chapter(B) -> list[Work]:
    S = B.scaling
    lr = S.log2_lrs[len(S.log2_lrs) // 2]  # tuned at run time; the cost does not depend on it
    # the LR tuning: a WSD family over every budget of the tuned size, at each seed
    specs = [scaling.run_spec(S, S.tune_depth, lg, seed=seed) for seed in S.seeds for lg in S.log2_lrs]
    specs += [scaling.run_spec(S, d, lr, seed=seed) for d in S.depths for seed in S.seeds]  # the held size too
    # the fit's three suggestions, at C = geomspace(c_lo, c_hi, 3) inside the grid's compute: at most
    # the largest size's longest common budget, at least the third size's shortest fitted one (three sizes
    # must cover c_lo); a suggestion spends C whatever its size, so each is counted at the largest size
    tokens = S.batch_size * S.ctx
    c_hi = S.budgets[-1] * tokens * flops_per_token(scaling.model_config(S, S.depths[-1]))
    fitted = [b for b in S.budgets if b >= scaling.min_fit_steps(S)]
    c_lo = fitted[0] * tokens * flops_per_token(scaling.model_config(S, S.depths[2]))
    top = flops_per_token(scaling.model_config(S, S.depths[-1])) * tokens
    specs += [scaling.run_spec(S, S.depths[-1], lr, budgets=[max(scaling.min_fit_steps(S), round(c / top))])
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
    chosen = D.ps[2]  # the best rate is found at run time; the cost is one model's whatever it is
    specs = [dropout.model_spec(D, p, chars, seed) for chars in (D.small_chars, ALL) for p in sorted(D.ps, reverse=True)
             for seed in D.seeds]
    specs += _dropout_runs(D, (0.0, chosen), D.confirm_seeds)  # the chosen rate and p = 0 at fresh seeds
    mc_cfg = dropout.model_spec(D, D.mc_p, D.small_chars).model
    return [*_runs(specs, "dropout × data × seed"),
            _mc(mc_cfg, "MC dropout, every seed", D.mc_passes, D.mc_batches, D.batch_size, 3 * len(D.seeds))]


def _beam(cfg: GPTConfig, what: str, rows: int, prompt: int, chars: int, widths) -> Work:
    """`beam_search` at every width of `widths`: one step feeds rows × width tokens through the KV cache."""
    work = forward_work(cfg, what, rows * sum(widths), chars + 1, 1)

    def exercise():
        maximisation.beam_search(GPT(cfg).eval(), torch.randint(cfg.vocab_size, (2, prompt)), 2, max(widths))

    work.exercise = exercise
    return work


def sampling_chapter(B) -> list[Work]:
    S = B.sampling
    spec = decoding.model_spec(S)
    settings = 1 + (len(S.ks) - 1) + 1 + len(S.temperatures) + len(S.top_ps) + len(S.min_ps)
    return [run_work(spec, "the sampling model"),
            _generation(spec.model, f"decoding grid, {settings} settings", S.prompts, S.prompt_chars, S.sample_chars,
                        settings),
            _beam(spec.model, f"beam search, widths {S.beam_widths}", S.beam_prompts, S.prompt_chars, S.sample_chars,
                  S.beam_widths),
            _generation(spec.model, "greedy and pure sampling beside the beams", S.beam_prompts, S.prompt_chars,
                        S.sample_chars, 2),
            forward_work(spec.model, "the repetition feedback loop", 2 * S.phrases, S.repeats,
                         S.repeats * S.phrase_chars),
            _generation(spec.model, "static twin", S.shown_samples, S.prompt_chars, S.sample_chars, len(S.ks)),
            forward_work(spec.model, "logits of the held-out texts", S.prompts, 1, S.prompt_chars + S.sample_chars)]


def randomness(B) -> list[Work]:
    S, D = B.randomness, B.dropout
    judge = decoding.model_spec(B.sampling)
    chosen = D.ps[2]  # the best rate is found at run time; the cost is one model's whatever it is
    specs = _dropout_runs(D, D.ps, D.seeds) + _dropout_runs(D, (0.0, chosen), D.confirm_seeds)  # chapter 4's runs
    cfg = dropout.model_spec(D, chosen, D.small_chars).model
    fresh = D.confirm_seeds[: S.fresh_seeds]  # the rows use chapter 4's first fresh seeds
    rows, mc_seeds = 2 * len(fresh), min(3, len(fresh))
    return [*_runs(specs, "chapter 4's grid and fresh seeds"), run_work(judge, "the judge (chapter 5's model)"),
            _generation(cfg, "2 × 3 decoding, every seed", S.prompts, S.prompt_chars, S.sample_chars, 3 * rows),
            _generation(cfg, "reruns", S.prompts // 4, S.prompt_chars, S.sample_chars, 8),
            _generation(cfg, "texts by seed and static twin", S.shown_samples, S.prompt_chars, S.sample_chars,
                        S.text_seeds + 2 * len(S.ks)),
            _generation(cfg, "decoding with dropout on", S.mc_prompts, S.prompt_chars, S.sample_chars, 2 * mc_seeds,
                        dropout_on=True),
            forward_work(cfg, "held-out logits and argmax agreement", D.batch_size, (rows + 2 * mc_seeds)
                         * D.eval_batches, cfg.ctx),
            _mc(cfg, "MC dropout, every fresh seed", D.mc_passes, D.mc_batches, D.batch_size, len(fresh)),
            # each row run retrained to its best step (`lmlab.runs.stopped`): at most the whole run again
            *[run_work(s, "early-stopped retrains (at most the whole run)")
              for s in _dropout_runs(D, (0.0, chosen), fresh)],
            forward_work(cfg, "end and stopped models on the baseline windows", D.batch_size,
                         2 * rows * 4 * D.eval_batches, cfg.ctx)]


CHAPTERS = {"lab": lab, "mup": mup, "scaling": scaling_chapter, "dropout": dropout_chapter,
            "sampling": sampling_chapter, "randomness": randomness}
