import pytest

from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataError, KgrecError


@pytest.fixture
def csvs(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4.5,100\n1,20,3,101\n2,10,5,102\n")
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n10,"Heat, the film",Crime|Film Noir\n20,Up,Animation\n')
    (tmp_path / "triples.tsv").write_text("head\trelation\ttail\nQ1\tdirected_by\tQ9\nQ2\tdirected_by\tQ9\n")
    (tmp_path / "links.csv").write_text("item_id,entity_id\n10,Q1\n20,Q2\n")
    return tmp_path


def spec(csvs, **kwargs):
    base = dict(
        interactions=csvs / "ratings.csv", out=csvs / "out" / "mine", user_col="userId", item_col="movieId",
        rating_col="rating", time_col="ts",
    )  # fmt: skip
    return ImportSpec(**{**base, **kwargs})


def test_import_writes_a_dataset_that_loads(csvs):
    out = import_csv(
        spec(csvs, items=csvs / "movies.csv", text_cols=("title",), seq_cols=("genres",),
             kg=csvs / "triples.tsv", links=csvs / "links.csv")
    )  # fmt: skip
    ds = load_dataset(out)
    assert (ds.n_users, ds.n_items, len(ds.interactions())) == (2, 2, 3)
    assert ds.item_names() == ["Heat, the film", "Up"]
    assert ds.item_features["genres"][0] == ["Crime", "Film_Noir"]
    assert len(ds.kg) == 2 and (ds.item_entity >= 0).all()


def test_missing_column_lists_the_header(csvs):
    with pytest.raises(DataError, match=r"ratings.csv:1: missing column\(s\) stars; the header has: userId"):
        import_csv(spec(csvs, rating_col="stars"))
    assert not (csvs / "out" / "mine").exists()


def test_non_numeric_rating_is_located(csvs):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,1\n1,20,good,2\n")
    with pytest.raises(DataError, match=r"ratings.csv:3: column 'rating': 'good' is not a number"):
        import_csv(spec(csvs))


def test_kg_without_links_is_refused(csvs):
    with pytest.raises(DataError, match="--kg needs --links"):
        import_csv(spec(csvs, kg=csvs / "triples.tsv"))


def test_links_without_kg_are_refused(csvs):
    with pytest.raises(DataError, match=r"links.csv: --links needs --kg: the links join KG triples to items, and nothing else reads them$"):
        import_csv(spec(csvs, links=csvs / "links.csv"))
    assert not (csvs / "out" / "mine").exists()


def test_items_without_text_or_seq_columns_are_refused_with_a_hint_from_the_header(csvs):
    (csvs / "movies.csv").write_text("movieId,title,genres,release year\n10,Heat,Crime|Thriller,1995\n20,Up,Animation,2009\n")
    with pytest.raises(DataError) as error:
        import_csv(spec(csvs, items=csvs / "movies.csv"))
    assert str(error.value) == (
        f"{csvs / 'movies.csv'}: give --text-cols and/or --seq-cols to choose its item columns (the header has: "
        "movieId, title, genres, release year), e.g. --text-cols 'title,release year' --seq-cols genres "
        "(a guess from its values: --seq-cols for lists split on '|' and for short values that items share (3 words or "
        "fewer, at most half as many distinct values as rows), such as a category, a brand or tags, which become item "
        "attributes; --text-cols for free text such as a title or a description); "
        "without them mine.item would hold the item ids alone"
    )
    assert not (csvs / "out" / "mine").exists()
    (csvs / "ids.csv").write_text("movieId\n10\n20\n30\n")  # ids alone: items beyond the interactions, nothing dropped
    assert load_dataset(import_csv(spec(csvs, items=csvs / "ids.csv"))).n_items == 3


def test_short_row_is_located(csvs):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,1\n1,20,3\n")
    with pytest.raises(DataError, match=r"ratings.csv:3: fewer fields than the 4 header columns"):
        import_csv(spec(csvs))


def test_numbers_python_reads_load_as_the_same_numbers(csvs):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,1_000\n1,20,３,2\n", encoding="utf-8")
    ds = load_dataset(import_csv(spec(csvs)))
    assert sorted(ds.interactions().rating.tolist()) == [3.0, 4.0]
    assert sorted(ds.interactions().timestamp.tolist()) == [2.0, 1000.0]


def test_times_are_unix_seconds_or_iso_8601_dates(csvs):
    (csvs / "ratings.csv").write_text(
        "userId,movieId,rating,ts\n1,10,4,2020-01-01\n1,20,3,2020-01-01T01:00:00Z\n2,10,5,2020-01-01 03:00:00+02:00\n"
        "2,20,1,1577836800.5\n"
    )
    ds = load_dataset(import_csv(spec(csvs)))
    assert sorted(ds.interactions().timestamp.tolist()) == [1577836800.0, 1577836800.5, 1577840400.0, 1577840400.0]
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,20200101\n1,20,3,2020-01-01T00:00:00.500\n")
    ds = load_dataset(import_csv(spec(csvs, out=csvs / "out" / "plain")))  # a plain number is seconds, never a date
    assert sorted(ds.interactions().timestamp.tolist()) == [20200101.0, 1577836800.5]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1,10,4,2020-01-01\n1,20,3,01/02/2020\n", r"ratings.csv:3: column 'ts': '01/02/2020' is not a number \(Unix seconds\) or an ISO 8601"),
        ("1,10,4,2020-02-31\n", r"ratings.csv:2: column 'ts': '2020-02-31' is not a valid date or time \(day is out"),
        ("1,10,2020-01-01,1\n", r"ratings.csv:2: column 'rating': '2020-01-01' is not a number$"),  # only times are dates
    ],
)
def test_a_time_that_is_neither_seconds_nor_a_date_is_located(csvs, rows, message):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n" + rows)
    with pytest.raises(DataError, match=message):
        import_csv(spec(csvs))


