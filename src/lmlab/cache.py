"""A content-addressed cache for results (JSON) and trained runs (a state dict and its History).

Every entry is named by a hash of what produced it, so changing any setting
computes afresh while re-running a notebook is instant. The cache never costs a
reader a finished run, and never serves a broken one:

- writes are atomic (temp file, then rename), so an interrupted build never leaves
  half a file, and temp files that a killed process left behind are swept away; the
  cache names its temp files `.lmlab-tmp-…` and sweeps only those, so a cache pointed
  at a folder that holds other programs' files never deletes one;
- files get the permissions any other output gets (the umask decides), so a cache
  can be shared;
- results must be finite (NaN is refused), and an entry is checked when it is read:
  one that cannot be read or holds the wrong content is dropped with a warning and
  computed again;
- when the cache cannot be written (a read-only folder, a full disk, `LMLAB_CACHE`
  naming a file, another user's entries), the result is still returned, with a warning
  that says where the cache is and how to move it. A checkpoint is serialised in memory
  before it touches the disk, so a full disk fails as the OSError it is, never as
  torch's "unexpected pos" from deep inside `torch.save`;
- the cache's folder is an absolute path, fixed when the Cache is made, so a notebook
  that changes its working folder, and two processes started in two folders, share runs.
"""

import errno
import hashlib
import inspect
import io
import json
import math
import os
import stat
import tempfile
import time
import warnings
from pathlib import Path

import torch

from lmlab.seeds import seed_offset

STALE_SECONDS = 15 * 60  # a temp file this old belongs to a write that was killed: no write takes that long
TMP_PREFIX = ".lmlab-tmp-"  # every temp file the cache writes, and the only files its sweep may remove


def book_root(start: Path | None = None) -> Path | None:
    """The book's root (the nearest folder holding `_toc.yml`) at or above `start` (default: the
    working folder), or None outside a book."""
    try:
        here = start or Path.cwd()
    except FileNotFoundError:  # Path.cwd() says only "No such file or directory"
        raise FileNotFoundError("the working folder no longer exists, so the cache's folder cannot be found "
                                "from it: change to an existing folder, or set LMLAB_CACHE to an absolute path"
                                ) from None
    return next((folder for folder in (here, *here.parents) if (folder / "_toc.yml").exists()), None)


def _home(folder: str | Path, name: str) -> Path:
    """`folder` with a leading `~` made the home folder (never a folder named `~`)."""
    try:
        return Path(folder).expanduser()
    except RuntimeError as e:  # "~someone" with no such user, or no home folder known
        raise ValueError(f"{name} must be a folder this process can find, got {str(folder)!r} ({e})") from None


def absolute(folder: str | Path, name: str = "LMLAB_CACHE") -> Path:
    """`folder` as an absolute path: `~` is the home folder, and a relative path is taken from the
    book's root when the working folder is inside the book, else from the working folder. A
    notebook runs in its chapter's folder and the export step in the book's root: from the root,
    `LMLAB_CACHE=relcache` names one folder for both."""
    path = _home(folder, name)
    return path if path.is_absolute() else (book_root() or Path.cwd()) / path


def default_root() -> Path:
    """`LMLAB_CACHE` (its `$VARIABLES` expanded, surrounding blanks ignored, made absolute by
    `absolute`), else `.lmlab_cache/` in the book's root (the folder holding `_toc.yml`) when run
    from inside the book, else in the working folder; under a replication seed offset K, its
    subfolder `offset-K/`, so that runs at fresh seeds never mix with the book's. Always an
    absolute path."""
    offset = seed_offset()
    sub = f"offset-{offset}" if offset else ""
    if env := os.environ.get("LMLAB_CACHE", "").strip():
        folder = os.path.expandvars(env)
        if "$" in folder:  # a variable the shell would have expanded, left as it is: never a folder named "$HOME"
            raise ValueError(f"LMLAB_CACHE must be a folder, got {env!r}, which names an environment variable that "
                             f"is not set")
        return absolute(folder) / sub
    return (book_root() or Path.cwd()) / ".lmlab_cache" / sub


