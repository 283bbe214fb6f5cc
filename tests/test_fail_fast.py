"""Issue 28, cases 7 and 8: values that used to end in NaN, in torch internals or in a run that
never ends now give a clear answer at once.

7. A tiny positive temperature (1e-39, below float32's smallest normal number, down to the
   smallest double) is greedy decoding in the limit, not NaN: the logits are divided after
   subtracting their maximum.
8. Sizes that cannot fit this machine (memory, or a run that could not finish within a day
   at any speed this machine has), seeds beyond 64 bits and a learning rate no float holds
   are refused within a second, with a ValueError that names the setting and its value.
   Beyond the issue's list: a vocabulary, a generation (rows or tokens) and a dropout rate or
   temperature of the same kind. The machine is pinned (16 GiB available, 2 CPU threads), so
   the answers do not depend on the machine the tests run on; every budget's runs are checked
   to pass on it, and the operation counts behind the time bounds against what torch dispatches.
"""

import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lmlab import footprint
from lmlab.budget import BUDGETS
from lmlab.corpus import CharDataset, CharTokenizer
from lmlab.model import GPT, GPTConfig, flops_per_token, param_count
from lmlab.sampling import filter_logits, generate, next_token_logits, next_token_probs, sample
from lmlab.train import TrainConfig, train

TINY = (1e-39, 1e-45, 5e-324)  # float32 subnormal, float32's smallest, the smallest double (0 in float32)
TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20
GIB = 2**30


@pytest.fixture(autouse=True)
def _pinned_machine(monkeypatch):
    """A machine with 16 GiB free and 2 CPU threads, whatever the test runs on."""
    monkeypatch.setattr(footprint, "available_memory", lambda dev="cpu": (16 * GIB, "available (pinned)"))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)


@contextmanager
def within(seconds: float, limit: float = 20.0):
    """The block must end within `seconds`; a block still running after `limit` seconds is stopped
    (the old code trains on, or allocates for a minute), so the test fails instead of hanging."""

    def stop(*_):
        raise TimeoutError(f"still running after {limit} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - start < seconds, f"took {time.perf_counter() - start:.1f} s"


def refused(setting: str, value, call, *, machine: bool = True) -> str:
    """`call()` raises a ValueError within a second whose message names `setting` with `value`
    (and what this machine holds, where the limit is the machine's)."""
    with within(1.0), pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert setting in message, message
    if value is not None:
        assert f"{setting}={value}" in message, message
    if machine:
        assert "this machine" in message, message
    return message


@pytest.fixture(scope="module")
def data():
    return CharDataset(TEXT, val_fraction=0.2)


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer(TEXT)


def small(vocab: int, **sizes) -> GPTConfig:
    return GPTConfig(vocab, **{"ctx": 16, "width": 16, "depth": 1, "heads": 2, **sizes})


# ---------------------------------------------------------------- case 7: a tiny temperature


@pytest.mark.parametrize("temperature", TINY)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_tiny_temperature_puts_all_the_mass_on_the_argmax(temperature, dtype):
    logits = torch.tensor([[1.5, -0.3, 2.25, 0.7], [40.0, 90.0, -20.0, 89.9]], dtype=dtype)
    probs = filter_logits(logits, temperature).softmax(-1)
    assert torch.isfinite(probs).all(), probs
    assert torch.allclose(probs.sum(-1), torch.ones(2, dtype=dtype))
    assert probs.tolist() == [[0, 0, 1, 0], [0, 1, 0, 0]]
    for filters in ({"top_k": 2}, {"top_p": 0.5}, {"min_p": 0.1}, {"top_k": 3, "top_p": 0.9, "min_p": 0.05}):
        assert filter_logits(logits, temperature, **filters).softmax(-1).tolist() == probs.tolist(), filters


@pytest.mark.parametrize("temperature", TINY)
def test_tied_maxima_share_the_mass_where_temperature_zero_takes_the_first(temperature):
    logits = torch.tensor([1.0, 3.0, 3.0, 0.0])
    assert filter_logits(logits, temperature).softmax(-1).tolist() == [0, 0.5, 0.5, 0]
    assert filter_logits(logits, 0).softmax(-1).tolist() == [0, 1, 0, 0]


def test_the_same_distribution_at_ordinary_temperatures():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0)) * 5
    assert torch.equal(filter_logits(logits, 1.0), logits)
    for t in (0.05, 0.5, 2.0):
        assert torch.allclose(filter_logits(logits, t).softmax(-1), (logits.double() / t).softmax(-1).float(),
                              atol=1e-6)


@pytest.mark.parametrize("temperature", TINY)
def test_next_token_probs_at_a_tiny_temperature_is_the_argmax(temperature, tokenizer):
    model = GPT(small(tokenizer.vocab_size, output_mult=1000.0), seed=1)  # logits of a trained model's size
    prompt = "To be, or not"
    probs = next_token_probs(model, tokenizer, prompt, temperature=temperature)
    assert torch.isfinite(probs).all() and abs(probs.sum().item() - 1) < 1e-6
    assert probs.argmax() == next_token_logits(model, tokenizer, prompt).argmax()
    assert probs.max() == 1


@pytest.mark.parametrize("temperature", TINY)
def test_generate_and_sample_at_a_tiny_temperature_decode_greedily(temperature, tokenizer):
    model = GPT(small(tokenizer.vocab_size, output_mult=1000.0), seed=2)
    idx = torch.tensor([tokenizer.encode("Whether 'tis")] * 2)
    greedy = generate(model, idx, 12, temperature=0)
    tiny = generate(model, idx, 12, temperature=temperature, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tiny, greedy)
    assert sample(model, tokenizer, "Whether 'tis", 12, 2, temperature=temperature) == \
        sample(model, tokenizer, "Whether 'tis", 12, 2, temperature=0)


