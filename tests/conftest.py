"""Shared fixtures: a tiny multi-document text, its dataset and a model config small enough
that every test trains or samples in milliseconds on a laptop CPU."""

import pytest
import torch

from lmlab.corpus import PLAY_SEPARATOR, CharDataset
from lmlab.model import GPT, GPTConfig
from lmlab.train import TrainConfig

LINES = [
    "To be, or not to be, that is the question.",
    "Now is the winter of our discontent.",
    "All the world's a stage, and all the men and women merely players.",
    "Friends, Romans, countrymen, lend me your ears.",
    "What's in a name? That which we call a rose smells as sweet.",
    "The course of true love never did run smooth.",
    "If music be the food of love, play on.",
    "Double, double toil and trouble; fire burn and cauldron bubble.",
    "Some are born great, some achieve greatness.",
    "Brevity is the soul of wit.",
]


def make_docs(n: int = 10, repeats: int = 6) -> list[str]:
    """`n` distinct little 'plays', each a speaker line and one famous line said `repeats` times."""
    return [f"SPEAKER {i}:\n" + "\n".join([LINES[i % len(LINES)]] * repeats) for i in range(n)]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest on one thread; with more, OpenMP's spinning threads make each
    small matmul tens of times slower whenever another process is busy on the same cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_env(request, tmp_path, monkeypatch):
    """Every unit test caches into its own folder and sees no budget or book-build settings from the
    shell; browser tests, which check a book built under those settings, keep them."""
    if request.node.get_closest_marker("browser"):
        return
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "lmlab_cache"))
    monkeypatch.delenv("LMLAB_BUDGET", raising=False)
    monkeypatch.delenv("LMLAB_BOOK_BUILD", raising=False)


@pytest.fixture
def docs() -> list[str]:
    return make_docs()


@pytest.fixture
def tiny_text(docs) -> str:
    return PLAY_SEPARATOR.join(docs)


@pytest.fixture
def tiny_data(tiny_text) -> CharDataset:
    return CharDataset(tiny_text, val_fraction=0.2)


@pytest.fixture
def tiny_cfg(tiny_data) -> GPTConfig:
    return GPTConfig(vocab_size=tiny_data.vocab_size, ctx=16, width=32, depth=1, heads=2)


@pytest.fixture
def tiny_model(tiny_cfg) -> GPT:
    return GPT(tiny_cfg, seed=0)


@pytest.fixture
def tiny_train_cfg() -> TrainConfig:
    return TrainConfig(steps=6, batch_size=4, lr=3e-3, eval_every=3, eval_batches=2, progress=False)
