"""kgrec: knowledge-graph and language-model enhanced multi-task recommender."""

from kgrec.data import Dataset, load_dataset
from kgrec.errors import KgrecError

__version__ = "0.1.0"
__all__ = ["Dataset", "KgrecError", "__version__", "load_dataset"]
