"""The scripts that turn the research datasets' published files into atomic files.

Each test writes a tiny source folder in that dataset's own layout, runs the script and reads
the result back with :func:`kgrec.data.load_dataset`.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import DataWarning

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, source: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"scripts/{name}", "--source", str(source), "--out", str(out), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def mkr_ml1m(tmp_path: Path) -> Path:
    """MKR's ML-1M layout: KGAT-style user lines, CRLF item map, latin-1 movies.dat."""
    source = tmp_path / "ml1m"
    source.mkdir()
    (source / "item_index2entity_id.txt").write_bytes(b"1\t0\r\n2\t1\r\n5\t2\r\n")
    (source / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Jumanji (1995)::Adventure|Fantasy\n"
        "3::Not Linked (1990)::Drama\n"
        "5::Café au lait::Comedy\n".encode("iso-8859-1")
    )
    (source / "train.txt").write_text("0 0 1\n1 2 0\n")
    (source / "test.txt").write_text("0 2\n")
    (source / "kg_final.txt").write_text("0\t0\t3\n1\t2\t4\n2\t2\t4\n")
    (source / "relation_list.txt").write_text("film.film.writer 0\nfilm.film.language 1\nfilm.film.genre 2\n")
    return source


def test_prepare_ml1m_pools_both_files_names_relations_and_parses_titles(mkr_ml1m, tmp_path):
    done = run_script("prepare_ml1m.py", mkr_ml1m, tmp_path / "ml-1m")
    assert done.returncode == 0, done.stderr
    assert "5 interactions, 3 items (3 with a title), 3 triples" in done.stdout

    dataset = load_dataset(tmp_path / "ml-1m")
    pairs = dataset.interactions()
    got = sorted(zip(dataset.users[pairs.user].tolist(), dataset.items[pairs.item].tolist(), strict=True))
    assert got == [("0", "0"), ("0", "1"), ("0", "2"), ("1", "0"), ("1", "2")]
    assert dataset.item_names() == ["Toy Story", "Jumanji", "Café au lait"]  # item k is line k of the map
    assert list(dataset.item_features["release_year"]) == ["1995", "1995", ""]
    assert dataset.item_features["genre"][0] == ["Animation", "Children's", "Comedy"]
    assert sorted(dataset.relations.tolist()) == ["film.film.genre", "film.film.writer"]
    assert dataset.entities[dataset.item_entity].tolist() == ["0", "1", "2"]  # item k is entity k


@pytest.fixture
def ripplenet_bx(tmp_path: Path) -> Path:
    """RippleNet's Book-Crossing layout: labelled ratings (0 = sampled negative), item map, KG."""
    source = tmp_path / "bx"
    source.mkdir()
    (source / "item_index2entity_id_rehashed.txt").write_text("a\t1\nb\t2\nc\t3\n")
    (source / "ratings_final.txt").write_text("7\t1\t1\n7\t2\t0\n8\t3\t1\n8\t1\t1\n")
    (source / "kg_final.txt").write_text("1\t5\t10\n3\t6\t11\n")
    (source / "book_titles_partial.tsv").write_text(
        "ckan_item_id\ttitle\tauthor\tyear\tpublisher\n3\tEmma\tJane Austen\t1815\tMurray\n"
    )
    return source


def test_prepare_bookcrossing_keeps_positives_and_known_titles(ripplenet_bx, tmp_path):
    done = run_script("prepare_bookcrossing.py", ripplenet_bx, tmp_path / "bookcrossing")
    assert done.returncode == 0, done.stderr

    dataset = load_dataset(tmp_path / "bookcrossing")
    pairs = dataset.interactions()
    got = sorted(zip(dataset.users[pairs.user].tolist(), dataset.items[pairs.item].tolist(), strict=True))
    assert got == [("7", "1"), ("8", "1"), ("8", "3")]  # the sampled negative (7, 2) is dropped
    assert dataset.item_names() == ["1", "2", "Emma"]  # items without a title keep their id
    assert dataset.n_items == 3  # book 2 has no positive but stays in the catalogue
    assert len(dataset.kg) == 2


