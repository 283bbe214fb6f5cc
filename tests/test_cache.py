import os
from pathlib import Path

import pytest
import torch

from lmlab.cache import Cache, default_root, key


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "entries")


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_json_round_trip_and_atomic_write(cache):
    obj = {"loss": [3.5, 2.25], "steps": 10, "name": "μP"}
    cache.save_json("run", obj)
    assert cache.load_json("run") == obj
    cache.save_json("run", {"loss": [1.0]})  # overwrite in place
    assert cache.load_json("run") == {"loss": [1.0]}
    assert files(cache.root) == ["run.json"]  # no temp files left behind


def test_state_round_trip(cache):
    state = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    cache.save_state("ckpt", state)
    loaded = cache.load_state("ckpt")
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert files(cache.root) == ["ckpt.pt"]


def test_failed_write_leaves_nothing_behind(cache):
    cache.save_json("run", {"ok": 1})
    with pytest.raises(TypeError):
        cache.save_json("run", {"bad": object()})  # not JSON-able: fails inside the write
    with pytest.raises(TypeError):
        cache.save_json("other", {"bad": object()})
    assert files(cache.root) == ["run.json"]
    assert cache.load_json("run") == {"ok": 1}  # the old entry survives intact


def test_missing_entries_are_none(cache):
    assert cache.load_json("nothing") is None
    assert cache.load_state("nothing") is None
    assert not cache.root.exists()  # reading creates nothing


@pytest.mark.parametrize(("suffix", "load", "garbage"), [
    (".json", "load_json", b'{"loss": [1.0, 2'),
    (".json", "load_json", b"\xff\xfe not utf-8"),
    (".pt", "load_state", b"torn checkpoint"),
    (".pt", "load_state", b""),
])
def test_corrupt_entries_are_dropped_with_a_warning(cache, suffix, load, garbage):
    cache.root.mkdir(parents=True)
    path = cache.path("entry", suffix)
    path.write_bytes(garbage)
    with pytest.warns(UserWarning, match="entry"):
        assert getattr(cache, load)("entry") is None
    assert not path.exists()
    assert getattr(cache, load)("entry") is None  # and quietly absent afterwards


def test_a_foreign_pickle_is_refused(cache, tmp_path):
    """Checkpoints load with weights_only=True, so an arbitrary object is treated as corrupt."""
    cache.root.mkdir(parents=True)
    torch.save({"x": Path("/")}, cache.path("evil", ".pt"))
    with pytest.warns(UserWarning):
        assert cache.load_state("evil") is None


def test_get_or_compute_computes_once(cache):
    calls = []

    def compute():
        calls.append(1)
        return {"value": 42}

    assert cache.get_or_compute("answer", compute) == {"value": 42}
    assert cache.get_or_compute("answer", compute) == {"value": 42}
    assert calls == [1]
    assert Cache(cache.root).get_or_compute("answer", compute) == {"value": 42}  # a new process, same folder
    assert calls == [1]


def test_get_or_compute_recomputes_a_corrupt_entry(cache):
    cache.get_or_compute("answer", lambda: [1, 2])
    cache.path("answer", ".json").write_text("[1,")
    with pytest.warns(UserWarning):
        assert cache.get_or_compute("answer", lambda: [3]) == [3]
    assert cache.load_json("answer") == [3]


def test_key_is_stable_and_order_independent():
    a = key({"width": 64, "lr": 0.003, "param": "mup"}, "fingerprint", 0)
    b = key({"param": "mup", "lr": 0.003, "width": 64}, "fingerprint", 0)
    assert a == b
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)
    # the same on every machine and in every Python process: cache names must never drift
    assert a == "92100551dcc775f7dd8ec703"
    assert key({"a": {"y": 1, "x": 2}}) == key({"a": {"x": 2, "y": 1}})


def test_key_changes_with_any_part():
    base = key({"width": 64}, "data", 0)
    assert key({"width": 65}, "data", 0) != base
    assert key({"width": 64}, "data2", 0) != base
    assert key({"width": 64}, "data", 1) != base
    assert key({"width": 64}, 0, "data") != base  # positions matter
    assert key((1, 2)) == key([1, 2])  # tuples hash like the JSON lists they become


def test_cache_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere"
    assert Cache().root == tmp_path / "elsewhere"
    assert Cache(tmp_path / "given").root == tmp_path / "given"  # an explicit root wins


def test_default_root_is_the_book_root(monkeypatch, tmp_path):
    monkeypatch.delenv("LMLAB_CACHE")
    book = tmp_path / "book"
    deep = book / "chapters" / "mup"
    deep.mkdir(parents=True)
    (book / "_toc.yml").write_text("format: jb-book\n")
    for cwd in (book, book / "chapters", deep):
        monkeypatch.chdir(cwd)
        assert default_root() == book / ".lmlab_cache"


def test_default_root_outside_a_book_is_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("LMLAB_CACHE")
    here = tmp_path / "scratch"
    here.mkdir()
    if any((p / "_toc.yml").exists() for p in (here, *here.parents)):
        pytest.skip("a _toc.yml above the temporary folder")
    monkeypatch.chdir(here)
    assert default_root() == here / ".lmlab_cache"
    assert Cache().root == here / ".lmlab_cache"
    assert os.getcwd() == str(here)


def test_source_fingerprint_follows_the_code(tmp_path):
    import importlib.util

    from lmlab.cache import source_fingerprint

    path = tmp_path / "m.py"
    path.write_text("def f():\n    return 1\n\n\ndef g():\n    return 1\n")
    spec = importlib.util.spec_from_file_location("m", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before, f_before = source_fingerprint(module), source_fingerprint(module.f)
    assert source_fingerprint(module) == before and f_before != before
    path.write_text("def f():\n    return 1\n\n\ndef g():\n    return 22\n")
    assert source_fingerprint(module) != before  # the module changed
    assert source_fingerprint(module.f) == f_before  # f did not: a function is hashed alone
