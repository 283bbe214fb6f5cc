"""From logits to text: temperature, top-k, top-p and min-p, and seeded generation.

The filters apply in Hugging Face's order, temperature → top-k → top-p → min-p,
on batched logits; a filtered-out token gets -inf, so softmax gives it zero.
One spelling per meaning: `temperature=0` is greedy decoding (the argmax, the first
one where logits tie), and `None` switches a truncation off (`top_k=None` keeps every
token; `top_p=1` and `min_p=0` keep every token too, as the arithmetic says).

Every function here takes inputs and generators on any device: token ids move to the
model's device, and each draw happens on its generator's device (a CPU generator
gives the same text whichever device computed the probabilities).
"""

import torch

from lmlab import footprint
from lmlab.checks import check_fraction, check_positive_int, check_range, check_seed
from lmlab.model import KVCache, eval_mode, flops_per_token, model_device


def _check_filters(temperature, top_k, top_p, min_p) -> None:
    check_range("temperature", temperature, 0, float("inf"), high_open=True)
    if top_k is not None:
        check_positive_int("top_k (None for no top-k)", top_k)
    if top_p is not None:
        check_fraction("top_p (None for no top-p)", top_p, low_open=True)
    if min_p is not None:
        check_fraction("min_p (None for no min-p)", min_p)


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None) -> torch.Tensor:
    """Logits (…, vocab) after temperature and truncation.

    temperature 0 keeps only the argmax (greedy decoding: the first one where logits tie). Any
    other T divides the logits after subtracting their maximum, so the top logit is 0 and the
    rest ≤ 0 (softmax gives the same distribution; T = 1 returns the logits unchanged). A tiny
    T sends the rest to −inf, never to inf − inf = NaN: as T → 0 all the mass goes to the
    argmax, shared equally among tied maxima (where T = 0 takes the first of them).

    top_k keeps every logit ≥ the k-th largest (ties at the k-th are all kept); top_p keeps the
    smallest set whose probability reaches p, the crossing token included (among tied tokens,
    the lower id comes first); min_p keeps tokens with probability ≥ min_p × the largest one.
    """
    _check_filters(temperature, top_k, top_p, min_p)
    if temperature == 0:
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, float("-inf"))
    if temperature != 1:
        shifted = logits - logits.amax(-1, keepdim=True)
        # a T that rounds to 0 in the logits' dtype (5e-324 in float32) would make the top 0 / 0
        logits = torch.where(shifted == 0, shifted, shifted / temperature)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        # stable: ties keep id order, so which tie top-p keeps does not depend on the sort kernel
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = sorted_logits.softmax(-1)
        mass_before = probs.cumsum(-1) - probs
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    if min_p is not None:
        probs = logits.softmax(-1)
        logits = logits.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), float("-inf"))
    return logits


def check_ids(model, idx, what: str = "idx") -> torch.Tensor:
    """Token ids (batch, time) as a LongTensor on the model's device, after checking their shape
    and that every id has a row in the model's embedding."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.shape[0] < 1 or idx.shape[1] < 1:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{what} must be a 2-D tensor of token ids (batch ≥ 1, time ≥ 1), got {shape}")
    if idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise ValueError(f"{what} must hold integer token ids, got dtype {idx.dtype}")
    vocab = model.config.vocab_size
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or high >= vocab:
        raise ValueError(f"{what} must hold ids in [0, {vocab - 1}] (the model's vocabulary), got ids in "
                         f"[{low}, {high}]")
    return idx.to(model_device(model), dtype=torch.long)


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from `probs`, drawn on the generator's device, returned on the probs' device."""
    if generator is None:
        return torch.multinomial(probs, 1)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(probs.device)


