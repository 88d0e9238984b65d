"""kgrec: knowledge-graph and language-model enhanced multi-task recommender.

The four steps from the top-level package::

    import kgrec
    kg = kgrec.build_graph(kgrec.load_dataset(kgrec.fetch("ml-100k")), kgrec.load_recipe("graphs/ml-100k.yaml"))
    config = kgrec.load_config("scripts/configs/ml-100k.yaml", ["train.max_epochs=5"])
    # train: ``kgrec.train.train(config, "runs/ml-100k")`` (the subpackage), or ``kgrec train``
    rec = kgrec.Recommender.open("runs/ml-100k")
    rec.recommend("196", k=10)

Names whose modules import torch (``Recommender``) load on first use (PEP 562), so
``import kgrec`` stays light.
"""

from typing import TYPE_CHECKING

from kgrec.data import Dataset, ImportSpec, fetch, import_dataset, load_dataset
from kgrec.errors import KgrecError
from kgrec.utils.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: the graph builder, the run config and the query API
    from kgrec.graph import KnowledgeGraph, build_graph, load_recipe
    from kgrec.retrieval import Recommender
    from kgrec.train import RunConfig, load_config

__version__ = "0.1.0"
__all__ = [
    "Dataset",
    "ImportSpec",
    "KgrecError",
    "KnowledgeGraph",
    "Recommender",
    "RunConfig",
    "__version__",
    "build_graph",
    "fetch",
    "import_dataset",
    "load_config",
    "load_dataset",
    "load_recipe",
]

__getattr__ = lazy_exports(__name__, __all__, ("graph", "train", "retrieval"))
