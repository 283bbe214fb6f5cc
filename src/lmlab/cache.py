"""A content-addressed cache for results (JSON) and checkpoints (torch state dicts).

Every entry is named by a hash of what produced it, so changing any setting
computes afresh while re-running a notebook is instant. Writes are atomic
(temp file, then rename), so an interrupted build never leaves half a file; an
entry that cannot be read is dropped with a warning and computed again.
"""

import hashlib
import inspect
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch


def default_root() -> Path:
    """`LMLAB_CACHE`, else `.lmlab_cache/` in the book's root (the folder holding `_toc.yml`)
    when run from inside the book, else in the working folder."""
    if env := os.environ.get("LMLAB_CACHE"):
        return Path(env)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder / ".lmlab_cache"
    return here / ".lmlab_cache"


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


class Cache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def path(self, name: str, suffix: str) -> Path:
        return self.root / f"{name}{suffix}"

    def _write(self, path: Path, write) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, path: Path, read):
        if not path.exists():
            return None
        try:
            with open(path, "rb") as f:
                return read(f)
        except Exception as e:  # a torn or foreign file: drop it and let the caller recompute
            warnings.warn(f"dropping corrupt cache entry {path.name} ({type(e).__name__}: {e}); recomputing",
                          stacklevel=3)
            path.unlink(missing_ok=True)
            return None

    def load_json(self, name: str):
        return self._read(self.path(name, ".json"), lambda f: json.loads(f.read().decode()))

    def save_json(self, name: str, obj) -> None:
        self._write(self.path(name, ".json"), lambda f: f.write(json.dumps(obj).encode()))

    def load_state(self, name: str):
        return self._read(self.path(name, ".pt"), lambda f: torch.load(f, map_location="cpu", weights_only=True))

    def save_state(self, name: str, state: dict) -> None:
        self._write(self.path(name, ".pt"), lambda f: torch.save(state, f))

    def get_or_compute(self, name: str, compute):
        """The JSON result stored under `name`, computing and storing it when absent or corrupt."""
        result = self.load_json(name)
        if result is None:
            result = compute()
            self.save_json(name, result)
        return result