def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, min_p: float | None = None, generator: torch.Generator | None = None,
             kv_cache: bool = True, dropout: bool = False) -> torch.Tensor:
    """Extend each row of `idx` (batch, time) by `max_new_tokens` sampled tokens; returns the ids
    on the model's device.

    temperature 0 means greedy decoding. The model sees at most its last `ctx`
    tokens. While the text fits in ctx, a KV cache feeds the model one new token
    per step; once the window slides, every position shifts and each step
    recomputes the window (the same tokens either way). Runs in eval mode, so
    dropout never adds randomness here, unless `dropout` is True: then every step
    runs the whole window through a freshly thinned network (MC dropout), its masks
    drawn from torch's global RNG (seed it with `torch.manual_seed`).
    """
    _check_filters(temperature, top_k, top_p, min_p)
    check_positive_int("max_new_tokens", max_new_tokens)
    idx = check_ids(model, idx)
    footprint.check_generation(model.config, *idx.shape, max_new_tokens, model_device(model),
                               flops_per_token(model.config), kv_cache=kv_cache and not dropout)
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
                nxt = _draw(filter_logits(last, temperature, top_k, top_p, min_p).softmax(-1), generator)
            idx = torch.cat([idx, nxt], dim=1)
    return idx.clone()  # an ordinary tensor again, which autograd code may also use


def sample(model, tokenizer, prompt: str, chars: int, num_samples: int = 1, seed: int = 0, **filters) -> list[str]:
    """`num_samples` continuations of `prompt`, `chars` characters each, reproducible from `seed`
    (drawn from a CPU generator: the same seed gives the same text on any device)."""
    check_positive_int("num_samples", num_samples)
    check_seed("seed", seed)
    if not prompt:
        raise ValueError("prompt must contain at least one character, got ''")
    check_positive_int("chars", chars)
    footprint.check_generation(model.config, num_samples, len(prompt), chars, model_device(model),
                               flops_per_token(model.config), ("num_samples", "chars"))
    idx = torch.tensor([tokenizer.encode(prompt)]).repeat(num_samples, 1)
    out = generate(model, idx, chars, generator=torch.Generator().manual_seed(seed), **filters)
    return [tokenizer.decode(row[len(prompt):]) for row in out.cpu()]


@torch.no_grad()
def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    """The model's logits (batch, time, vocab) for token ids on any device, in eval mode, as float32 on
    the CPU: what a notebook inspects or plots."""
    ids = check_ids(model, ids, "ids")
    with eval_mode(model):
        return model(ids).float().cpu()


def next_token_logits(model, tokenizer, prompt: str) -> torch.Tensor:
    """The logits (vocab,), on the CPU, of the character after `prompt` (its last ctx characters)."""
    if not prompt:
        raise ValueError("prompt must contain at least one character, got ''")
    return logits_of(model, torch.tensor([tokenizer.encode(prompt)[-model.config.ctx :]]))[0, -1]


def next_token_probs(model, tokenizer, prompt: str, temperature: float = 1.0, **filters) -> torch.Tensor:
    """The distribution (vocab,), on the CPU, the sampler draws the character after `prompt` from:
    the model's softmax after temperature and truncation (temperature 0: all mass on the argmax)."""
    _check_filters(temperature, filters.get("top_k"), filters.get("top_p"), filters.get("min_p"))
    return filter_logits(next_token_logits(model, tokenizer, prompt), temperature, **filters).softmax(-1)


def sampling_frame(model, tokenizer, prompt: str, chars: int, samples: int, seed: int = 0, **filters) -> tuple:
    """What a sampling slider shows at one position: the model's distribution after `prompt`, the one
    the sampler draws from under `filters`, and `samples` continuations of `chars` characters. The
    prompt keeps its last ctx − chars characters, so prompt and continuation fit the KV cache;
    when the continuation alone outgrows ctx, the window slides anyway, and it keeps ctx / 2."""
    ctx = model.config.ctx
    prompt = prompt[-(ctx - chars if chars < ctx else ctx // 2) :]
    return (next_token_probs(model, tokenizer, prompt), next_token_probs(model, tokenizer, prompt, **filters),
            sample(model, tokenizer, prompt, chars, samples, seed, **filters))