def key(*parts) -> str:
    """A short stable hash of JSON-able parts (dicts are hashed with sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def source_fingerprint(*sources) -> str:
    """A hash of the source code of the given modules or functions, so a cached result is
    recomputed when the code that produced it changes, not only when its settings do."""
    h = hashlib.sha256()
    for source in sources:
        h.update(inspect.getsource(source).encode())
    return h.hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Cache:
    def __init__(self, root: str | Path | None = None):
        # fixed now (from the working folder, as Python reads a relative path): a relative root would
        # follow the working folder wherever a notebook moves it
        self.root = _home(root, "root").absolute() if root is not None else default_root()
        self._swept = False

    def path(self, name: str, suffix: str) -> Path:
        return self.root / f"{name}{suffix}"

    # ------------------------------------------------------------ writing

    def _write(self, path: Path, write) -> bool:
        """Write atomically; True when stored. An unwritable cache warns and returns False: the
        caller keeps its result. Errors of the content itself (not JSON-able, NaN) still raise."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sweep()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.", suffix=".tmp")
        except OSError as e:
            self._unwritable(e)
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide a shared cache from its group
            os.replace(tmp, path)
            return True
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            self._unwritable(e)
            return False
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _unwritable(self, error: OSError) -> None:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = ("Free some space there, or point LMLAB_CACHE at a folder on another disk, to keep results."
               if full else "Point LMLAB_CACHE at a writable folder to keep results.")
        warnings.warn(f"the cache at {self.root} cannot be written ({'the disk is full: ' if full else ''}"
                      f"{type(error).__name__}: {error}); the result is returned but not stored. {fix}",
                      stacklevel=4)

    def _sweep(self) -> None:
        """Remove the temp files of writes that were killed (once per Cache object): only plain
        files named as the cache names its own (`TMP_PREFIX`), never another program's."""
        if self._swept:
            return
        self._swept = True
        now = time.time()
        for tmp in self.root.glob(f"{TMP_PREFIX}*.tmp"):
            try:
                info = tmp.lstat()
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_SECONDS:
                    tmp.unlink()
            except OSError:
                pass  # another process's file, or gone already

    # ------------------------------------------------------------ reading

    def _read(self, path: Path, read, check=None):
        """The entry at `path` read (and checked by `check`, which raises ValueError on bad
        content), or None when it is absent or invalid; an invalid entry is dropped."""
        if not path.exists():
            return None
        try:
            with open(path, "rb") as f:
                value = read(f)
            if check is not None:
                check(value)
            return value
        except Exception as e:  # a torn or foreign file, or one of the wrong content
            self.drop(path, f"{type(e).__name__}: {e}")
            return None

    def drop(self, path: Path, why: str) -> None:
        """Remove an invalid entry, saying why; if it cannot be removed, say that instead."""
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            warnings.warn(f"cache entry {path} is invalid ({why}) and cannot be removed ({type(e).__name__}: {e}); "
                          f"recomputing without it. Fix the folder's permissions or point LMLAB_CACHE elsewhere.",
                          stacklevel=4)
            return
        warnings.warn(f"dropping invalid cache entry {path.name} ({why}); recomputing", stacklevel=4)

    # ------------------------------------------------------------ JSON results

    def load_json(self, name: str, check=None):
        return self._read(self.path(name, ".json"), lambda f: json.loads(f.read().decode()), check)

    def save_json(self, name: str, obj) -> bool:
        """Store `obj`; NaN and infinities are refused (ValueError), so no broken result is cached."""
        blob = json.dumps(obj, allow_nan=False).encode()
        return self._write(self.path(name, ".json"), lambda f: f.write(blob))

    def get_or_compute(self, name: str, compute, check=None):
        """The JSON result stored under `name`, computing and storing it when absent or invalid."""
        result = self.load_json(name, check)
        if result is None:
            result = compute()
            if check is not None:
                check(result)
            if self.save_json(name, result):
                result = json.loads(json.dumps(result))  # exactly what a warm rerun will read (tuples → lists)
        return result

    # ------------------------------------------------------------ checkpoints and trained runs

    def load_state(self, name: str):
        return self._read(self.path(name, ".pt"), lambda f: torch.load(f, map_location="cpu", weights_only=True))

    def save_state(self, name: str, state: dict) -> bool:
        """Store a checkpoint. It is serialised in memory first: a content error raises as itself,
        and the disk sees one plain write, whose failure (a full disk) is an OSError that warns."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return self._write(self.path(name, ".pt"), lambda f: f.write(buffer.getbuffer()))

    def load_run(self, name: str, model, parse):
        """The history of a stored run, `parse`d from its JSON (raising ValueError on bad content),
        with its weights loaded into `model`; None when either file is absent or invalid (an entry
        whose weights do not fit the model, or whose history does not parse, is dropped)."""
        json_path, pt_path = self.path(name, ".json"), self.path(name, ".pt")
        if not (json_path.exists() and pt_path.exists()):
            return None
        hist = self._read(json_path, lambda f: parse(json.loads(f.read().decode())))
        if hist is None:
            return None

        def fits(state):
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise ValueError(f"a checkpoint must be a dict of tensors, got {type(state).__name__}")
            if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
                raise ValueError("the checkpoint holds non-finite weights")
            model.load_state_dict(state)  # raises on missing, unexpected or mis-shaped tensors

        state = self._read(pt_path, lambda f: torch.load(f, map_location="cpu", weights_only=True), fits)
        return hist if state is not None else None

    def save_run(self, name: str, state: dict, hist: dict) -> bool:
        """Store a trained run: the weights first, then the history that marks the entry complete."""
        if not all(math.isfinite(v) for v in hist["eval_val"]):
            raise ValueError(f"refusing to cache run {name}: its validation loss is not finite")
        stored = self.save_state(name, {k: v.detach().cpu() for k, v in state.items()})
        if stored and not self.save_json(name, hist):  # the disk filled between the two: no orphan weights
            self.path(name, ".pt").unlink(missing_ok=True)
            return False
        return stored
