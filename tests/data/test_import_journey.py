"""``kgrec data import`` as a new user meets it with a shop's own CSV files: customer_id and
product_id columns, a KG written in the product ids, a category column (each test failed before)."""

import pytest

from kgrec.cli.main import build_parser, main
from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataError
from kgrec.graph.build import build_graph

RATINGS = "customer_id,product_id,stars,ordered_at\nC1,P0,5,2021-01-02\nC1,P1,3,2021-01-03\nC2,P1,4,2021-02-01\nC2,P3,2,2021-02-02\n"
PRODUCTS = (
    "product_id,title,category,description\n"
    "P0,Red shoe,shoes,\"A red leather shoe, stitched by hand for long walks in town.\"\n"
    "P1,Blue hat,hats,A warm woollen hat that keeps the ears warm in winter.\n"
    "P2,Green shoe,shoes,A light running shoe with a green sole and soft laces.\n"
    "P3,Black bag,bags,A roomy bag of black canvas with two inner pockets.\n"
    "P4,Grey hat,hats,A felt hat with a narrow brim for sunny afternoons.\n"
    "P5,White shoe,shoes,A white sneaker with a rubber toe cap and a padded collar.\n"
)
KG = "head,relation,tail\nP0,made_by,Acme\nP1,made_by,Hatco\nP2,made_by,Acme\nAcme,based_in,Oslo\n"


@pytest.fixture
def shop(tmp_path):
    for name, text in (("ratings.csv", RATINGS), ("products.csv", PRODUCTS), ("kg.csv", KG)):
        (tmp_path / name).write_text(text)
    return tmp_path


def spec(shop, **kwargs):
    base = dict(interactions=shop / "ratings.csv", out=shop / "data" / "shop", user_col="customer_id",
                item_col="product_id", rating_col="stars", time_col="ordered_at")  # fmt: skip
    return ImportSpec(**{**base, **kwargs})


def test_kg_without_links_links_each_item_to_the_entity_of_its_own_id(shop):
    notes: list[str] = []
    out = import_csv(spec(shop, items=shop / "products.csv", text_cols=("title", "description"), seq_cols=("category",),
                          kg=shop / "kg.csv", note=notes.append))  # fmt: skip
    link = (out / "shop.link").read_text().splitlines()
    assert link == ["item_id:token\tentity_id:token", "P0\tP0", "P1\tP1", "P2\tP2"]  # the item file's order
    assert notes == [f"{shop / 'kg.csv'}: no --links, so each item is linked to the KG entity of the same id: 3 of the 6 "
                     "items; 3 items have no KG entity of their id ('P3', 'P4', 'P5') and no KG triple; give --links "
                     "FILE to link items to other entities"]  # fmt: skip
    ds = load_dataset(out)
    assert ds.items_in_kg().tolist() == [True, True, True, False, False, False]
    graph = build_graph(ds)
    p0 = ds.item_names().index("Red shoe")
    names = [str(k) for k in graph.keys]
    edges = {(names[h], str(graph.relation_names[r]), names[t]) for h, r, t in zip(graph.head, graph.relation, graph.tail, strict=True)}
    assert p0 < graph.n_items and (names[p0], "made_by", "Acme") in edges  # the item node holds the KG's triple
    assert ("P1", "made_by", "Hatco") in edges and ("Acme", "based_in", "Oslo") in edges
    assert graph.n_nodes == ds.n_items + 3  # Acme, Hatco, Oslo: no second node for P0, P1, P2


def test_kg_without_links_on_the_command_line(shop, capsys):
    args = ["data", "import", "--interactions", str(shop / "ratings.csv"), "--user-col", "customer_id", "--item-col",
            "product_id", "--rating-col", "stars", "--time-col", "ordered_at", "--items", str(shop / "products.csv"),
            "--text-cols", "title,description", "--seq-cols", "category", "--kg", str(shop / "kg.csv"),
            "--out", str(shop / "data" / "shop")]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "6 items, 4 interactions" in out and "no --links, so each item is linked to the KG entity of the same id: 3 of the 6" in err
    ds = load_dataset(shop / "data" / "shop")
    assert [str(ds.entities[e]) if e >= 0 else None for e in ds.item_entity] == ["P0", "P1", "P2", None, None, None]


def test_kg_whose_entities_are_no_item_ids_is_refused_with_both_ways_out(shop):
    (shop / "kg.csv").write_text("head,relation,tail\nQ1,made_by,Q9\nQ2,made_by,Q9\n")
    with pytest.raises(DataError) as error:
        import_csv(spec(shop, kg=shop / "kg.csv"))
    assert str(error.value) == (
        f"{shop / 'kg.csv'}: --kg needs --links to join the triples to items: no item id is a head or tail of the KG "
        "(items 'P0', 'P1', 'P3'; KG entities 'Q1', 'Q9', 'Q2'), so no item is linked to the entity of its own id; "
        "give --links FILE (a row per item: its id and its KG entity; columns item_id, entity_id, or name them with "
        "--link-item-col, --entity-col), or write the triples with the item ids as heads or tails"
    )
    assert not (shop / "data" / "shop").exists()


