"""lmlab.export: the ONNX graph with a KV cache computes what the GPT computes, the check refuses
an export that does not (or is too large), and the files the page loads are complete."""

import base64
import gzip
import json
from types import SimpleNamespace

import pytest
import torch

from lmlab import export
from lmlab.experiments import decoding
from lmlab.model import GPT, GPTConfig
from lmlab.sampling import generate

SIZES = SimpleNamespace(prompt_chars=6, sample_chars=20, shown_samples=2)


def model_of(data, seed=0, **kw) -> GPT:
    cfg = GPTConfig(**{"vocab_size": data.vocab_size, "ctx": 16, "width": 32, "depth": 2, "heads": 2,
                       "init_std": 0.2, **kw})
    return GPT(cfg, seed=seed).eval()


def asset(path, name):
    """The value a script written by `export.script` hands to the page."""
    text = path.read_text(encoding="utf-8")
    prefix = f'(window.lmlabAssets = window.lmlabAssets || {{}})["{name}"] = '
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix) : -2])


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_kv_step_is_the_gpt_forward_pass_with_and_without_a_cache(tiny_data, param):
    model = model_of(tiny_data, param=param, base_width=16, output_mult=2.0, input_mult=1.5)
    step = export.KVStep(model)
    ids = torch.randint(tiny_data.vocab_size, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(ids)
        logits, *present = step(ids, *export.empty_past(model.config, 3))
        assert torch.allclose(logits, reference, atol=1e-5)
        assert len(present) == 4 and all(t.shape == (3, 2, 16, 16) for t in present)  # 2 layers × keys, values
        logits, *present = step(ids[:, :5], *export.empty_past(model.config, 3))
        for t in range(5, 16):  # one position per call, as the page decodes
            logits, *present = step(ids[:, t : t + 1], *present)
            assert torch.allclose(logits[:, 0], reference[:, t], atol=1e-5), t
        chunk = step(ids[:, 10:], *step(ids[:, :10], *export.empty_past(model.config, 3))[1:])[0]
        assert torch.allclose(chunk, reference[:, 10:], atol=1e-5)  # several new positions after a past


def test_export_passes_its_check(tiny_data, tmp_path):
    model = model_of(tiny_data)
    path = export.export_onnx(model, tmp_path / "m.onnx")
    report = export.verify(model, path, tiny_data, prompts=4, prompt_chars=6, chars=40)  # 40 > ctx: it slides
    assert report["max_abs_diff_full"] <= export.ATOL and report["max_abs_diff_cached"] <= export.ATOL
    assert report["greedy_identical"] == report["prompts"] == 4
    assert report["bytes"] == path.stat().st_size <= export.MAX_BYTES
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert len(report["greedy"]["prompt"]) == 6 and len(report["greedy"]["text"]) == 40


def test_onnx_greedy_is_lmlab_greedy_within_and_past_the_context(tiny_data, tmp_path):
    model = model_of(tiny_data)
    onnx_model = export.OnnxGPT(export.export_onnx(model, tmp_path / "m.onnx"), model.config)
    ids = export.held_out_windows(tiny_data, 3, 5)
    for chars in (11, 3 * model.config.ctx):  # the prompt and the text fit the cache; then they do not
        assert torch.equal(onnx_model.greedy(ids, chars), generate(model, ids, chars, temperature=0))


def test_the_check_fails_for_a_different_model(tiny_data, tmp_path):
    """A negative control: the check must be able to fail for the reason it names."""
    path = export.export_onnx(model_of(tiny_data, seed=0), tmp_path / "m.onnx")
    with pytest.raises(export.ExportError, match="logits of full windows differ"):
        export.verify(model_of(tiny_data, seed=1), path, tiny_data, prompts=2, prompt_chars=6, chars=10)


def test_the_check_refuses_a_file_too_large_for_the_page(tiny_data, tmp_path, monkeypatch):
    model = model_of(tiny_data)
    path = export.export_onnx(model, tmp_path / "m.onnx")
    monkeypatch.setattr(export, "MAX_BYTES", 1000)
    with pytest.raises(export.ExportError, match="more than the page's 1,000"):
        export.verify(model, path, tiny_data, prompts=2, prompt_chars=6, chars=10)


def test_export_keeps_the_model_mode(tiny_data, tmp_path):
    model = model_of(tiny_data).train()
    export.export_onnx(model, tmp_path / "m.onnx")
    assert model.training


def test_export_sampler_writes_what_the_page_loads(tiny_data, tmp_path):
    model = model_of(tiny_data)
    runtime = tmp_path / "ort"
    runtime.mkdir()
    meta = export.export_sampler(model, tiny_data, tmp_path / "sampler", SIZES, runtime)
    assert meta["runtime"] is False  # no runtime scripts there: the page shows its notice
    out = tmp_path / "sampler"
    assert sorted(p.name for p in out.iterdir()) == ["check.json", "meta.js", "model.js", "model.onnx", "vocab.json"]
    assert json.loads((out / "vocab.json").read_text(encoding="utf-8")) == tiny_data.tokenizer.chars
    assert json.loads((out / "check.json").read_text(encoding="utf-8")) == meta["check"]
    assert base64.b64decode(asset(out / "model.js", "model")) == (out / "model.onnx").read_bytes()
    page = asset(out / "meta.js", "meta")
    assert page["vocab"] == tiny_data.tokenizer.chars
    assert (page["ctx"], page["heads"], page["head_dim"]) == (16, 2, 16)
    assert page["inputs"] == ["past_key_0", "past_value_0", "past_key_1", "past_value_1"]
    assert page["outputs"] == ["key_0", "value_0", "key_1", "value_1"]
    assert (page["sample_chars"], page["shown_samples"], page["runtime"]) == (20, 2, False)
    for name in export.RUNTIME_SCRIPTS:
        (runtime / name).write_text("//", encoding="utf-8")
    assert export.export_sampler(model, tiny_data, out, SIZES, runtime)["runtime"] is True
    assert page == {**meta, "vocab": tiny_data.tokenizer.chars}
    assert (out / "model.js").stat().st_mode & 0o777 == 0o644


def test_export_sampler_bad_data(tiny_data, tmp_path):
    model = GPT(GPTConfig(vocab_size=tiny_data.vocab_size + 1, ctx=16, width=16, depth=1, heads=2))
    with pytest.raises(ValueError, match="data must have the model's"):
        export.export_sampler(model, tiny_data, tmp_path, SIZES)


def test_wrap_runtime(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "ort.wasm.min.js").write_text("var ort = {};", encoding="utf-8")
    (dist / "ort-wasm-simd-threaded.mjs").write_text("export default async function f() {}", encoding="utf-8")
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm" + bytes(range(256)) * 10)
    decoding.main(["runtime", "--dist", str(dist), "--out", str(tmp_path / "ort")])  # the build's command
    out = tmp_path / "ort"
    assert (out / "ort.wasm.min.js").read_text(encoding="utf-8") == "var ort = {};"
    assert asset(out / "ort-glue.js", "ortGlue") == "export default async function f() {}"
    wasm = gzip.decompress(base64.b64decode(asset(out / "ort-wasm.js", "ortWasm")))
    assert wasm == (dist / "ort-wasm-simd-threaded.wasm").read_bytes()
    (dist / "ort.wasm.min.js").unlink()
    with pytest.raises(ValueError, match="dist must hold onnxruntime-web's"):
        export.wrap_runtime(dist, out)


def test_held_out_windows_bad_length(tiny_data):
    with pytest.raises(ValueError, match="length"):
        export.held_out_windows(tiny_data, 2, len(tiny_data.val.ids) + 1)