def test_empty_rating_is_located_in_the_csv(csvs):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,1\n1,20,,2\n")
    with pytest.raises(DataError, match=r"ratings.csv:3: column 'rating': empty: expected a number"):
        import_csv(spec(csvs))


def test_a_problem_the_loader_finds_is_located_in_the_csv_and_keeps_the_old_folder(csvs):
    out = import_csv(spec(csvs))  # a good import first
    before = (out / "mine.inter").read_bytes()
    (csvs / "links.csv").write_text("item_id,entity_id\n10,Q1\n\n99,Q2\n")  # a blank line: line 4 of the CSV
    with pytest.raises(DataError, match=r"links.csv:4: column 'item_id': item '99' is not an item of the dataset"):
        import_csv(spec(csvs, kg=csvs / "triples.tsv", links=csvs / "links.csv"))
    assert (out / "mine.inter").read_bytes() == before and not (out / "mine.link").exists()
    (csvs / "movies.csv").write_text("movieId,title\n10,Heat\n10,Up\n")
    with pytest.raises(DataError, match=r"movies.csv:3: column 'movieId': '10' appears again"):
        import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",)))


def test_an_import_never_deletes_files_it_did_not_write(csvs):
    with pytest.raises(DataError, match=r"holds 'links.csv', 'movies.csv', 'ratings.csv' and 1 more, which the import would delete"):
        import_csv(spec(csvs, out=csvs))  # the folder of the CSVs themselves
    assert (csvs / "ratings.csv").exists()
    out = import_csv(spec(csvs))
    assert import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",))) == out  # an earlier import is replaced
    assert (out / "mine.item").exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"mine: holds 'notes.txt', which the import would delete"):
        import_csv(spec(csvs))
    assert (out / "notes.txt").read_text() == "mine"