def test_missing_id_columns_name_their_options_and_the_header_s_likely_columns(shop):
    with pytest.raises(DataError) as error:
        import_csv(spec(shop, user_col="user_id", item_col="item_id"))
    assert str(error.value) == (
        f"{shop / 'ratings.csv'}:1: missing column(s) user_id, item_id; the header has: customer_id, product_id, stars, "
        "ordered_at; name them with --user-col and --item-col (the header suggests --user-col customer_id "
        "--item-col product_id)"
    )
    (shop / "links.csv").write_text("product_id,entity_id\nP0,P0\n")
    with pytest.raises(DataError) as error:
        import_csv(spec(shop, kg=shop / "kg.csv", links=shop / "links.csv"))
    assert str(error.value) == (
        f"{shop / 'links.csv'}:1: missing column(s) item_id; the header has: product_id, entity_id; name it with "
        "--link-item-col (the header suggests --link-item-col product_id)"
    )
    (shop / "kg.csv").write_text("subject,predicate,object\nP0,made_by,Acme\n")
    with pytest.raises(DataError, match=r"kg.csv:1: missing column\(s\) head, relation, tail; the header has: subject, "
                       r"predicate, object; name them with --head-col, --relation-col and --tail-col \(the header "
                       r"suggests --head-col subject --relation-col predicate --tail-col object\)$"):  # fmt: skip
        import_csv(spec(shop, kg=shop / "kg.csv"))
    (shop / "items.csv").write_text("id,title\nP0,Red shoe\n")  # --item-col names both files' item column
    with pytest.raises(DataError, match=r"items.csv:1: missing column\(s\) product_id; the header has: id, title; "
                       r"--item-col names the item id column of both the interactions and the items file: rename this "
                       r"file's column 'id' to 'product_id'$"):  # fmt: skip
        import_csv(spec(shop, items=shop / "items.csv", text_cols=("title",)))
    with pytest.raises(DataError, match=r"products.csv:1: missing column\(s\) Title; .*; --text-cols gave 'Title': did you mean 'title'\?$"):
        import_csv(spec(shop, items=shop / "products.csv", text_cols=("Title",)))


def test_items_hint_suggests_shared_short_values_as_seq_cols(shop):
    with pytest.raises(DataError) as error:
        import_csv(spec(shop, items=shop / "products.csv"))
    assert str(error.value) == (
        f"{shop / 'products.csv'}: give --text-cols and/or --seq-cols to choose its item columns (the header has: "
        "product_id, title, category, description), e.g. --text-cols title,description --seq-cols category (a guess "
        "from its values: --seq-cols for lists split on '|' and for short values that items share (3 words or fewer, "
        "at most half as many distinct values as rows), such as a category, a brand or tags, which become item "
        "attributes; --text-cols for free text such as a title or a description); without them shop.item would hold "
        "the item ids alone"
    )
    # tags split on ',' that repeat: 7 tags, 3 distinct
    (shop / "tagged.csv").write_text('product_id,title,tags\nP0,Red shoe,"leather, red"\nP1,Red hat,"wool, red"\n'
                                     'P3,Black bag,"leather, red"\nP4,Grey hat,wool\n')  # fmt: skip
    with pytest.raises(DataError, match=r"e\.g\. --text-cols title --seq-cols tags --seq-sep ',' \(a guess from its "
                       r"values: --seq-cols for lists split on '\|' or ','"):  # fmt: skip
        import_csv(spec(shop, items=shop / "tagged.csv"))


def test_time_col_help_says_iso_dates_are_read():
    data = next(a for a in build_parser()._actions if a.dest == "command").choices["data"]
    parser = next(a for a in data._actions if a.dest == "data_command").choices["import"]
    text = {a.dest: a.help for a in parser._actions}["time_col"]
    assert "(float)" not in text and "ISO 8601" in text and "2020-01-31" in text


def test_linking_numeric_ids_by_id_says_they_may_match_by_chance(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id\nu,1\nu,2\n")
    (tmp_path / "kg.csv").write_text("head,relation,tail\n1,r,9\n")  # a KG numbering its own entities
    notes: list[str] = []
    import_csv(ImportSpec(interactions=tmp_path / "r.csv", out=tmp_path / "ds", kg=tmp_path / "kg.csv", note=notes.append))
    assert notes[0].endswith("1 of the 2 items; 1 item has no KG entity of its id ('2') and no KG triple; give --links FILE to "
                             "link items to other entities (these ids are numbers: if the KG numbers its entities on its "
                             "own, they match the items by chance)")  # fmt: skip
