"""Data layer: atomic-file reader, validation, splits, id maps, fetch and import."""

from kgrec.data.atomic import AtomicTable, TokenColumn, read_atomic
from kgrec.data.dataset import Dataset, Interactions, KGTriples, load_dataset, load_id_maps
from kgrec.data.download import fetch, kgrec_home
from kgrec.data.export import export_split
from kgrec.data.features import FeatureTokens, feature_tokens
from kgrec.data.importer import ImportSpec, import_csv, import_dataset
from kgrec.data.split import SPLIT_STRATEGIES, SplitConfig, SplitStrategy

__all__ = [
    "SPLIT_STRATEGIES",
    "AtomicTable",
    "Dataset",
    "FeatureTokens",
    "ImportSpec",
    "Interactions",
    "KGTriples",
    "SplitConfig",
    "SplitStrategy",
    "TokenColumn",
    "export_split",
    "feature_tokens",
    "fetch",
    "import_csv",
    "import_dataset",
    "kgrec_home",
    "load_dataset",
    "load_id_maps",
    "read_atomic",
]