def test_prepare_bookcrossing_keeps_the_sampled_negatives_as_label_0_with_negatives(ripplenet_bx, tmp_path):
    done = run_script("prepare_bookcrossing.py", ripplenet_bx, tmp_path / "bookcrossing", "--negatives")
    assert done.returncode == 0, done.stderr
    assert "3 interactions, 1 rows labelled 0" in done.stdout
    with pytest.warns(DataWarning, match="1 of 4 rows have label 0"):
        dataset = load_dataset(tmp_path / "bookcrossing")
    shown = [(dataset.users[u], dataset.items[i]) for part in ("train", "valid", "test")
             for u, i in zip(dataset.negatives(part).user, dataset.negatives(part).item, strict=True)]  # fmt: skip
    assert shown == [("7", "2")] and len(dataset.interactions()) == 3


@pytest.fixture
def kgin_ifashion(tmp_path: Path) -> Path:
    """KGIN's Alibaba-iFashion layout: 'user item item ...' lines in several files, headed id
    lists, a space-separated KG with items as entities 0..N-1."""
    source = tmp_path / "ifashion"
    source.mkdir()
    (source / "item_list.txt").write_text("org_id remap_id freebase_id\naa 0 aa\nbb 1 bb\ncc 2 cc\ndd 3 dd\n")
    (source / "relation_list.txt").write_text("org_id remap_id\nincluding 0\nhaving-category-9f 1\n")
    (source / "kg_final.txt").write_text("4 0 0\n4 0 1\n1 1 5\n3 1 5\n")  # outfit 4 includes items 0, 1
    (source / "kgin_test.txt").write_text("0 0 1\n1 2\n")
    (source / "shgd_valid.txt").write_text("0 1\n2\n")  # a repeated pair, a user with no items
    (source / "shgd_test.txt").write_text("2 0\n")
    return source


def test_prepare_ifashion_pools_the_files_and_names_relations(kgin_ifashion, tmp_path):
    done = run_script("prepare_ifashion.py", kgin_ifashion, tmp_path / "out" / "ifashion")
    assert done.returncode == 0, done.stderr
    assert "4 interactions of 3 users, 3 of 4 items, 4 triples" in done.stdout

    dataset = load_dataset(tmp_path / "out" / "ifashion")
    pairs = dataset.interactions()
    got = sorted(zip(dataset.users[pairs.user].tolist(), dataset.items[pairs.item].tolist(), strict=True))
    assert got == [("0", "0"), ("0", "1"), ("1", "2"), ("2", "0")]  # (0, 1) once, from two files
    assert sorted(dataset.relations.tolist()) == ["having-category-9f", "including"]
    assert dataset.entities[dataset.item_entity].tolist() == dataset.items.tolist()  # item k is entity k
    assert "3" in dataset.entities.tolist()  # item 3, with no interaction, stays a KG entity


@pytest.fixture
def kgrec_mind(tmp_path: Path) -> Path:
    """KGRec's MIND layout: a tab-separated headed news list (item k is entity k), quoted entity
    labels, relation labels by Wikidata property, 'user item item ...' click lines."""
    source = tmp_path / "mind"
    source.mkdir()
    (source / "item_list.txt").write_text("org_id\tremap_id\tfreebase_id\nN1\t0\tElizabeth II\nN2\t1\tbelly fat\n"
                                          "N3\t2\tParis\n")  # fmt: skip
    (source / "entity_list.txt").write_text('freebase_id remap_id\n"Elizabeth II" 0\n"belly fat" 1\n"Paris" 2\n'
                                            '"United Kingdom" 3\n"Paris" 4\n"Philip" 5\n')  # fmt: skip
    (source / "relation_names.tsv").write_text("wikidata_pid\tremap_id\tlabel_en\tn_triples\n"
                                               "P26\t0\tspouse\t1\nP27\t1\tcountry of citizenship\t1\nP9\t2\t\t1\n")  # fmt: skip
    (source / "kg_final.txt").write_text("0 0 5\n0 1 3\n2 2 4\n")
    (source / "shgd_valid.txt").write_text("u1 0 1\nu2 0 2\n\nu3 1\n")  # a user with no clicks
    (source / "shgd_test.txt").write_text("u1 0\nu3 0\n")  # (u1, 0) again
    return source