def test_a_header_read_as_one_field_names_the_separator_it_holds(csvs):
    (csvs / "ratings.csv").write_text("userId;movieId;rating;ts\n1;10;4;1\n")
    with pytest.raises(DataError, match=r"is the separator ';'\? give --sep ';'"):
        import_csv(spec(csvs))
    (csvs / "ratings.csv").write_text("userId\tmovieId\trating\tts\n1\t10\t4\t1\n")
    with pytest.raises(DataError, match=r"is the separator tab\? give --sep tab"):
        import_csv(spec(csvs))
    assert load_dataset(import_csv(spec(csvs, sep="tab"))).n_users == 1


def test_items_whose_ids_meet_none_of_the_interactions_are_refused_at_their_csv(csvs):
    (csvs / "movies.csv").write_text("movieId,title\nM10,Heat\nM20,Up\nM30,Jaws\n")
    with pytest.raises(DataError) as error:
        import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",)))
    assert str(error.value) == (
        f"{csvs / 'movies.csv'}: column 'movieId': none of its 3 item ids occurs in the interactions "
        f"({csvs / 'ratings.csv'}, column 'movieId'): this file has 'M10', 'M20', 'M30', the interactions '10', '20'"
    )
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,tt1,4,1\n1,tt2,3,2\n")
    (csvs / "movies.csv").write_text("movieId,title\nTT2,Heat\nXX,Up\n")
    with pytest.raises(DataError, match=r"'tt1', 'tt2'; 1 of them match when letter case is ignored \('TT2' here is 'tt2' there\)"):
        import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",)))
    assert not (csvs / "out" / "mine").exists()


def test_items_with_extra_rows_or_missing_some_interacted_items_import(csvs):
    (csvs / "movies.csv").write_text("movieId,title\n10,Heat\n99,Jaws\n")  # 20 has no row, 99 no interaction
    ds = load_dataset(import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",))))
    assert ds.item_names() == ["Heat", "Jaws", "20"]


def test_links_whose_entities_are_in_no_triple_are_refused_at_their_csv(csvs):
    (csvs / "links.csv").write_text("item_id,entity_id\n10,q1\n20,q2\n")
    with pytest.raises(DataError) as error:
        import_csv(spec(csvs, kg=csvs / "triples.tsv", links=csvs / "links.csv"))
    assert str(error.value) == (
        f"{csvs / 'links.csv'}: column 'entity_id': none of its 2 entities occurs in the KG ({csvs / 'triples.tsv'}, "
        "columns 'head', 'tail'): this file has 'q1', 'q2', the KG 'Q1', 'Q2', 'Q9'; 2 of them match when letter case "
        "is ignored ('q1' here is 'Q1' there): write the ids the same way in both files"
    )
    (csvs / "links.csv").write_text("item_id,entity_id\n10,Q9\n20,Q7\n")  # Q9 is a tail; Q7 in no triple: fine
    assert load_dataset(import_csv(spec(csvs, kg=csvs / "triples.tsv", links=csvs / "links.csv"))).items_in_kg().tolist() == [True, False]


def test_item_column_names_become_names_a_template_can_use(csvs):
    from kgrec.text.templates import default_template, item_texts

    (csvs / "movies.csv").write_text('movieId,Movie Title,Genre List,Year\n10,"Heat, the film",Crime|Film Noir,1995\n20,Up,Animation,2009\n')
    notes = []
    out = import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("Movie Title", "Year"), seq_cols=("Genre List",), note=notes.append))
    assert notes == ["wrote item columns 'Movie Title' as movie_title, 'Year' as year, 'Genre List' as genre_list (lower "
                     "case, '_' for other characters): the names a text template or config uses"]  # fmt: skip
    ds = load_dataset(out)
    assert list(ds.item_feature_types) == ["movie_title", "year", "genre_list"] and ds.title_column() == "movie_title"
    assert default_template(ds) == "{movie_title} ({year}). Genre list: {genre_list}"
    assert item_texts(ds)[0] == "Heat, the film (1995). Genre list: Crime, Film_Noir"
    (csvs / "movies.csv").write_text("movieId,Title\n10,Heat\n20,Up\n")
    notes.clear()
    ds = load_dataset(import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("Title",), note=notes.append)))
    assert ds.item_names() == ["Heat", "Up"] and len(notes) == 1
    notes.clear()
    import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("Title",), note=notes.append, out=csvs / "out" / "b"))
    (csvs / "plain.csv").write_text("movieId,title\n10,Heat\n")
    import_csv(spec(csvs, items=csvs / "plain.csv", text_cols=("title",), note=notes.append, out=csvs / "out" / "c"))
    assert len(notes) == 1  # names kept as they are say nothing


