"""The GPU path, checked on a machine without one: precision by hardware, and no mixing of devices.

The precision choice is a pure function of a described device, so every GPU a reader
may have is asked about here. Device mixing is caught by `fake_accelerator`: models
live on a stand-in device, and any operation that meets a CPU tensor raises, as CUDA
does. The lmlab functions that take a model are called with CPU inputs and CPU
generators; every notebook is executed at `smoke` budget with its models on the
stand-in (marked `notebooks`: `make devices` runs them).
"""

import importlib
import json
import math
import os
from pathlib import Path

import fake_accelerator
import pytest
import torch

from lmlab.device import Precision, precision, precision_for
from lmlab.model import GPT
from lmlab.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

# ---------------------------------------------------------------- precision by hardware


@pytest.mark.parametrize(("gpu", "capability", "dtype", "scaler"), [
    ("T4 (Colab's free GPU)", (7, 5), torch.float16, True),
    ("V100", (7, 0), torch.float16, True),
    ("A100", (8, 0), torch.bfloat16, False),
    ("L4", (8, 9), torch.bfloat16, False),
    ("H100", (9, 0), torch.bfloat16, False),
])
def test_cuda_precision_follows_native_bf16_support(gpu, capability, dtype, scaler):
    p = precision_for("cuda", capability)
    assert (p.autocast_dtype, p.grad_scaler, p.fused_adamw) == (dtype, scaler, True), gpu


@pytest.mark.parametrize("device_type", ["cpu", "mps"])
def test_cpu_and_mps_train_in_float32_without_fused_adamw(device_type):
    p = precision_for(device_type)
    assert (p.autocast_dtype, p.grad_scaler, p.fused_adamw, p.name) == (None, False, False, "fp32")
    assert precision(torch.device("cpu")) == precision_for("cpu")


def test_cuda_needs_its_capability():
    with pytest.raises(ValueError, match="capability"):
        precision_for("cuda")


def test_a_disabled_scaler_passes_everything_through(tiny_model, tiny_data):
    scaler = precision_for("cpu").scaler()
    loss = tiny_model(*tiny_data.batch("train", 2, 16))[1]
    assert scaler.scale(loss) is loss and not scaler.is_enabled()


@pytest.fixture
def precision_of(monkeypatch):
    """Make the training loop believe it runs in a given precision (on the CPU, which has autocast
    for both half types and a GradScaler), to exercise the T4's and the A100's code paths."""
    train_module = importlib.import_module("lmlab.train")  # the attribute lmlab.train is the function

    def use(p: Precision):
        monkeypatch.setattr(train_module, "precision", lambda dev: p)

    return use


def test_fp16_with_a_scaler_and_bf16_train_like_fp32(tiny_data, tiny_cfg, precision_of):
    """The T4's path (fp16 autocast + GradScaler, clipping the unscaled gradient) and the A100's (bf16)
    reach the loss fp32 reaches, within what the chapters allow for seed noise (0.02–0.05 nats)."""
    cfg = TrainConfig(steps=40, batch_size=8, lr=3e-3, eval_every=20, eval_batches=2, progress=False)
    finals = {}
    for name, p in {"fp32": precision_for("cpu"),
                    "fp16 + scaler": Precision("cpu", torch.float16, grad_scaler=True, fused_adamw=False),
                    "bf16": Precision("cpu", torch.bfloat16, grad_scaler=False, fused_adamw=False)}.items():
        precision_of(p)
        hist = train(GPT(tiny_cfg, seed=0), tiny_data, cfg)
        assert all(math.isfinite(v) for v in hist.train_loss), name
        finals[name] = hist.final_val
    assert finals["fp32"] < 0.8 * math.log(tiny_data.vocab_size)  # it learned something
    assert abs(finals["fp16 + scaler"] - finals["fp32"]) < 0.05, finals
    assert abs(finals["bf16"] - finals["fp32"]) < 0.05, finals


