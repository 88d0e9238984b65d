import pytest

from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataError


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
        "movieId, title, genres, release year), e.g. --text-cols 'title,release year' --seq-cols genres; "
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