@pytest.mark.parametrize(
    ("header", "text_cols", "seq_cols", "message"),
    [
        ("movieId,Movie Title,movie title", ("Movie Title",), ("movie title",),
         r"movies.csv:1: columns 'Movie Title' and 'movie title' would both be written as movie_title"),
        ("movieId,title,x", ("title",), ("title",), r"movies.csv:1: column 'title' is given twice in --text-cols/--seq-cols"),
        ("movieId,Item ID,x", ("Item ID",), (), r"movies.csv:1: column 'Item ID' would be written as item_id, the name of the item ids"),
        ("movieId,???,x", ("???",), (), r"movies.csv:1: column '\?\?\?' has no letter or digit to name it by"),
    ],
)  # fmt: skip
def test_item_columns_that_would_share_a_name_are_refused(csvs, header, text_cols, seq_cols, message):
    (csvs / "movies.csv").write_text(f"{header}\n10,a,b\n")
    with pytest.raises(DataError, match=message):
        import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=text_cols, seq_cols=seq_cols))
    assert not (csvs / "out" / "mine").exists()


def test_a_separator_of_several_characters_splits_each_line(csvs):
    (csvs / "ratings.dat").write_text('userId::movieId::rating::ts\n1::10::4::1\n\n2::"20"::3::2\n')
    ds = load_dataset(import_csv(spec(csvs, interactions=csvs / "ratings.dat", sep="::")))
    assert ds.items.tolist() == ["10", '"20"'] and len(ds.interactions()) == 2  # no quoting
    (csvs / "ratings.dat").write_text("userId::movieId::rating::ts\n1::10::4::1\n1::20::3\n")
    with pytest.raises(DataError, match=r"ratings.dat:3: fewer fields than the 4 header columns"):
        import_csv(spec(csvs, interactions=csvs / "ratings.dat", sep="::"))
    with pytest.raises(DataError, match=r"ratings.dat:1: missing column.*\(one field: is the separator '::'\? give --sep '::'\)"):
        import_csv(spec(csvs, interactions=csvs / "ratings.dat"))


def test_empty_separators_are_refused_in_one_line(csvs, capsys):
    from kgrec.cli.main import main

    base = ["data", "import", "--interactions", str(csvs / "ratings.csv"), "--user-col", "userId", "--item-col", "movieId",
            "--out", str(csvs / "out" / "mine")]  # fmt: skip
    assert main([*base, "--sep", ""]) == 2
    assert capsys.readouterr().err == "kgrec: error: --sep is empty: expected the field separator, e.g. ',', ';', tab or '::'\n"
    assert main([*base, "--items", str(csvs / "movies.csv"), "--text-cols", "title", "--seq-cols", "genres", "--seq-sep", ""]) == 2
    assert capsys.readouterr().err == (
        f"kgrec: error: {csvs / 'movies.csv'}: --seq-sep is empty: expected the separator between the values of a "
        "--seq-cols column, e.g. '|'\n"
    )
    assert not (csvs / "out" / "mine").exists()