def test_fused_adamw_is_asked_for_where_the_precision_says(tiny_model, tiny_data, tiny_train_cfg, precision_of,
                                                          monkeypatch):
    train_module = importlib.import_module("lmlab.train")  # the attribute lmlab.train is the function

    asked = []
    real = train_module.mup.optimizer
    monkeypatch.setattr(train_module.mup, "optimizer", lambda *a, fused=None, **k: asked.append(fused) or real(*a, **k))
    train(tiny_model, tiny_data, tiny_train_cfg)
    assert asked == [False]  # the CPU: no fused kernel


# ---------------------------------------------------------------- the stand-in accelerator catches mixing


def test_the_stand_in_catches_what_cuda_refuses(tiny_cfg):
    """Controls: the mistakes the Colab path would make fail here, as on a GPU."""
    with fake_accelerator.accelerator() as dev:
        model = GPT(tiny_cfg).to(dev)
        with pytest.raises(fake_accelerator.DeviceMismatch, match="same device"):
            model(torch.zeros(1, 4, dtype=torch.long))  # CPU ids into a model on the accelerator
        probs = torch.full((1, tiny_cfg.vocab_size), 1.0 / tiny_cfg.vocab_size).to(dev)
        with pytest.raises(fake_accelerator.DeviceMismatch, match="generator"):
            torch.multinomial(probs, 1, generator=torch.Generator())  # a CPU generator drawing on the accelerator
        assert torch.multinomial(probs, 1, generator=torch.Generator(device=dev).manual_seed(0)).device == dev
        made_there = torch.tensor([[1, 2]], device=dev)  # made on the accelerator: may meet the model
        assert made_there.device == dev and model(made_there).shape == (1, 2, tiny_cfg.vocab_size)
        with pytest.raises(fake_accelerator.DeviceMismatch, match="generator"):
            torch.randint(3, (2,), generator=torch.Generator(device=dev))  # an accelerator generator for a CPU draw
        with pytest.raises(TypeError, match="numpy"):
            probs.numpy()
        logits = model(torch.zeros(1, 4, dtype=torch.long).to(dev))
        assert logits.device == dev and logits.cpu().device.type == "cpu" and logits[0, 0].tolist()  # values are real


def test_every_lmlab_function_that_takes_a_model_accepts_cpu_inputs(tiny_cfg, tiny_data, tmp_path):
    from lmlab.cache import Cache
    from lmlab.experiments import attention, coord_check, randomness
    from lmlab.experiments.dropout import mc_uncertainty
    from lmlab.experiments.maximisation import beam_search, repetition_feedback
    from lmlab.experiments.metrics import decoding_table, sample_nll
    from lmlab.group_train import train_group, train_group_budgets
    from lmlab.history import History
    from lmlab.likelihood import surprise_and_entropy
    from lmlab.runs import RunSpec, trained
    from lmlab.sampling import generate, logits_of, next_token_probs, sample, sampling_frame
    from lmlab.train import evaluate

    tok, ids = tiny_data.tokenizer, torch.tensor([tiny_data.tokenizer.encode("To be, or not")])
    cfg = TrainConfig(steps=4, batch_size=4, eval_every=2, eval_batches=1, progress=False)
    with fake_accelerator.accelerator() as dev:
        model, _ = trained(RunSpec(tiny_cfg.__class__(**{**tiny_cfg.to_dict(), "dropout": 0.1}), cfg),
                           cache=Cache(tmp_path), data=tiny_data)
        assert next(model.parameters()).device == dev  # trained() hands back the model on lmlab.device()
        group = [GPT(tiny_cfg, seed) for seed in (1, 2)]
        assert all(isinstance(h, History) for h in train_group(group, tiny_data, [cfg, cfg], [1, 2]))
        assert next(group[0].parameters()).device == dev  # a group leaves its models where train() does
        wsd = TrainConfig(steps=4, batch_size=4, eval_every=2, eval_batches=1, schedule="wsd", warmup_steps=1,
                          progress=False)
        family = train_group_budgets([GPT(tiny_cfg, 3)], tiny_data, [wsd], [3], [2, 4])
        assert sorted(family[0]) == [2, 4] and all(isinstance(h, History) for h, _ in family[0].values())
        generate(model, ids, 5, generator=torch.Generator().manual_seed(0), top_k=3)
        generate(model, ids, 5, temperature=0)
        generate(model, ids, 3, dropout=True)
        sample(model, tok, "To be", 5, num_samples=2, top_p=0.9)
        next_token_probs(model, tok, "To be", top_k=2)
        logits_of(model, ids)
        sampling_frame(model, tok, "To be", 5, 2, top_k=3)
        sample_nll(model, ids, 2)
        decoding_table(model, tok, ids.repeat(2, 1), 4, {"greedy": {"temperature": 0}, "k": {"top_k": 3}}, window=8)
        surprise_and_entropy(model, ids, 2)
        attention.attention_entropy(model, ids)
        evaluate(model, tiny_data, 2, 1)
        randomness.rerun_difference(model, ids, training=True)
        randomness.argmax_agreement(model, ids)
        randomness.heldout_logits(model, tiny_data.val.ids, 2, 1)
        mc_uncertainty(model, tiny_data.val.ids, passes=2, batches=1, batch_size=2)
        coord_check.coord_check(tiny_data, "mup", [16, 32], steps=2, seeds=(0,), batch_size=2, ctx=16, depth=1,
                                heads=2)
        beam_search(model, ids, 3, width=2)
        repetition_feedback(model, ids[:, :4], 2, ids[:, 4:8])


