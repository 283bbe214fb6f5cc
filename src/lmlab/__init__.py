"""lmlab: the small lab bench behind "Turning the Knobs".

Real char-level GPTs on the complete plays of Shakespeare, small enough to train
on a laptop CPU and honest enough to show μP, scaling laws, dropout and sampling.
"""

from lmlab.budget import budget
from lmlab.corpus import CharDataset, CharTokenizer, shakespeare
from lmlab.model import GPT, GPTConfig
from lmlab.train import History, TrainConfig, device, train, train_cached

__all__ = ["budget", "shakespeare", "CharTokenizer", "CharDataset", "GPTConfig", "GPT",
           "TrainConfig", "History", "train", "train_cached", "device"]
__version__ = "0.1.0"
