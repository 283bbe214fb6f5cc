"""What a reader's mistakes and a broken cache get: a clear error, or the result with a warning.

Each case here was once a silent failure or a lost run: a bad argument accepted and
trained on, a diverging run stored as valid, a damaged cache entry served or raised on
forever, a finished run thrown away because the cache could not be written, a panel
stuck on "running…".
"""

import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch

from lmlab import sweep
from lmlab.cache import STALE_SECONDS, TMP_PREFIX, Cache
from lmlab.corpus import PLAY_SEPARATOR, CharDataset
from lmlab.model import GPT, GPTConfig
from lmlab.runs import RunSpec, run_name, trained
from lmlab.sampling import generate, sample
from lmlab.train import TrainConfig, TrainingDiverged, train

# ---------------------------------------------------------------- bad input → one clear ValueError


BAD_CONFIGS = [
    (lambda: TrainConfig(steps=5, grad_clip=-1), "grad_clip"),  # used to train the model backwards
    (lambda: TrainConfig(steps=5, grad_clip=math.nan), "grad_clip"),  # NaN from step 1
    (lambda: TrainConfig(steps=5, grad_clip=0), "grad_clip"),
    (lambda: TrainConfig(steps=5, warmup_steps=2.5), "warmup_steps"),
    (lambda: TrainConfig(steps=5, weight_decay=math.nan), "weight_decay"),
    (lambda: TrainConfig(steps=5, betas=(1.0, 0.95)), r"betas\[0\]"),
    (lambda: TrainConfig(steps=5, betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: TrainConfig(steps=5, betas=(0.9,)), "betas"),
    (lambda: TrainConfig(steps=5, lr=math.inf), "lr"),
    (lambda: TrainConfig(steps=5, progress="yes"), "progress"),
    (lambda: GPTConfig(80, input_mult=math.nan), "input_mult"),
    (lambda: GPTConfig(80, output_mult=0.0), "output_mult"),
    (lambda: GPTConfig(80, output_mult=-1.0), "output_mult"),
    (lambda: GPTConfig(80, attn_mult=0.0), "attn_mult"),
    (lambda: GPTConfig(1), "vocab_size"),
    (lambda: CharDataset(""), "text"),
    (lambda: CharDataset("a"), "text"),
    (lambda: CharDataset("a" * 100), "distinct"),
    (lambda: CharDataset(None), "text must be a str"),
]


@pytest.mark.parametrize(("make", "name"), BAD_CONFIGS, ids=[n for _, n in BAD_CONFIGS])
def test_bad_settings_are_refused_at_construction(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_a_fractional_seed_is_refused_before_training(tiny_data, tiny_cfg, tiny_train_cfg):
    with pytest.raises(ValueError, match="seed"):  # used to fail late, inside torch
        train(GPT(tiny_cfg), tiny_data, tiny_train_cfg, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        RunSpec(tiny_cfg, tiny_train_cfg, seed=1.5)


def test_a_model_with_too_small_a_vocabulary_is_named_as_such(tiny_data, tiny_train_cfg):
    small = GPT(GPTConfig(tiny_data.vocab_size - 1, ctx=16, width=32, depth=1, heads=2))
    with pytest.raises(ValueError, match=r"vocab_size \(\d+\) is smaller than the data's vocabulary"):
        train(small, tiny_data, tiny_train_cfg)  # used to be torch's "index out of range in self"


@pytest.mark.parametrize(("idx", "kw", "name"), [
    (torch.zeros(1, 0, dtype=torch.long), {}, "idx must be a 2-D tensor"),  # empty
    (torch.zeros(3, dtype=torch.long), {}, "idx must be a 2-D tensor"),  # 1-D
    (torch.full((1, 2), 99), {}, r"ids in \[0, "),  # beyond the vocabulary
    (torch.full((1, 2), -1), {}, r"ids in \[0, "),
    (torch.zeros(1, 2), {}, "integer token ids"),
    (torch.zeros(1, 2, dtype=torch.long), {"temperature": 0, "top_k": 0}, "top_k"),  # greedy still checks
    (torch.zeros(1, 2, dtype=torch.long), {"temperature": 0, "top_p": 2.0}, "top_p"),
])
def test_generate_refuses_bad_ids_and_filters(tiny_model, idx, kw, name):
    with pytest.raises(ValueError, match=name):
        generate(tiny_model, idx, 3, **kw)


# ---------------------------------------------------------------- a diverging run: an error, and nothing cached


def test_a_diverging_run_stops_with_an_error_that_says_what_to_try(tiny_data, tiny_cfg):
    cfg = TrainConfig(steps=30, batch_size=4, lr=1e30, grad_clip=None, eval_every=10, eval_batches=1, progress=False)
    with pytest.raises(TrainingDiverged, match=r"at step \d+ \(lr 1e\+30, grad_clip None\).*grad_clip=1.0.*lr=1e\+29"):
        train(GPT(tiny_cfg), tiny_data, cfg)


def test_a_run_that_blows_up_without_nan_is_a_divergence_too(tiny_data, tiny_cfg):
    cfg = TrainConfig(steps=30, batch_size=4, lr=10.0, eval_every=10, eval_batches=1, progress=False)
    with pytest.raises(TrainingDiverged, match="lr 10"):  # the loss reaches thousands of nats, finite
        train(GPT(tiny_cfg), tiny_data, cfg)


def test_a_model_that_starts_above_the_bar_is_not_called_diverged(tiny_data, tiny_cfg):
    """A wide SP model with a large init (chapter 2's SP at width 1024 with the proxy's σ = 0.2 and
    α_out = 4, at `gpu`) starts above 10 × ln V; it trains on while it improves, and is stopped
    only when it gets worse than its start."""
    loud = replace(tiny_cfg, output_mult=300.0)  # logits hundreds of nats apart at init
    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, eval_every=3, eval_batches=1, progress=False)
    hist = train(GPT(loud), tiny_data, cfg)
    assert hist.eval_val[0] > 10 * math.log(tiny_data.vocab_size)  # the start is above the old bar
    assert hist.eval_val[-1] < hist.eval_val[0]
    with pytest.raises(TrainingDiverged):  # the control: from the same start, a blow-up still stops
        train(GPT(loud), tiny_data, replace(cfg, lr=1e30, grad_clip=None))


def test_a_diverging_run_is_never_cached(tiny_data, tiny_cfg, tmp_path):
    cache = Cache(tmp_path / "c")
    spec = RunSpec(tiny_cfg, TrainConfig(steps=20, batch_size=4, lr=1e30, grad_clip=None, eval_batches=1,
                                         progress=False))
    for _ in range(2):  # and so the second call tries again, rather than serving a NaN run
        with pytest.raises(TrainingDiverged):
            trained(spec, cache=cache, data=tiny_data)
    assert not cache.root.exists() or not any(cache.root.iterdir())


def test_a_sweep_records_a_divergence_explicitly(tmp_path):
    from lmlab.runs import dataset

    spec = RunSpec(GPTConfig(dataset().vocab_size, ctx=8, width=16, depth=1, heads=2),
                   TrainConfig(steps=6, batch_size=2, lr=1e30, grad_clip=None, eval_every=3, eval_batches=1,
                               progress=False))
    (result,) = sweep.run([spec], sweep.train_spec, Cache(tmp_path))
    (run,) = result["runs"]
    assert run["diverged_at"] >= 1 and run["final_val"] is None and run["avg_train"] is None
    stored = next(tmp_path.glob("sweep-*.json")).read_text()
    assert "NaN" not in stored and json.loads(stored) == result


def test_nan_is_refused_by_the_cache(tmp_path):
    with pytest.raises(ValueError):
        Cache(tmp_path).save_json("x", {"loss": math.nan})


# ---------------------------------------------------------------- damaged entries: dropped, recomputed, same run

DAMAGED_JSON = {"empty dict": "{}", "a list": "[]", "NaN loss": None, "no eval_val": None, "no steps": None}
DAMAGED_STATE = {"empty dict": {}, "a list": [1, 2], "wrong shapes": None, "NaN weights": None}


def same_run(a, b) -> bool:
    """Two Histories of one run: every number equal but the wall-clock times."""
    return replace(a, seconds=[]) == replace(b, seconds=[])


def _damage_json(path, kind):
    hist = json.loads(path.read_text())
    if kind == "NaN loss":
        hist["eval_val"][-1] = math.nan
        path.write_text(json.dumps(hist))  # json.dumps writes NaN when asked to
    elif kind == "no eval_val":
        del hist["eval_val"]
        path.write_text(json.dumps(hist))
    elif kind == "no steps":
        path.write_text(json.dumps({k: [] for k in hist}))
    else:
        path.write_text(DAMAGED_JSON[kind])


def _damage_state(path, kind):
    state = torch.load(path, weights_only=True)
    if kind == "wrong shapes":
        state = {k: v[..., :1] for k, v in state.items()}
    elif kind == "NaN weights":
        state = {k: v.float().fill_(math.nan) for k, v in state.items()}
    else:
        state = DAMAGED_STATE[kind]
    torch.save(state, path)


@pytest.mark.parametrize(("suffix", "kind"), [(".json", k) for k in DAMAGED_JSON] + [(".pt", k) for k in DAMAGED_STATE])
def test_a_damaged_entry_is_dropped_and_the_same_run_trained_again(tiny_data, tiny_cfg, tiny_train_cfg, tmp_path,
                                                                   suffix, kind):
    cache, spec = Cache(tmp_path / "c"), RunSpec(tiny_cfg, tiny_train_cfg)
    _, first = trained(spec, cache=cache, data=tiny_data)
    path = cache.path(run_name(spec, tiny_data), suffix)
    (_damage_json if suffix == ".json" else _damage_state)(path, kind)
    with pytest.warns(UserWarning, match="invalid cache entry"):
        model, again = trained(spec, cache=cache, data=tiny_data)
    assert same_run(again, first)  # recomputed: the same digest of the same run
    model2, third = trained(spec, cache=cache, data=tiny_data)  # and the repaired entry is served from now on
    assert third == again and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                    model2.state_dict().values(), strict=True))


