"""What a new user with their own shop data was told, and is now: an id typed in the wrong letter
case (``U101`` for ``u101``, ``p0045`` for ``P0045``) names the id meant, and a CSV file given to
``add-items`` says what an atomic ``.item`` file is and the header its columns would need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.errors import DataError, NotFoundError
from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.coldstart import read_new_items
from kgrec.retrieval.explain import Explainer

ITEM_FILE = (
    "add-items reads an atomic .item file: tab-separated, unquoted, a header of name:type entries "
    "(item_id:token<TAB>title:token ...), the id column named item_id"
)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- ids in the wrong letter case
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recommend", "{run}", "--user", "U1"], "unknown user 'U1': not one of the 40 users of this run (raw user ids, "
                                                 "e.g. u0, u1, u2); ids are case-sensitive: did you mean 'u1'?; for a new user"),
        (["recommend", "{run}", "--liked", "I5"], "unknown item 'I5': not one of the 60 items of this run (raw item ids, "
                                                  "e.g. i0, i1, i2); ids are case-sensitive: did you mean 'i5'?"),
        (["similar", "{run}", "--item", " I7 "], "unknown item ' I7 ': not one of the 60 items of this run (raw item ids, "
                                                 "e.g. i0, i1, i2); ids are case-sensitive: did you mean 'i7'?"),
        (["predict", "{run}", "--user", "U2", "--items", "i1"], "did you mean 'u2'?"),
    ],
)  # fmt: skip
def test_an_id_in_the_wrong_case_names_the_id_meant(trained_run: Path, capsys, argv: list[str], message: str):
    """They said ``unknown user 'U1'`` / ``unknown item 'I5'`` and no more."""
    code, _, err = run_cli(capsys, *[a.format(run=trained_run) for a in argv])
    assert code == 2 and message in err, err


def test_lookups_stay_exact_and_a_stranger_gets_no_hint(run_copy: Path):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(run_copy)
    with pytest.raises(NotFoundError, match=r"unknown user 'U1'.*did you mean 'u1'\?"):
        rec.recommend("U1")  # named, not folded: ids are case-sensitive
    with pytest.raises(NotFoundError, match=r"unknown item 'I5'.*did you mean 'i5'\?$"):
        rec.similar("I5")
    with pytest.raises(NotFoundError, match=r"unknown item 'I5'.*did you mean 'i5'\?$"):
        rec.recommend_for_new_user(liked=["i1", "I5"])
    with pytest.raises(NotFoundError) as stranger:
        rec.recommend("nobody")
    assert "did you mean" not in str(stranger.value)
    assert [r.item_id for r in rec.similar("i5", k=3)]  # the exact id still works


def test_a_removed_item_in_the_wrong_case_is_not_suggested():
    catalog = Catalog(["a1", "A2", "b3"], ["Alpha", "Beta", "Gamma"], np.eye(3, dtype=np.float32), {}, {}, n_base=3)
    catalog = catalog.with_removed(["b3"])
    with pytest.raises(NotFoundError) as error:
        catalog.position("B3")
    assert "did you mean" not in str(error.value)
    with pytest.raises(NotFoundError, match=r"unknown item 'a2'.*did you mean 'A2'\?$"):
        catalog.position("a2")


def test_an_unknown_item_of_a_run_without_titles_says_why_a_title_finds_nothing():
    """A shop whose names were in an unrecognised column: ``--item "Bolt Waterproof Sock"`` failed as
    an unknown item without a word why."""
    catalog = Catalog(["P0045", "P0046"], ["P0045", "P0046"], np.eye(2, dtype=np.float32), {}, {}, n_base=2)
    with pytest.raises(NotFoundError, match="this run's items have no titles .*so items are found by id only$"):
        catalog.position("Bolt Waterproof Sock")


# ---------------------------------------------------------------- the title column, one list
def test_explanations_leave_a_recognised_title_out_of_shared_attributes():
    """explain.py kept its own list of title names: a shop's ``product_name`` (and a ``Title``
    in another case) came out as an attribute two items share."""
    features = {"product_name": ["Bolt Sock", "Bolt Sock"], "category": [["socks"], ["socks"]]}
    types = {"product_name": "token", "category": "token_seq"}
    catalog = Catalog(["P1", "P2"], ["Bolt Sock", "Bolt Sock"], np.eye(2, dtype=np.float32), features, types, n_base=2)
    assert Explainer(None, catalog).shared_attributes(0, 1) == ["Category: socks"]
    features = {"Title": ["Same", "Same"], "category": [["socks"], ["socks"]]}
    catalog = Catalog(["P1", "P2"], ["Same", "Same"], np.eye(2, dtype=np.float32), features,
                      {"Title": "token", "category": "token_seq"}, n_base=2)  # fmt: skip
    assert Explainer(None, catalog).shared_attributes(0, 1) == ["Category: socks"]


# ---------------------------------------------------------------- add-items with a CSV file
def test_add_items_with_a_csv_file_shows_the_atomic_header_it_needs(trained_run: Path, tmp_path: Path, capsys):
    """It said ``header entry 'product_id,title,category,description' is not 'name:type'``."""
    csv = tmp_path / "new_products.csv"
    csv.write_text('product_id,title,category,description\nP9,Bolt Waterproof Sock,socks,"warm, dry"\n')
    code, out, err = run_cli(capsys, "add-items", trained_run, "--items", csv)
    assert code == 2 and not out
    assert (
        f"{csv}:1: this looks like a CSV file (commas, no tab, in its header 'product_id,title,category,description'); "
        f"{ITEM_FILE}. For these columns write the header "
        r"'item_id:token\ttitle:token\tcategory:token_seq\tdescription:token' (\t: a tab) and separate every "
        "line's fields with tabs; token_seq is a space-separated list, float a number"
    ) in err, err


def refusal(items: Path) -> str:
    """What :func:`read_new_items` says when it refuses ``items``."""
    with pytest.raises(DataError) as error:
        read_new_items(items)
    return str(error.value)


def test_add_items_says_what_an_item_file_is_for_any_header_it_cannot_read(tmp_path: Path):
    untyped = tmp_path / "untyped.item"
    untyped.write_text("item_id\ttitle\nP9\tSock\n")
    assert refusal(untyped) == (
        f"{untyped}:1: header entry 'item_id' is not 'name:type' (type one of token, token_seq, float, float_seq), "
        f"e.g. 'item_id:token'; {ITEM_FILE}"
    )
    renamed = tmp_path / "renamed.item"
    renamed.write_text("product_id:token\ttitle:token\nP9\tSock\n")
    assert refusal(renamed) == (
        f"{renamed}:1: missing required column 'item_id' (rename product_id:token to item_id:token) "
        f"(header has: product_id:token, title:token); {ITEM_FILE}"
    )
    typed_csv = tmp_path / "typed.item"  # a typed header, commas between: still a CSV
    typed_csv.write_text("item_id:token,title:token,price:float\nP9,Sock,3.5\n")
    with pytest.raises(DataError, match=r"looks like a CSV file .*'item_id:token\\ttitle:token\\tprice:float'"):
        read_new_items(typed_csv)


def test_add_items_links_an_item_to_the_entity_of_its_own_id_that_the_triples_name(run_copy: Path, tmp_path: Path):
    """Triples written in the new items' ids (as `kgrec data import --kg` without --links reads
    them) made a node of their own that no item was linked to: the graph pathway missed them."""
    from kgrec.retrieval import Recommender

    items = tmp_path / "new.item"
    items.write_text("item_id:token\ttitle:token\nn1\tNew One\n", encoding="utf-8")
    kg = tmp_path / "new.kg"
    kg.write_text("head_id:token\trelation_id:token\ttail_id:token\nn1\tfilm.genre\tg3\ne9\tfilm.genre\tg3\n", encoding="utf-8")
    rec = Recommender.open(run_copy)
    added = rec.add_items(items, kg=kg)
    (record,) = rec.catalog.added
    assert record.via == ("graph",) and record.links  # this run has no text: it was refused, "no link to the graph"
    assert added.notes[0] == "1 new item without a link (n1) is the KG entity of its own id, which the new triples name"
