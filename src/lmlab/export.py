"""Chapter 5's model in the reader's browser: an ONNX export with a KV cache, checked against torch.

The HTML book runs the trained sampling model itself, with ONNX Runtime Web, so that a
reader without a kernel can type a prompt and move k, T, top-p, min-p and the seed. This
module writes what that page loads, after the book's notebooks have trained the model:

- `model.onnx`: the GPT as one graph with a KV-cache signature, (ids, each layer's past keys
  and values) → (logits, each layer's keys and values), so generation feeds one new position
  per step;
- `vocab.json`: the characters, in id order;
- `check.json`: the export checked against torch with onnxruntime (logits within 1e-4 on
  held-out text, greedy continuations identical), refused when it fails;
- `meta.js` and `model.js`: the above as classic scripts (the vocabulary, sizes and check; the
  weights), because a page opened from disk (`file://`) may run `<script src>` but may not
  `fetch()` a file beside it. The page reads the small one first, and then loads the weights
  and the runtime side by side.

`wrap_runtime` turns ONNX Runtime Web's WebAssembly and its loader module into classic
scripts for the same reason (the page hands both to the runtime as bytes and a blob: URL).

The book build runs both through `python -m lmlab.experiments.decoding` (which knows which
model is chapter 5's).
"""

import base64
import gzip
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from lmlab.checks import check_positive_int
from lmlab.sampling import generate

MAX_BYTES = 5_000_000  # the model file the page loads, at most
ATOL = 1e-4  # how far an ONNX logit may be from torch's
OPSET = 17  # the first with LayerNormalization; ONNX Runtime Web runs it
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # from npm
RUNTIME_SCRIPTS = ("ort.wasm.min.js", "ort-glue.js", "ort-wasm.js")  # what the page loads, in that order


class ExportError(RuntimeError):
    """The exported model does not do what the torch model does, or is too large for the page."""


class KVStep(nn.Module):
    """The GPT's forward pass for `ids` (batch, new) after `past` positions whose keys and values
    are given: `past` is layer 0's keys, its values, layer 1's keys, …, each (batch, heads,
    past, head_dim).

    Returns the logits of every new position and, in the same order as `past`, the keys and
    values of all positions, past and new, to feed back on the next step. It calls the GPT's own
    layers, and writes out only what `lmlab.model.KVCache` keeps as Python state (the cache and
    its position) as tensors a graph can take. `verify` checks it against the GPT itself. One
    input per layer, not one stacked tensor: each step would copy the whole cache once more to
    take a layer out of the stack, and again to stack the new one.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, *past):
        gpt, (B, T), P = self.model, ids.shape, past[0].shape[2]
        positions = torch.arange(T, device=ids.device) + P
        x = gpt.tok(ids) * gpt.input_mult + gpt.pos(positions)
        # a new query sees every past key and the new ones up to itself
        mask = torch.arange(T + P, device=ids.device)[None, :] <= positions[:, None]
        present = []
        for i, block in enumerate(gpt.blocks):
            attn = block.attn
            C, H = x.shape[-1], attn.heads
            q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in attn.qkv(block.ln1(x)).split(C, dim=2))
            k, v = torch.cat([past[2 * i], k], dim=2), torch.cat([past[2 * i + 1], v], dim=2)
            weights = (q @ k.transpose(-2, -1) * attn.scale).masked_fill(~mask, float("-inf")).softmax(-1)
            x = x + attn.proj((weights @ v).transpose(1, 2).reshape(B, T, C))
            x = x + block.mlp(block.ln2(x))
            present += [k, v]
        return gpt.head(gpt.ln_f(x)) * gpt.output_mult, *present


def cache_names(config, prefix: str = "past_") -> list[str]:
    """The graph's names of the cache, in `KVStep`'s order: past_key_0, past_value_0, past_key_1, …
    for its inputs (`prefix` "" for its outputs: key_0, value_0, …)."""
    return [f"{prefix}{kind}_{i}" for i in range(config.depth) for kind in ("key", "value")]


def empty_past(config, batch: int = 1, past: int = 0) -> list[torch.Tensor]:
    """The cache of `past` positions (zeros), as `KVStep` takes it."""
    return [torch.zeros(batch, config.heads, past, config.head_dim) for _ in range(2 * config.depth)]


def export_onnx(model, path) -> Path:
    """Write `model` (a `lmlab.model.GPT`) to `path` as ONNX with the `KVStep` signature: inputs
    ids (int64) and `cache_names(config)`, outputs logits and `cache_names(config, "")`; batch and
    lengths dynamic."""
    cfg, path = model.config, Path(path)
    was_training = model.training
    model.eval()
    inputs, outputs = ["ids", *cache_names(cfg)], ["logits", *cache_names(cfg, "")]
    dims = {"ids": {0: "batch", 1: "new"}, "logits": {0: "batch", 1: "new"},
            **{name: {0: "batch", 2: "past"} for name in inputs[1:]},
            **{name: {0: "batch", 2: "total"} for name in outputs[1:]}}
    # traced at past 3, new 2, batch 2, so that no length is frozen into the graph as a constant
    args = (torch.zeros(2, 2, dtype=torch.long), *empty_past(cfg, 2, 3))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(KVStep(model), args, str(path), dynamo=False, opset_version=OPSET,
                              input_names=inputs, output_names=outputs, dynamic_axes=dims)
    finally:
        model.train(was_training)
    return path


class OnnxGPT:
    """The exported model under onnxruntime, driven the way the page drives it: the prompt in one
    call, then one new position per call while the text fits the context, and the whole last
    window, recomputed, once it does not (as `lmlab.sampling.generate` does)."""

    def __init__(self, path, config):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config

    def __call__(self, ids: torch.Tensor, past=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (batch, new, vocab), and the cache after `ids` as `KVStep` returns it."""
        past = past if past is not None else empty_past(self.config, ids.shape[0])
        feeds = {"ids": ids.long().numpy(), **{n: t.numpy() for n, t in zip(cache_names(self.config), past,
                                                                              strict=True)}}
        logits, *present = (torch.from_numpy(o) for o in self.session.run(None, feeds))
        return logits, present

    def greedy(self, ids: torch.Tensor, chars: int) -> torch.Tensor:
        """`ids` (batch, time) extended by `chars` greedy tokens."""
        check_positive_int("chars", chars)
        ctx = self.config.ctx
        logits, past = self(ids)
        for step in range(chars):
            if step:
                if past[0].shape[2] == ctx:  # full: slide the window and recompute it
                    logits = self(ids[:, -ctx:])[0]
                else:
                    logits, past = self(ids[:, -1:], past)
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return ids


