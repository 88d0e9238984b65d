"""Knowledge-graph builder: recipe -> :class:`KnowledgeGraph` (save/load, PyG and networkx views),
statistics, degree plot, and relation paths between items."""

from kgrec.graph.build import build_graph
from kgrec.graph.holdout import HeldOutTriples, hold_out_triples
from kgrec.graph.kg import ENTITY, ITEM, USER, KnowledgeGraph
from kgrec.graph.paths import (
    GraphPath,
    Hop,
    explain_paths,
    find_paths,
    format_path,
    prepare_paths,
    relation_labels,
    short_relation,
)
from kgrec.graph.recipe import (
    AttributeRelation,
    GraphRecipe,
    default_recipe,
    find_recipe_file,
    load_recipe,
    recipe_from_dict,
    resolve_recipe,
)
from kgrec.graph.stats import degrees, graph_stats, plot_degrees, private_entities, private_owner

__all__ = [
    "ENTITY",
    "ITEM",
    "USER",
    "AttributeRelation",
    "GraphPath",
    "GraphRecipe",
    "HeldOutTriples",
    "Hop",
    "KnowledgeGraph",
    "build_graph",
    "default_recipe",
    "degrees",
    "explain_paths",
    "find_paths",
    "format_path",
    "find_recipe_file",
    "graph_stats",
    "hold_out_triples",
    "load_recipe",
    "plot_degrees",
    "prepare_paths",
    "private_entities",
    "private_owner",
    "recipe_from_dict",
    "resolve_recipe",
    "relation_labels",
    "short_relation",
]