# ---------------------------------------------------------------- every notebook, with its models on the stand-in

STARTUP = """import sys
sys.path.insert(0, {tests!r})
import fake_accelerator
fake_accelerator.install()
"""


def execute_under_the_stand_in(path: Path, tmp_path: Path, monkeypatch) -> str:
    """Execute a notebook at `smoke` budget in a kernel whose startup installs the stand-in
    accelerator; returns what it printed."""
    import nbformat
    from nbclient import NotebookClient

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-fake-accelerator.py").write_text(STARTUP.format(tests=str(Path(__file__).parent)))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("LMLAB_BUDGET", "smoke")
    # `make devices` points this at the run cache nbval has just filled with the same smoke runs, so the
    # notebooks' own cells run on the stand-in without training again; training itself on the stand-in
    # (alone, in a group, a WSD family) is checked above
    monkeypatch.setenv("LMLAB_CACHE", os.environ.get("LMLAB_DEVICES_CACHE") or str(tmp_path / "cache"))
    monkeypatch.delenv("LMLAB_BOOK_BUILD", raising=False)
    nb = nbformat.reads(path.read_text(), as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_the_notebook_keeps_every_tensor_on_its_models_device(path, tmp_path, monkeypatch):
    """A cell that hands a model a tensor made on the CPU (or a CPU generator) fails here as on CUDA."""
    printed = execute_under_the_stand_in(path, tmp_path, monkeypatch)
    assert "on meta" in printed, "the notebook should report the stand-in device it ran on"


def test_the_notebook_check_sees_a_cell_that_mixes_devices(tmp_path, monkeypatch):
    """Control: a notebook cell that feeds the model CPU ids fails under the stand-in."""
    from nbclient.exceptions import CellExecutionError

    source = ("import torch\nimport lmlab\nfrom lmlab import GPT, GPTConfig\n"
              "model = GPT(GPTConfig(10, ctx=8, width=16, depth=1, heads=2)).to(lmlab.device())\n"
              "print(f'on {lmlab.device()}')\nmodel(torch.tensor([[1, 2, 3]]))")
    cell = {"cell_type": "code", "id": "mixing", "metadata": {}, "outputs": [], "execution_count": None,
            "source": source}
    nb = {"cells": [cell],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "mixing.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(CellExecutionError, match="same device"):
        execute_under_the_stand_in(path, tmp_path, monkeypatch)