def held_out_windows(data, count: int, length: int) -> torch.Tensor:
    """`count` windows of `length` ids, evenly spaced over the validation text (plays the model
    never trained on)."""
    ids = data.val.ids.long()
    if len(ids) < length:
        raise ValueError(f"length must be at most the validation text's {len(ids)} characters, got {length}")
    starts = torch.linspace(0, len(ids) - length, count).long().tolist()
    return torch.stack([ids[s : s + length] for s in starts])


def verify(model, path, data, prompts: int = 8, prompt_chars: int = 16, chars: int = 200) -> dict:
    """Check the ONNX file at `path` against `model` on held-out text; raise ExportError if it fails.

    - full windows: logits of `prompts` windows of ctx characters, within ATOL of torch's;
    - the cache: a `prompt_chars` prompt, then one position per call up to ctx: the logits of
      every step within ATOL of torch's forward pass over the whole text so far;
    - greedy: `chars` greedy characters after each prompt, identical to `lmlab.sampling.generate`;
    - size: the file is at most MAX_BYTES.
    """
    cfg, onnx_model = model.config, OnnxGPT(path, model.config)
    windows = held_out_windows(data, prompts, cfg.ctx)
    model.eval()
    with torch.no_grad():
        reference = model(windows)
        full = (onnx_model(windows)[0] - reference).abs().max().item()
        logits, past = onnx_model(windows[:, :prompt_chars])
        cached = (logits - reference[:, :prompt_chars]).abs().max().item()
        for t in range(prompt_chars, cfg.ctx):
            logits, past = onnx_model(windows[:, t : t + 1], past)
            cached = max(cached, (logits[:, 0] - reference[:, t]).abs().max().item())
        torch_greedy = generate(model, windows[:, :prompt_chars], chars, temperature=0)
    onnx_greedy = onnx_model.greedy(windows[:, :prompt_chars], chars)
    same = (onnx_greedy == torch_greedy).all(dim=1)
    size = Path(path).stat().st_size
    report = {"atol": ATOL, "max_abs_diff_full": full, "max_abs_diff_cached": cached, "prompts": prompts,
              "prompt_chars": prompt_chars, "greedy_chars": chars, "greedy_identical": int(same.sum()),
              "bytes": size, "max_bytes": MAX_BYTES, "parameters": sum(p.numel() for p in model.parameters()),
              "greedy": {"prompt": data.tokenizer.decode(windows[0, :prompt_chars]),
                         "text": data.tokenizer.decode(torch_greedy[0, prompt_chars:])}}
    failures = [f"logits of full windows differ from torch's by {full:.2e} > {ATOL}"] if not full <= ATOL else []
    if not cached <= ATOL:
        failures.append(f"logits through the KV cache differ from torch's by {cached:.2e} > {ATOL}")
    if not same.all():
        failures.append(f"greedy text differs from torch's after {prompts - int(same.sum())} of {prompts} prompts")
    if size > MAX_BYTES:
        failures.append(f"the model file has {size:,} bytes, more than the page's {MAX_BYTES:,}")
    if failures:
        raise ExportError(f"the ONNX export of {path} fails its check: " + "; ".join(failures))
    return report