def test_prepare_mind_names_entities_and_relations_by_label_and_keeps_news_clicked_enough(kgrec_mind, tmp_path):
    done = run_script("prepare_mind.py", kgrec_mind, tmp_path / "out", "--min-item-users", "2")
    assert done.returncode == 0, done.stderr
    assert "5 interactions of 3 users, 2 of 3 news, 3 triples over 3 relations" in done.stdout

    dataset = load_dataset(tmp_path / "out")
    pairs = dataset.interactions()
    got = sorted(zip(dataset.users[pairs.user].tolist(), dataset.items[pairs.item].tolist(), strict=True))
    assert got == [("u1", "N1"), ("u1", "N2"), ("u2", "N1"), ("u3", "N1"), ("u3", "N2")]  # N3: one user only
    assert dataset.item_features["title"].tolist() == ["Elizabeth II", "belly fat"]
    assert dataset.entities[dataset.item_entity].tolist() == ["Elizabeth II", "belly fat"]
    assert sorted(dataset.relations.tolist()) == ["P9", "country_of_citizenship", "spouse"]  # P9: no English label
    assert {"Philip", "United Kingdom", "Paris (news N3)", "Paris [4]"} <= set(dataset.entities.tolist())  # a shared label
    drawn = run_script("prepare_mind.py", kgrec_mind, tmp_path / "two", "--users", "2", "--min-item-users", "1")
    assert drawn.returncode == 0, drawn.stderr
    assert len(load_dataset(tmp_path / "two").users) == 2


@pytest.fixture
def dkn_news(tmp_path: Path) -> Path:
    """DKN's layout: user, title words, label, entities as id:name;id:name (CRLF line ends)."""
    source = tmp_path / "dkn"
    source.mkdir()
    train = [
        "1\ttom cruise new film\t1\t10:Tom Cruise",
        "1\tweather  turns cold\t0\t20:Weather",
        "2\ttom cruise new film\t0\t10:tom cruise",
        "2\tparis and tom cruise\t1\t30:Paris;10:Tom Cruise",
        "2\tmarkets fall\t1\t",
        "3\tparis texas town\t1\t31:Paris",
    ]
    (source / "raw_train.txt").write_bytes(("\r\n".join(train) + "\r\n").encode())
    (source / "raw_test.txt").write_bytes(b"1\tparis by night\t0\t30:Paris\r\n2\tcruise is back\t1\t10:Cruise\r\n")
    return source


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")  # the label-0 note of each part
def test_prepare_dkn_keeps_each_impression_in_a_given_split_with_new_titles_in_valid_and_test(dkn_news, tmp_path):
    done = run_script("prepare_dkn.py", dkn_news, tmp_path / "dkn", "--valid-share", "0.25")
    assert done.returncode == 0, done.stderr
    dataset = load_dataset(tmp_path / "dkn")
    assert dataset.split == "given"
    title = dict(zip(dataset.items.tolist(), dataset.item_features["title"].tolist(), strict=True))

    def rows(part: str, negatives: bool = False) -> set[tuple[str, str]]:
        pairs = dataset.negatives(part) if negatives else getattr(dataset, part)
        return {(dataset.users[u], title[dataset.items[i]]) for u, i in zip(pairs.user, pairs.item, strict=True)}

    assert rows("test") == {("2", "cruise is back")} and rows("test", negatives=True) == {("1", "paris by night")}
    seen = {t for part in ("train", "valid") for neg in (False, True) for _, t in rows(part, neg)}
    assert seen == {"tom cruise new film", "weather turns cold", "paris and tom cruise", "markets fall", "paris texas town"}
    held = {t for neg in (False, True) for _, t in rows("valid", neg)}
    assert len(held) == 1 and not held & {t for neg in (False, True) for _, t in rows("train", neg)}  # 1 of 5 titles, new
    assert ("2", "tom cruise new film") in rows("train", negatives=True) | rows("valid", negatives=True)
    # entities by id, named by their most frequent surface form; two ids of one name keep apart
    kg = dataset.kg
    mentions = {(dataset.entities[h], dataset.entities[t]) for h, t in zip(kg.head, kg.tail, strict=True)}
    by_title = {}
    for item, entity in mentions:
        by_title.setdefault(title[item], set()).add(entity)
    assert by_title["paris and tom cruise"] == {"Paris [30]", "Tom Cruise"}
    assert by_title["paris texas town"] == {"Paris [31]"} and by_title["cruise is back"] == {"Tom Cruise"}
    assert "markets fall" not in by_title


