"""The run cache as a careless reader meets it (issue 28, cases 1–4): a full disk, a folder shared
with other programs' files, a relative or `~` cache path, and one run spelled two ways.

Each test fails on the cache before the fix: the full disk raised torch's "unexpected pos" and lost
the run, the sweep deleted every `.*.tmp` in the folder, `LMLAB_CACHE=relcache` followed the working
folder and `~/x` made a folder named `~`, and `dropout=0` and `0.0` were two entries.
"""

import errno
import io
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import lmlab.runs
from lmlab import sweep
from lmlab.cache import STALE_SECONDS, TMP_PREFIX, Cache, default_root
from lmlab.model import GPT, GPTConfig
from lmlab.runs import RunSpec, run_name, trained
from lmlab.train import train

# ---------------------------------------------------------------- 1. a full disk keeps the finished run


class NearlyFull(io.RawIOBase):
    """A file on a disk with `free` bytes left, as the kernel writes it: a short write while space
    lasts, then ENOSPC. Wrapped in a BufferedWriter, as `os.fdopen` wraps a file."""

    def __init__(self, fd: int, free: int):
        self.fd, self.free = fd, free

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.free <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(self.fd, bytes(data)[: self.free])
        self.free -= n
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


@pytest.fixture
def disk(monkeypatch):
    """`disk(free)`: from then on, every file opened for writing by descriptor (how the cache writes
    its temp files) lands on a disk with `free` bytes left."""
    real = os.fdopen

    def fill(free: int) -> None:
        def fdopen(fd, mode="r", *args, **kwargs):
            if "w" in mode:
                return io.BufferedWriter(NearlyFull(fd, free))
            return real(fd, mode, *args, **kwargs)

        monkeypatch.setattr(os, "fdopen", fdopen)

    return fill


def where_torch_save_fails_as_reported(state: dict, folder: Path) -> int:
    """Free bytes at which `torch.save(state)` into a file on a filling disk raises what the issue
    reports. Where the disk fills decides what torch raises: an OSError when its own write fails
    (which the cache always caught), or, when the lost bytes sat in the file's buffer until the
    zip's end was written, "[enforce fail at inline_container.cc:672] . unexpected pos …"."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    size = len(buffer.getvalue())
    for free in range(0, size, 256):
        fd = os.open(folder / f"try-{free}", os.O_WRONLY | os.O_CREAT)
        try:
            with io.BufferedWriter(NearlyFull(fd, free)) as f:
                torch.save(state, f)
        except RuntimeError as e:
            if "unexpected pos" in str(e):
                return free
        except OSError:
            pass
    pytest.fail(f"torch.save of a {size}-byte checkpoint never raised 'unexpected pos' on a filling disk")


@pytest.mark.parametrize("fills", ["where torch raises RuntimeError", "before the first byte"])
def test_a_full_disk_returns_the_finished_run_with_a_warning(tiny_data, tiny_cfg, tiny_train_cfg, tmp_path, disk,
                                                             fills):
    root = tmp_path / "cache"
    disk(where_torch_save_fails_as_reported(GPT(tiny_cfg).state_dict(), tmp_path) if fills.startswith("where") else 0)
    with pytest.warns(UserWarning, match="disk is full") as seen:
        model, hist = trained(RunSpec(tiny_cfg, tiny_train_cfg), cache=Cache(root), data=tiny_data)
    assert hist.final_val > 0 and isinstance(model, GPT)  # the run is the reader's all the same
    assert str(root) in str(seen[0].message) and "LMLAB_CACHE" in str(seen[0].message)
    assert list(root.iterdir()) == []  # no temp file, and no checkpoint without its history


def test_a_disk_that_fills_between_weights_and_history_leaves_no_orphan(tmp_path, monkeypatch):
    """The weights fit, the history that marks the entry complete does not: the weights are removed
    too, so no file is left taking space on the full disk that no reader will ever be served."""
    cache = Cache(tmp_path / "cache")
    real = cache.save_json
    monkeypatch.setattr(cache, "save_json", lambda name, obj: False)  # as _write returns on a full disk
    assert cache.save_run("run-x", {"w": torch.ones(3)}, {"eval_val": [1.0]}) is False
    assert list((tmp_path / "cache").glob("run-x*")) == []
    monkeypatch.setattr(cache, "save_json", real)  # control: with room for both, both are kept
    assert cache.save_run("run-x", {"w": torch.ones(3)}, {"eval_val": [1.0]}) is True
    assert sorted(p.suffix for p in (tmp_path / "cache").glob("run-x*")) == [".json", ".pt"]


def test_a_full_disk_on_a_real_tmpfs_warns_and_leaves_nothing(tmp_path):
    """The cache's write on a real 64 KiB tmpfs, mounted in a private mount namespace where `unshare`
    allows it (the emulated disk above stands in where it does not): a 160 kB checkpoint does not
    fit, and the write warns instead of raising."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare: a tmpfs cannot be mounted here")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    folder = str(mount / "cache")
    script = textwrap.dedent(f"""
        import os, warnings, torch
        from lmlab.cache import Cache
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            stored = Cache({folder!r}).save_run("run-x", {{"w": torch.ones(200, 200)}}, {{"eval_val": [1.0]}})
        print("RETURNED", stored, os.listdir({folder!r}), [str(w.message) for w in seen])
    """)
    command = f"mount -t tmpfs -o size=64k tmpfs {mount} && exec {sys.executable} -c \"$0\""
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command, script], capture_output=True, text=True,
                          timeout=120)
    if "RETURNED" not in done.stdout and "Traceback" not in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    assert "RETURNED False [] " in done.stdout, done.stderr[-2000:]  # not stored, no temp file left
    assert "disk is full" in done.stdout and folder in done.stdout


