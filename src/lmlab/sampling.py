"""From logits to text: temperature, top-k, top-p and min-p, and seeded generation.

The filters apply in Hugging Face's order, temperature → top-k → top-p → min-p,
on batched logits; a filtered-out token gets -inf, so softmax gives it zero.
"""

import torch

from lmlab.checks import check_fraction, check_positive_int, check_range
from lmlab.model import GPTConfig, KVCache, eval_mode


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None) -> torch.Tensor:
    """Logits (…, vocab) after temperature and truncation; `temperature` must be > 0 here.

    top_k keeps every logit ≥ the k-th largest (ties at the k-th are all kept);
    top_p keeps the smallest set whose probability reaches p, the crossing token
    included (among tied tokens, the lower id comes first); min_p keeps tokens with
    probability ≥ min_p × the largest one.
    """
    check_range("temperature", temperature, 0, float("inf"), low_open=True, high_open=True)
    logits = logits / temperature
    if top_k is not None:
        check_positive_int("top_k", top_k)
        if top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        check_fraction("top_p", top_p, low_open=True)
        if top_p < 1:
            # stable: ties keep id order, so which tie top-p keeps does not depend on the sort kernel
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
            probs = sorted_logits.softmax(-1)
            mass_before = probs.cumsum(-1) - probs
            drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
            logits = logits.masked_fill(drop, float("-inf"))
    if min_p is not None:
        check_fraction("min_p", min_p)
        probs = logits.softmax(-1)
        logits = logits.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), float("-inf"))
    return logits


def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, min_p: float | None = None, generator: torch.Generator | None = None,
             kv_cache: bool = True, dropout: bool = False) -> torch.Tensor:
    """Extend each row of `idx` (batch, time) by `max_new_tokens` sampled tokens.

    temperature 0 means greedy decoding. The model sees at most its last `ctx`
    tokens. While the text fits in ctx, a KV cache feeds the model one new token
    per step; once the window slides, every position shifts and each step
    recomputes the window (the same tokens either way). Runs in eval mode, so
    dropout never adds randomness here, unless `dropout` is True: then every step
    runs the whole window through a freshly thinned network (MC dropout), its masks
    drawn from torch's global RNG (seed it with `torch.manual_seed`).
    """
    check_range("temperature", temperature, 0, float("inf"), high_open=True)
    check_positive_int("max_new_tokens", max_new_tokens)
    ctx = model.config.ctx
    if idx.shape[1] > ctx:
        raise ValueError(f"prompt must be at most ctx={ctx} tokens long, got {idx.shape[1]}")
    cache = KVCache(ctx) if kv_cache and not dropout else None
    # inference mode: ~10% faster per step than no_grad, since it keeps no version counters
    with eval_mode(model, not dropout), torch.inference_mode():
        logits = model(idx, cache=cache)
        for step in range(max_new_tokens):
            if step:
                sliding = cache is None or len(cache) == ctx
                logits = model(idx[:, -ctx:]) if sliding else model(idx[:, -1:], cache=cache)
            last = logits[:, -1, :].float()
            if temperature == 0:
                nxt = last.argmax(-1, keepdim=True)
            else:
                probs = filter_logits(last, temperature, top_k, top_p, min_p).softmax(-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
    return idx.clone()  # an ordinary tensor again, which autograd code may also use


def sample(model, tokenizer, prompt: str, chars: int, num_samples: int = 1, seed: int = 0, **filters) -> list[str]:
    """`num_samples` continuations of `prompt`, `chars` characters each, reproducible from `seed`."""
    check_positive_int("num_samples", num_samples)
    if not prompt:
        raise ValueError("prompt must contain at least one character, got ''")
    dev = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)] * num_samples, device=dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = generate(model, idx, chars, generator=g, **filters)
    return [tokenizer.decode(row[len(prompt):]) for row in out]


@torch.no_grad()
def next_token_probs(model, tokenizer, prompt: str, temperature: float = 1.0, **filters) -> torch.Tensor:
    """The distribution (vocab,) the sampler draws the character after `prompt` from: the model's
    softmax after temperature and truncation; temperature 0 (greedy) puts all mass on the argmax."""
    if not prompt:
        raise ValueError("prompt must contain at least one character, got ''")
    check_range("temperature", temperature, 0, float("inf"), high_open=True)
    ids = torch.tensor([tokenizer.encode(prompt)[-model.config.ctx :]], device=next(model.parameters()).device)
    with eval_mode(model):
        logits = model(ids)[0, -1].float().cpu()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), len(logits)).float()
    return filter_logits(logits, temperature, **filters).softmax(-1)


def model_spec(sizes) -> dict:
    """The `lmlab.sweep` spec of the model chapters 5 and 6 sample from, at `budget().sampling`
    sizes: the same spec gives the same run-cache entry, so it trains once for both."""
    from lmlab.sweep import dataset

    model = GPTConfig(dataset().vocab_size, ctx=sizes.ctx, width=sizes.width, depth=sizes.depth, heads=sizes.heads)
    train = dict(steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr, warmup_steps=sizes.warmup_steps,
                 eval_every=sizes.eval_every, eval_batches=sizes.eval_batches)
    return {"model": model.to_dict(), "train": train}