@pytest.mark.parametrize(
    ("script", "source", "name", "text", "line", "message"),
    [
        ("prepare_ml1m.py", "mkr_ml1m", "test.txt", "0 2\n1 3\n", 2, "item ids must be integers in 0..2"),
        ("prepare_ml1m.py", "mkr_ml1m", "train.txt", "0 0 1\n1 x\n", 2, "item ids must be integers in 0..2"),
        ("prepare_ml1m.py", "mkr_ml1m", "kg_final.txt", "0\t0\t3\n1 2 4\n", 2,
         "expected 3 fields separated by '\\t', found 1"),
        ("prepare_ml1m.py", "mkr_ml1m", "kg_final.txt", "0\t7\t3\n", 1, "relation '7' is not in relation_list.txt"),
        ("prepare_ml1m.py", "mkr_ml1m", "movies.dat", "1::Toy Story (1995)\n", 1,
         "expected 3 fields separated by '::', found 2"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "ratings_final.txt", "7\t1\t1\n7\t4\t1\n", 2,
         "item ids must be integers in 1..3"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "ratings_final.txt", "7\t1\t1\n7\t2\t0\n7\t0\t0\n", 3,
         "item ids must be integers in 1..3"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "ratings_final.txt", "7\t1\t1\n7\t2\n", 2,
         "expected 3 fields separated by '\\t', found 2"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "ratings_final.txt", "7\t1\tyes\n", 1,
         "label must be 1 (positive) or 0 (sampled negative), found 'yes'"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "kg_final.txt", "1\t5\t10\n3 6 11\n", 2,
         "expected 3 fields separated by '\\t', found 1"),
        ("prepare_bookcrossing.py", "ripplenet_bx", "item_index2entity_id_rehashed.txt", "a\t1\nb 2\n", 2,
         "expected 2 fields separated by '\\t', found 1"),
        ("prepare_ifashion.py", "kgin_ifashion", "shgd_test.txt", "2 0\n1 4\n", 2, "item ids must be integers in 0..3"),
        ("prepare_ifashion.py", "kgin_ifashion", "kg_final.txt", "4 0 0\n4 2 1\n", 2,
         "relation '2' is not in relation_list.txt"),
        ("prepare_ifashion.py", "kgin_ifashion", "kg_final.txt", "4 0 0\n4 0\n", 2,
         "expected 3 fields separated by whitespace, found 2"),
        ("prepare_mind.py", "kgrec_mind", "shgd_test.txt", "u1 0\nu3 7\n", 2,
         "item ids must be remap ids of item_list.txt (0..2)"),
        ("prepare_mind.py", "kgrec_mind", "kg_final.txt", "0 0 5\n0 3 3\n", 2,
         "relation '3' is not in relation_names.tsv"),
        ("prepare_mind.py", "kgrec_mind", "kg_final.txt", "0 0 9\n", 1, "entity ids must be remap ids of entity_list.txt"),
        ("prepare_mind.py", "kgrec_mind", "entity_list.txt", 'freebase_id remap_id\n"Paris" x\n', 2,
         "expected a label, a space and an integer id"),
        ("prepare_dkn.py", "dkn_news", "raw_test.txt", "1\tparis\tyes\t30:Paris\n", 1,
         "label must be 1 (clicked) or 0 (shown, not clicked), found 'yes'"),
        ("prepare_dkn.py", "dkn_news", "raw_train.txt", "1\tparis\t1\t30:Paris\n1\tcold\t0\n", 2,
         "expected 4 fields separated by '\\t', found 3"),
        ("prepare_dkn.py", "dkn_news", "raw_train.txt", "1\tparis\t1\tParis:30\n", 1,
         "entities must be 'id:name' separated by ';', found 'Paris:30'"),
    ],
)  # fmt: skip
def test_prepare_scripts_name_the_file_and_line_of_bad_input(request, tmp_path, script, source, name, text, line,
                                                             message):  # fmt: skip
    folder = request.getfixturevalue(source)
    (folder / name).write_text(text)
    done = run_script(script, folder, tmp_path / "out")
    assert done.returncode != 0
    assert f"{folder / name}:{line}: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written
