"""lmlab: the small lab bench behind "Turning the Knobs".

Real char-level GPTs on the complete plays of Shakespeare, small enough to train
on a laptop CPU and honest enough to show μP, scaling laws, dropout and sampling.

Three layers, imports pointing down only (tests/test_layers.py checks it):
the engine here (corpus, model, mup, device, train, sampling, cache, runs, sweep,
budget, …), what the chapters measure in `lmlab.experiments`, and the figures and
live panels in `lmlab.display`.
"""

from lmlab.budget import budget
from lmlab.corpus import ALL, CharDataset, CharTokenizer, shakespeare
from lmlab.device import device
from lmlab.history import History
from lmlab.model import GPT, GPTConfig
from lmlab.runs import RunSpec, trained
from lmlab.train import TrainConfig, train

__all__ = ["budget", "shakespeare", "ALL", "CharTokenizer", "CharDataset", "GPTConfig", "GPT", "TrainConfig",
           "History", "train", "device", "RunSpec", "trained"]
__version__ = "0.1.0"