# ---------------------------------------------------------------- 2. the sweep removes only the cache's own files


def test_the_stale_temp_file_sweep_removes_only_the_caches_own_files(tmp_path):
    theirs = [".bash_history.tmp", ".my-thesis.docx.tmp", ".vimswap.tmp", ".run-0123.pt.abcd1234.tmp"]
    ours_stale, ours_fresh = f"{TMP_PREFIX}run-1.pt.x1y2.tmp", f"{TMP_PREFIX}run-2.pt.z3w4.tmp"
    folder_named_like_ours = tmp_path / f"{TMP_PREFIX}notes.tmp"
    folder_named_like_ours.mkdir()
    old = time.time() - 20 * 60
    assert 20 * 60 > STALE_SECONDS  # the foreign files are as stale as the sweep's own
    for name in [*theirs, ours_stale, ours_fresh]:
        (tmp_path / name).write_text(f"the contents of {name}")
        if name != ours_fresh:
            os.utime(tmp_path / name, (old, old))
    os.utime(folder_named_like_ours, (old, old))
    Cache(tmp_path).save_json("x", {"a": 1})
    for name in theirs:
        assert (tmp_path / name).read_text() == f"the contents of {name}"
    assert not (tmp_path / ours_stale).exists()  # the sweep does work, on what the cache wrote
    assert (tmp_path / ours_fresh).exists() and folder_named_like_ours.is_dir()


def test_the_caches_temp_files_carry_its_prefix(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(Path(src).name), real(src, dst)))
    Cache(tmp_path).save_json("x", {"a": 1})
    Cache(tmp_path).save_state("y", {"w": torch.ones(2)})
    assert len(seen) == 2 and all(name.startswith(TMP_PREFIX) for name in seen)


# ---------------------------------------------------------------- 3. relative and `~` cache paths


@pytest.fixture
def book(tmp_path) -> Path:
    root = tmp_path / "book"
    (root / "chapter").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\n")
    return root