def test_a_sweep_result_of_the_wrong_content_is_recomputed(tmp_path):
    from lmlab.runs import dataset

    spec = RunSpec(GPTConfig(dataset().vocab_size, ctx=8, width=16, depth=1, heads=2),
                   TrainConfig(steps=2, batch_size=2, eval_every=2, eval_batches=1, progress=False))
    cache = Cache(tmp_path)
    cache.save_json(sweep.config_key(sweep.train_spec, spec), {"x": 99})  # parses, but is no summary
    with pytest.warns(UserWarning, match="invalid cache entry"):
        (result,) = sweep.run([spec], sweep.train_spec, cache)
    assert set(result) == {"N", "N_total", "runs"}


# ---------------------------------------------------------------- an unwritable cache never loses a finished run


def test_a_cache_under_a_file_returns_the_run_with_a_warning(tiny_data, tiny_cfg, tiny_train_cfg, tmp_path,
                                                            monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    monkeypatch.setenv("LMLAB_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match=r"cannot be written.*LMLAB_CACHE"):
        model, hist = trained(RunSpec(tiny_cfg, tiny_train_cfg), data=tiny_data)
    assert hist.final_val > 0 and not model.training  # the run is the reader's all the same


@contextmanager
def unwritable(folder):
    """`folder` as a reader's read-only cache is: chmod for an ordinary user; for root, whom chmod does
    not stop, the immutable attribute (chattr +i), which stops root too."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without chattr +i: a folder cannot be made read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_cache_returns_the_run_with_a_warning(tiny_data, tiny_cfg, tiny_train_cfg, tmp_path):
    root = tmp_path / "readonly"
    root.mkdir()
    with unwritable(root), pytest.warns(UserWarning, match=r"cannot be written.*LMLAB_CACHE") as seen:
        model, hist = trained(RunSpec(tiny_cfg, tiny_train_cfg), cache=Cache(root), data=tiny_data)
    assert hist.final_val > 0 and list(root.iterdir()) == [] and str(root) in str(seen[0].message)


def test_an_invalid_entry_that_cannot_be_removed_says_why_and_the_run_comes_back(tiny_data, tiny_cfg,
                                                                                  tiny_train_cfg, tmp_path):
    root, spec = tmp_path / "theirs", RunSpec(tiny_cfg, tiny_train_cfg)
    root.mkdir()
    name = run_name(spec, tiny_data)
    (root / f"{name}.json").write_text("{}")  # an invalid entry in a folder this process cannot change
    (root / f"{name}.pt").write_bytes(b"torn")
    with unwritable(root), pytest.warns(UserWarning) as seen:
        _, hist = trained(spec, cache=Cache(root), data=tiny_data)
    messages = " ".join(str(w.message) for w in seen)
    assert hist.final_val > 0 and "cannot be removed (PermissionError" in messages and "corrupt" not in messages


# ---------------------------------------------------------------- files: permissions, stale temp files


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_cache_files_get_the_permissions_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        Cache(tmp_path).save_json("x", {"a": 1})
        Cache(tmp_path).save_state("y", {"w": torch.ones(2)})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"x.json": mode, "y.pt": mode}


def test_temp_files_of_killed_writes_are_swept(tmp_path):
    stale, fresh = tmp_path / f"{TMP_PREFIX}run.pt.abc.tmp", tmp_path / f"{TMP_PREFIX}run.pt.def.tmp"
    for f in (stale, fresh):
        f.write_bytes(b"half a checkpoint")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    Cache(tmp_path).save_json("x", {"a": 1})
    assert not stale.exists() and fresh.exists()  # a fresh one may be another process's write in progress


def _train_in_a_process(args):
    root, tests = args
    sys.path.insert(0, tests)
    from conftest import make_docs

    data = CharDataset(PLAY_SEPARATOR.join(make_docs()), val_fraction=0.2)
    spec = RunSpec(GPTConfig(data.vocab_size, ctx=16, width=32, depth=1, heads=2),
                   TrainConfig(steps=6, batch_size=4, eval_every=3, eval_batches=1, progress=False), seed=4)
    return trained(spec, cache=Cache(root), data=data)[1].eval_val


def test_concurrent_identical_runs_leave_one_entry_and_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_train_in_a_process, [(str(tmp_path), os.path.dirname(__file__))] * 3)
    assert results[0] == results[1] == results[2]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".pt"]


# ---------------------------------------------------------------- the training loop after a resume


def test_a_resumed_run_is_the_run_trained_straight_through(tiny_data, tiny_cfg):
    from lmlab.train import train_until

    cfg = TrainConfig(steps=9, batch_size=4, eval_every=3, eval_batches=1, progress=False)
    model_cfg = replace(tiny_cfg, dropout=0.2)
    straight = train(GPT(model_cfg, 1), tiny_data, cfg, seed=2)
    half = train_until(GPT(model_cfg, 1), tiny_data, cfg, seed=2, stop=5)
    resumed = train_until(GPT(model_cfg, 1), tiny_data, cfg, seed=2, start=half).history
    assert resumed.train_loss == straight.train_loss and resumed.eval_val == straight.eval_val


def test_sample_reproduces_across_generators_of_the_same_seed(tiny_model, tiny_data):
    a = sample(tiny_model, tiny_data.tokenizer, "To", 12, num_samples=2, seed=3)
    assert a == sample(tiny_model, tiny_data.tokenizer, "To", 12, num_samples=2, seed=3)
