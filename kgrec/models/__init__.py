"""Pure ``nn.Module``s: graph encoder, text adaptor and fusion, trunks, towers, joint loss, and the
multi-task recommender composing them. Tensors in, tensors out; no file I/O."""

from typing import TYPE_CHECKING

from kgrec.models.config import TASKS, ModelConfig, ModelSizes
from kgrec.utils.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (torch, PyG): reading a config loads neither
    from kgrec.models.autorec import ItemAutoRec, rating_matrix
    from kgrec.models.fusion import ItemFusion, MoEAdaptor, UserEncoder, history_matrix
    from kgrec.models.graph_encoder import (
        CompGCNLayer,
        KGATLayer,
        RelationalAdjacency,
        RelationalGraphEncoder,
        RGCNLayer,
    )
    from kgrec.models.losses import JointLoss, gradnorm_weight_grad, project_conflicting
    from kgrec.models.recommender import Encoded, HistoryPrior, MultiTaskRecommender, RecBatch, SideInputs
    from kgrec.models.towers import KGLinkTower, LikeTower, RatingTower, RetrievalTower
    from kgrec.models.trunk import MLP, PLE, IdentityTrunk, MMoE, SharedBottom, Trunk, build_trunk

__all__ = [
    "MLP",
    "MMoE",
    "PLE",
    "TASKS",
    "CompGCNLayer",
    "KGATLayer",
    "Encoded",
    "HistoryPrior",
    "IdentityTrunk",
    "ItemAutoRec",
    "ItemFusion",
    "JointLoss",
    "KGLinkTower",
    "LikeTower",
    "MoEAdaptor",
    "ModelConfig",
    "ModelSizes",
    "MultiTaskRecommender",
    "RGCNLayer",
    "RatingTower",
    "RecBatch",
    "RelationalAdjacency",
    "RelationalGraphEncoder",
    "RetrievalTower",
    "SharedBottom",
    "SideInputs",
    "Trunk",
    "UserEncoder",
    "build_trunk",
    "history_matrix",
    "gradnorm_weight_grad",
    "project_conflicting",
    "rating_matrix",
]

__getattr__ = lazy_exports(__name__, __all__, ("autorec", "fusion", "graph_encoder", "losses", "recommender", "towers", "trunk"))
