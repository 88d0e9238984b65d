import torch


def test_pyg_export_has_edge_index_types_and_node_types(build):
    kg = build(inverse=True)
    data = kg.to_pyg()
    assert data.edge_index.shape == (2, kg.n_triples) and data.edge_index.dtype == torch.long
    assert data.edge_type.shape == (kg.n_triples,) and data.edge_type.dtype == torch.long
    assert data.num_nodes == kg.n_nodes == 9 and data.node_type.tolist() == [0] * 6 + [1] * 3
    directed = kg.relation_id("film.film.directed_by")
    first = int((data.edge_type == directed).nonzero()[0])
    head, tail = data.edge_index[:, first].tolist()
    assert kg.relation_names[data.edge_type[first]] == "film.film.directed_by" and kg.node_type[head] == 0
    assert data.num_relations == 4 and int(data.edge_type.max()) == 3


def test_networkx_view_keeps_names_types_and_relations(build):
    kg = build()
    graph = kg.to_networkx()
    assert graph.number_of_nodes() == 9 and graph.number_of_edges() == 5
    i1, d1 = kg.item_node("i1"), list(kg.keys).index("d1")
    assert graph.nodes[i1] == {"name": "Alpha", "type": "item"} and graph.nodes[d1]["type"] == "entity"
    assert [e["relation"] for e in graph.get_edge_data(i1, d1).values()] == ["film.film.directed_by"]