def script(name: str, value) -> str:
    """A classic script that hands `value` (JSON) to the page as `window.lmlabAssets[name]`."""
    return (f"(window.lmlabAssets = window.lmlabAssets || {{}})[{json.dumps(name)}] = "
            f"{json.dumps(value, ensure_ascii=True)};\n")


def _write(path: Path, data) -> None:
    """Write atomically (temp file + rename), so a page never loads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else
                                                                        {"encoding": "utf-8"})) as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a web server's user
    os.replace(tmp, path)


def export_sampler(model, data, out, sizes, runtime=None) -> dict:
    """Export `model`, check it on `data`'s held-out plays, and write model.onnx, vocab.json,
    check.json, meta.js and model.js into `out`; return what meta.js tells the page.

    `sizes` is `budget().sampling`: the page draws `shown_samples` continuations of `sample_chars`
    characters, as the notebook's panel does. `runtime` is the folder the page finds ONNX Runtime
    Web's scripts in (`wrap_runtime`'s output); when it lacks them, meta.js says so, and the page
    shows a one-line notice beside the static twin instead of a panel that cannot run.
    """
    out, tokenizer, cfg = Path(out), data.tokenizer, model.config
    if tokenizer.vocab_size != cfg.vocab_size:
        raise ValueError(f"data must have the model's {cfg.vocab_size}-character vocabulary, "
                         f"got {tokenizer.vocab_size} characters")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx")
        report = verify(model, onnx_path, data, prompt_chars=min(sizes.prompt_chars, cfg.ctx - 1))
        onnx_bytes = onnx_path.read_bytes()
    present = runtime is not None and all((Path(runtime) / f).is_file() for f in RUNTIME_SCRIPTS)
    meta = {"ctx": cfg.ctx, "heads": cfg.heads, "head_dim": cfg.head_dim, "inputs": cache_names(cfg),
            "outputs": cache_names(cfg, ""),
            "sample_chars": sizes.sample_chars, "shown_samples": sizes.shown_samples, "runtime": present,
            "check": report}
    _write(out / "model.onnx", onnx_bytes)
    _write(out / "vocab.json", json.dumps(tokenizer.chars, ensure_ascii=False))
    _write(out / "check.json", json.dumps(report, indent=1, ensure_ascii=False))
    _write(out / "meta.js", script("meta", {**meta, "vocab": tokenizer.chars}))
    _write(out / "model.js", script("model", base64.b64encode(onnx_bytes).decode("ascii")))
    return meta


def wrap_runtime(dist, out) -> list[Path]:
    """ONNX Runtime Web's files from its npm package's `dist` folder, as classic scripts in `out`:
    the runtime itself (already one), its loader module as text (the page imports it from a blob:
    URL) and its WebAssembly gzipped and in base64 (the page inflates it with DecompressionStream;
    gzip makes the script a quarter as long, and a long script is slow to parse)."""
    dist, out = Path(dist), Path(out)
    missing = [f for f in RUNTIME_FILES if not (dist / f).is_file()]
    if missing:
        raise ValueError(f"dist must hold onnxruntime-web's {', '.join(RUNTIME_FILES)}; {dist} lacks {missing}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dist / RUNTIME_FILES[0], out / RUNTIME_SCRIPTS[0])
    _write(out / RUNTIME_SCRIPTS[1], script("ortGlue", (dist / RUNTIME_FILES[1]).read_text(encoding="utf-8")))
    wasm = gzip.compress((dist / RUNTIME_FILES[2]).read_bytes(), compresslevel=9, mtime=0)
    _write(out / RUNTIME_SCRIPTS[2], script("ortWasm", base64.b64encode(wasm).decode("ascii")))
    return [out / f for f in RUNTIME_SCRIPTS]