# ---------------------------------------------------------------- case 8: sizes that cannot fit


@pytest.mark.parametrize("setting, value", [("depth", 10**6), ("width", 10**6), ("ctx", 10**9)])
def test_a_model_that_cannot_fit_is_refused_before_it_is_built(setting, value, data):
    message = refused(setting, value, lambda: GPT(GPTConfig(data.vocab_size, **{setting: value})))
    assert "this machine has 17.2 GB available" in message, message  # what the (pinned) 16 GiB machine holds


def test_a_batch_that_cannot_fit_is_refused_before_training(data):
    model = GPT(small(data.vocab_size))
    message = refused("batch_size", 10**7, lambda: train(model, data, TrainConfig(steps=2, batch_size=10**7)))
    assert "at most batch_size=" in message


@pytest.mark.parametrize("sizes", [{}, {"width": 128, "depth": 2, "ctx": 64}])
def test_evaluation_that_would_take_days_is_refused(sizes, data):
    model = GPT(small(data.vocab_size, **sizes))
    refused("eval_batches", 10**9, lambda: train(model, data, TrainConfig(steps=2, eval_batches=10**9)))


@pytest.mark.parametrize("sizes", [{}, {"width": 128, "depth": 2, "ctx": 64}])
def test_training_that_would_take_years_is_refused(sizes, data):
    model = GPT(small(data.vocab_size, **sizes))
    refused("steps", 10**12, lambda: train(model, data, TrainConfig(steps=10**12)))


def test_a_vocabulary_that_cannot_fit_is_refused():
    refused("vocab_size", 10**9, lambda: GPT(GPTConfig(10**9)))


def test_generation_that_cannot_fit_or_end_is_refused(tokenizer):
    model = GPT(small(tokenizer.vocab_size))
    one = torch.tensor([tokenizer.encode("To")])
    refused("max_new_tokens", 10**9, lambda: generate(model, one, 10**9))
    refused("num_samples", 10**7, lambda: sample(model, tokenizer, "To", 5, num_samples=10**7))
    refused("chars", 10**9, lambda: sample(model, tokenizer, "To", 10**9))


def test_a_seed_beyond_64_bits_is_refused(data, tokenizer):
    cfg = small(data.vocab_size)
    refused("seed", None, lambda: GPT(cfg, seed=2**70), machine=False)
    model = GPT(cfg)
    refused("seed", None, lambda: train(model, data, TrainConfig(steps=1), seed=2**70), machine=False)
    refused("seed", None, lambda: sample(model, tokenizer, "To", 4, seed=2**70), machine=False)
    GPT(cfg, seed=2**63 - 1)  # the largest seed torch takes as a signed 64-bit integer


def test_a_number_no_float_holds_is_refused(tokenizer):
    message = refused("lr", None, lambda: TrainConfig(steps=1, lr=10**400), machine=False)
    assert "401 digits" in message
    refused("dropout", None, lambda: GPTConfig(5, dropout=10**400), machine=False)
    model = GPT(small(tokenizer.vocab_size))
    refused("temperature", None, lambda: sample(model, tokenizer, "To", 4, temperature=10**400), machine=False)


# ---------------------------------------------------------------- nothing legal is refused


class OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("depth", [1, 3])
def test_the_time_bound_counts_no_more_operations_than_a_step_dispatches(depth):
    """The operation counts behind the time bounds are lower bounds: a training step as CUDA runs
    it (fused AdamW, autocast), an evaluation forward and a generated token dispatch at least
    that many."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from plan_cost import ops_per_step

    step, forward, token = footprint.STEP_OPS, footprint.FORWARD_OPS, footprint.TOKEN_OPS
    for heads, dropout in ((1, False), (4, True)):
        assert ops_per_step(depth, heads, dropout) >= step[0] + step[1] * depth
        assert ops_per_step(depth, heads, dropout, "forward") >= forward[0] + forward[1] * depth
    model = GPT(GPTConfig(5, ctx=16, width=8, depth=depth, heads=2)).eval()
    counts = []
    for n in (4, 8):
        with OpCounter() as counter:
            generate(model, torch.zeros(1, 2, dtype=torch.long), n, temperature=0)
        counts.append(counter.n)
    assert (counts[1] - counts[0]) / 4 >= token[0] + token[1] * depth  # per generated token


def every_budget_run():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from chapters_plan import CHAPTERS

    for name, sizes in BUDGETS.items():
        for chapter, plan in CHAPTERS.items():
            for work in plan(sizes):
                for spec in work.specs:
                    for run in spec.runs():
                        yield name, chapter, run


@pytest.mark.parametrize("threads", [1, 2])
def test_every_budgets_runs_fit_the_pinned_machine(threads, monkeypatch):
    """Every run of every chapter at smoke, book and gpu budget passes the checks on a 2-core
    CPU with 16 GiB (one thread, as a sweep's worker runs), and the gpu budget on a T4's 15 GB."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    runs = list(every_budget_run())
    assert {name for name, _, _ in runs} == set(BUDGETS) and len(runs) > 50
    t4 = {"cpu": 16 * GIB, "cuda": 15e9}
    monkeypatch.setattr(footprint, "available_memory", lambda dev="cpu": (t4[torch.device(dev).type], "free"))
    for name, chapter, run in runs:
        m, params, fpt = run.model, param_count(run.model, non_embedding=False), flops_per_token(run.model)
        try:
            footprint.check_model(m, param_count, "cpu")
            footprint.check_run(m, params, run.train, "cpu", fpt)
            if name == "gpu":
                footprint.check_run(m, params, run.train, "cuda", fpt, autocast=True)
        except ValueError as e:
            pytest.fail(f"{chapter} at {name} budget refused: {e}")