def test_a_relative_lmlab_cache_is_one_folder_for_every_process_of_the_book(book, monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE", "relcache")
    roots = []
    for cwd in (book, book / "chapter"):  # the export step runs in the root, a notebook in its chapter
        monkeypatch.chdir(cwd)
        roots.append(default_root())
    assert roots == [book / "relcache"] * 2 and roots[0].is_absolute()


def test_a_relative_lmlab_cache_outside_a_book_is_the_working_folders(tmp_path, monkeypatch):
    here = tmp_path / "scratch"
    here.mkdir()
    if any((p / "_toc.yml").exists() for p in (here, *here.parents)):
        pytest.skip("a _toc.yml above the temporary folder")
    monkeypatch.setenv("LMLAB_CACHE", "relcache")
    monkeypatch.chdir(here)
    cache = Cache()
    monkeypatch.chdir(tmp_path)  # a notebook that changes folder keeps the cache it made
    assert cache.root == here / "relcache"
    cache.save_json("x", {"a": 1})
    assert (here / "relcache" / "x.json").exists() and not (tmp_path / "relcache").exists()


@pytest.mark.parametrize("spelled", ["~/x", "~/x/"])
def test_a_tilde_in_lmlab_cache_is_the_home_folder(spelled, tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LMLAB_CACHE", spelled)
    monkeypatch.chdir(cwd)
    assert default_root() == home / "x"
    Cache().save_json("y", {"a": 1})
    assert (home / "x" / "y.json").exists() and list(cwd.iterdir()) == []  # no folder named "~"


def test_a_variable_in_lmlab_cache_is_expanded_and_an_unset_one_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LMLAB_CACHE", "$HOME/x")
    assert default_root() == tmp_path / "home" / "x"  # not a folder named "$HOME"
    monkeypatch.setenv("LMLAB_CACHE", "  ${HOME}/y ")  # blanks around it, as a copied line may bring
    assert default_root() == tmp_path / "home" / "y"
    monkeypatch.delenv("LMLAB_NO_SUCH_VARIABLE", raising=False)
    monkeypatch.setenv("LMLAB_CACHE", "$LMLAB_NO_SUCH_VARIABLE/z")
    with pytest.raises(ValueError, match="LMLAB_CACHE.*not set"):
        default_root()
    monkeypatch.setenv("LMLAB_CACHE", " ")  # only blanks: the default folder, not one named " "
    assert default_root().name == ".lmlab_cache"


def test_an_explicit_root_is_fixed_when_the_cache_is_made(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "a")
    relative, home = Cache("rel"), Cache("~/c")
    monkeypatch.chdir(tmp_path)
    assert relative.root == tmp_path / "a" / "rel" and home.root == tmp_path / "home" / "c"


def test_a_deleted_working_folder_is_named_as_such(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.delenv("LMLAB_CACHE")
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(FileNotFoundError, match="working folder no longer exists.*LMLAB_CACHE"):
        default_root()
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "abs"))
    assert default_root() == tmp_path / "abs"  # an absolute LMLAB_CACHE needs no working folder


def test_a_tilde_of_an_unknown_user_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE", "~no-such-user-lmlab/x")
    with pytest.raises(ValueError, match="LMLAB_CACHE must be a folder"):
        default_root()


# ---------------------------------------------------------------- more disk cases: never a lost run


def test_a_cache_folder_deleted_while_running_is_made_again(spec, tiny_data, tmp_path):
    cache = Cache(tmp_path / "a" / "cache")
    trained(spec, cache=cache, data=tiny_data)
    shutil.rmtree(tmp_path / "a")
    _, hist = trained(spec, cache=cache, data=tiny_data)
    assert hist.final_val > 0 and sorted(p.suffix for p in cache.root.iterdir()) == [".json", ".pt"]


def test_an_entry_replaced_by_a_folder_returns_the_run_and_keeps_the_folder(spec, tiny_data, tmp_path):
    cache = Cache(tmp_path / "cache")
    trained(spec, cache=cache, data=tiny_data)
    entry = cache.path(run_name(spec, tiny_data), ".pt")
    entry.unlink()
    entry.mkdir()
    (entry / "notes.txt").write_text("someone's")
    with pytest.warns(UserWarning) as seen:
        _, hist = trained(spec, cache=cache, data=tiny_data)
    assert hist.final_val > 0 and (entry / "notes.txt").read_text() == "someone's"  # never deleted
    messages = " ".join(str(w.message) for w in seen)
    assert "cannot be removed" in messages and f"cache at {cache.root} cannot be written" in messages
    assert not [p for p in cache.root.iterdir() if p.name.startswith(TMP_PREFIX)]


# ---------------------------------------------------------------- 4. one run, one entry


@pytest.fixture
def spec(tiny_cfg, tiny_train_cfg) -> RunSpec:
    return RunSpec(tiny_cfg, tiny_train_cfg)


def weights(spec: RunSpec, data) -> dict:
    """The weights `spec` trains to (no cache)."""
    model = GPT(spec.model, spec.seed)
    train(model, data, spec.train, spec.seed)
    return model.state_dict()


def pairs(settings) -> list:
    """The pairs as pytest parameters named by what they set."""
    return [pytest.param(a, b, id=f"{a} vs {b}") for a, b in settings]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


SPELLINGS = [  # (one spelling, another spelling of the same run)
    ({"dropout": 0.0}, {"dropout": 0}),
    ({"dropout": 0.0}, {"dropout": -0.0}),
    ({"dropout": 0.1}, {"dropout": np.float64(0.1)}),
    ({"lr": 1.0}, {"lr": 1}),
    ({"weight_decay": 0.0}, {"weight_decay": 0}),
    ({"grad_clip": 1.0}, {"grad_clip": 1}),
    ({"betas": (0.9, 0.95)}, {"betas": [0.9, 0.95]}),
    ({"min_lr_ratio": 0.0}, {"min_lr_ratio": -0.0}),
    ({"output_mult": 2.0}, {"output_mult": 2}),
    ({"param": "mup", "base_width": None}, {"param": "mup", "base_width": 32}),  # 32 is the width
    ({"param": "sp_fanin", "base_width": None}, {"param": "sp_fanin", "base_width": 32}),
    ({"param": "sp", "base_width": None}, {"param": "sp", "base_width": 32}),
    ({"param": "sp", "base_width": None}, {"param": "sp", "base_width": 16}),  # no SP rule reads m
    ({"param": "mup", "base_width": 16}, {"param": "mup", "base_width": 16, "base_heads": 2}),  # 2 is heads
]


@pytest.mark.parametrize(("one", "other"), pairs(SPELLINGS))
def test_two_spellings_of_one_run_are_one_entry(spec, tiny_data, one, other):
    a, b = spec.replace(**one), spec.replace(**other)
    assert run_name(a, tiny_data) == run_name(b, tiny_data)
    if not {"base_width", "base_heads"} & set(other):  # a float setting: the spec itself is one, so is a sweep's key
        assert a == b and sweep.config_key(sweep.train_spec, a) == sweep.config_key(sweep.train_spec, b)


@pytest.mark.parametrize(("one", "other"), pairs(s for s in SPELLINGS if {"base_width", "base_heads"} & set(s[1])))
def test_the_spellings_merged_train_the_same_numbers(spec, tiny_data, one, other):
    assert same(weights(spec.replace(**one), tiny_data), weights(spec.replace(**other), tiny_data))


BASES_APART = [  # where a rule reads the base, another base is another run
    ({"param": "mup", "base_width": None}, {"param": "mup", "base_width": 16}),
    ({"param": "sp_fanin", "base_width": None}, {"param": "sp_fanin", "base_width": 16}),
    ({"param": "mup", "base_width": 16}, {"param": "mup", "base_width": 16, "base_heads": 1}),
]
DISTINCT = [  # settings that train different numbers must never share an entry
    ({"dropout": 0.0}, {"dropout": 0.1}),
    ({"dropout": 0.0}, {"dropout": 1e-9}),
    ({"lr": 1.0}, {"lr": 1.0000000001}),
    *BASES_APART,
    ({"param": "sp", "base_width": 16}, {"param": "mup", "base_width": 16}),
    ({"seed": 0}, {"seed": 1}),
]


@pytest.mark.parametrize(("one", "other"), pairs(DISTINCT))
def test_distinct_settings_keep_distinct_entries(spec, tiny_data, one, other):
    assert run_name(spec.replace(**one), tiny_data) != run_name(spec.replace(**other), tiny_data)


@pytest.mark.parametrize(("one", "other"), pairs(BASES_APART))
def test_the_base_widths_kept_apart_do_train_different_numbers(spec, tiny_data, one, other):
    """The negative control of the merge: where μP reads the base, it changes the run."""
    assert not same(weights(spec.replace(**one), tiny_data), weights(spec.replace(**other), tiny_data))


def test_a_run_spelled_another_way_is_served_from_its_entry(spec, tiny_data, tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    _, first = trained(spec.replace(dropout=0.0, param="mup", base_width=None), cache=cache, data=tiny_data)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again: the second spelling missed the entry")

    monkeypatch.setattr(lmlab.runs, "train", no_training)
    _, again = trained(spec.replace(dropout=-0.0, param="mup", base_width=32), cache=cache, data=tiny_data)
    assert again.eval_val == first.eval_val and len(list(cache.root.iterdir())) == 2  # one .pt, one .json


def test_a_spec_writes_its_float_settings_as_floats(spec):
    one = spec.replace(dropout=0, lr=1, betas=[0, 0.5], grad_clip=None)
    assert type(one.model.dropout) is float and type(one.train.lr) is float
    assert one.train.betas == (0.0, 0.5) and all(type(b) is float for b in one.train.betas)
    assert one.train.grad_clip is None and type(one.train.steps) is int
    assert str(spec.replace(dropout=-0.0).model.dropout) == "0.0"
    assert RunSpec.from_dict(one.to_dict()) == one


def test_a_config_built_outside_a_spec_keeps_its_spelling():
    """Only the spec is rewritten: a GPTConfig is what the reader typed (its replace() must keep
    meaning what it meant), and the run cache's key reads it through `key_form`."""
    cfg = GPTConfig(vocab_size=10, width=32, heads=2, param="mup", dropout=0)
    assert cfg.dropout == 0 and type(cfg.dropout) is int and cfg.base_width is None
    assert lmlab.runs.key_form(cfg)["base_width"] == 32