def test_iso_times_take_any_number_of_fractional_digits(csvs):
    (csvs / "ratings.csv").write_text(
        "userId,movieId,rating,ts\n1,10,4,2020-01-31T12:30:00.5Z\n1,20,3,2020-01-31 12:30:00.25+01:00\n"
        "2,10,5,2020-01-31T12:30:00.123456789\n"
    )
    ds = load_dataset(import_csv(spec(csvs)))
    noon = 1580473800.0  # 2020-01-31T12:30:00Z
    assert sorted(ds.interactions().timestamp.tolist()) == pytest.approx([noon - 3600 + 0.25, noon + 0.123456789, noon + 0.5], abs=1e-6)


def test_a_column_the_header_names_twice_is_refused_not_read_from_its_last_copy(csvs):
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts,movieId\n1,10,4,1,99\n2,20,3,2,98\n")
    with pytest.raises(DataError, match=r"ratings.csv:1: column 'movieId': the header names this column 2 times "
                                        r"\(fields 2 and 5\): expected each column once"):  # fmt: skip
        import_csv(spec(csvs))  # the items were read as 99 and 98
    assert not (csvs / "out" / "mine").exists()
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts,note,note\n1,10,4,1,a,b\n")
    assert load_dataset(import_csv(spec(csvs))).n_items == 1  # a column the import does not read may repeat


def test_bytes_that_are_not_utf8_are_located_at_their_line_and_byte(csvs):
    (csvs / "ratings.csv").write_bytes(b"userId,movieId,rating,ts\n1,10,4,1\n2,caf\xe9,3,2\n")  # Latin-1
    with pytest.raises(DataError, match=r"ratings.csv:3: not valid UTF-8 at byte 6 of the line \(invalid continuation "
                                        r"byte\): expected UTF-8 text"):  # fmt: skip
        import_csv(spec(csvs))


def test_a_repeated_item_names_its_first_csv_line_too(csvs):
    (csvs / "movies.csv").write_text('movieId,title\n\n\n10,"Heat, the film"\n\n20,Up\n10,Heat again\n')
    with pytest.raises(DataError, match=r"movies.csv:7: column 'movieId': '10' appears again \(first on line 4\)"):
        import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",)))  # first on line 2 of the .item


def test_out_as_the_current_folder_is_refused_in_one_line(csvs, monkeypatch):
    """``--out .`` named the dataset '' and failed on a temporary folder; written, the swap would
    delete the folder under the user's shell. ``data/..``-like paths are named after the folder."""
    folder = csvs / "shop"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for out in (".", "..", str(folder)):
        with pytest.raises(KgrecError, match="this command runs in.*name a new folder"):
            import_csv(spec(csvs, out=out))
    assert list(folder.iterdir()) == []
    out = import_csv(spec(csvs, out=str(folder / "data" / "shop2" / "sub" / "..")))
    assert out == folder / "data" / "shop2" and load_dataset(out).name == "shop2"


def test_an_id_with_a_tab_or_line_break_is_refused_not_merged_with_the_id_of_spaces(csvs):
    """Atomic files are tab-separated: written as a space, user '1<tab>2' became user '1 2'."""
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1\t2,10,4,1\n1 2,20,3,2\n")
    with pytest.raises(DataError, match=r"ratings.csv:2: column 'userId': id '1\\t2' holds a tab or line break"):
        import_csv(spec(csvs))
    (csvs / "ratings.csv").write_text('userId,movieId,rating,ts\n1,"1\n0",4,1\n')
    with pytest.raises(DataError, match=r"ratings.csv:2: column 'movieId': id '1\\n0' holds a tab or line break"):  # the row's first line
        import_csv(spec(csvs))
    (csvs / "movies.csv").write_text('movieId,title\n10,"Heat,\nthe film"\n')  # a title may span lines
    (csvs / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4,1\n")
    assert load_dataset(import_csv(spec(csvs, items=csvs / "movies.csv", text_cols=("title",)))).item_names() == ["Heat, the film"]
