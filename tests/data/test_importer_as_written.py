"""``kgrec data import`` on CSV files as users write them: a space after the comma, multi-line
quoted fields, blank or header-only files, repeated interactions, multi-valued cells."""

import pytest

from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv
from kgrec.errors import DataError


def spec(tmp_path, interactions: str, **kwargs) -> ImportSpec:
    (tmp_path / "r.csv").write_text(interactions, encoding="utf-8")
    return ImportSpec(interactions=tmp_path / "r.csv", out=tmp_path / "out" / "mine", **kwargs)


def test_a_space_after_the_comma_neither_hides_a_column_nor_keeps_the_quotes(tmp_path):
    # the header was 'userId', ' movieId': "missing column(s) movieId"; the id was '"a b"', quotes and all
    ds = load_dataset(import_csv(spec(tmp_path, 'userId, movieId, rating\n1, "a b", 4\n1, c, 5\n', user_col="userId",
                                      item_col="movieId", rating_col="rating")))  # fmt: skip
    assert ds.items.tolist() == ["a b", "c"] and sorted(ds.interactions().rating.tolist()) == [4.0, 5.0]


def test_a_row_of_several_lines_is_located_at_the_line_it_starts_on(tmp_path):
    (tmp_path / "movies.csv").write_text('item_id,title\na,"two\nlines"\nb,x\na,y\n')
    with pytest.raises(DataError, match=r"movies.csv:5: column 'item_id': 'a' appears again \(first on line 2\)"):
        import_csv(spec(tmp_path, "user_id,item_id\n1,a\n", items=tmp_path / "movies.csv", text_cols=("title",)))
    with pytest.raises(DataError, match=r"r.csv:2: column 'rating': 'zz' is not a number"):
        import_csv(spec(tmp_path, 'user_id,item_id,note,rating\n1,a,"x\ny",zz\n', rating_col="rating"))


def test_repeated_interactions_are_counted_in_a_note(tmp_path):
    notes: list[str] = []
    out = import_csv(spec(tmp_path, "u,i,r,t\n1,a,3,1\n1,a,5,2\n2,b,4,3\n1,a,2,0\n", user_col="u", item_col="i",
                          rating_col="r", time_col="t", note=notes.append))  # fmt: skip
    assert len(load_dataset(out).interactions()) == 2
    assert notes == [f"{tmp_path / 'r.csv'}: 2 of its 4 rows repeat a (user, item) pair; only the latest of each "
                     "(by time, then by line) is an interaction"]  # fmt: skip
    notes.clear()
    import_csv(spec(tmp_path, "u,i\n1,a\n1,b\n1,a\n", user_col="u", item_col="i", note=notes.append))
    assert notes == [f"{tmp_path / 'r.csv'}: 1 of its 3 rows repeats a (user, item) pair; only the last of each is an interaction"]


def test_an_item_file_with_a_header_alone_is_checked_for_its_columns(tmp_path):
    (tmp_path / "movies.csv").write_text("id,name\n")  # imported as an empty item file
    with pytest.raises(DataError, match=r"movies.csv:1: missing column\(s\) item_id, title; the header has: id, name"):
        import_csv(spec(tmp_path, "user_id,item_id\n1,a\n", items=tmp_path / "movies.csv", text_cols=("title",)))


def test_a_blank_first_line_is_refused_as_a_missing_header(tmp_path):
    # it was "r.csv:2: more fields than the 0 header columns"
    with pytest.raises(DataError, match=r"r.csv:1: blank line: expected a header row naming the columns$"):
        import_csv(spec(tmp_path, "\nuser_id,item_id\n1,2\n"))


def test_a_tab_or_line_break_inside_a_multi_valued_value_does_not_split_it(tmp_path):
    (tmp_path / "movies.csv").write_text('item_id,genres\na,"Film\tNoir|Science\nFiction"\n')
    ds = load_dataset(import_csv(spec(tmp_path, "user_id,item_id\n1,a\n", items=tmp_path / "movies.csv",
                                      seq_cols=("genres",))))  # fmt: skip
    assert ds.item_features["genres"][0] == ["Film_Noir", "Science_Fiction"]  # was ['Film', 'Noir', 'Science', 'Fiction']


def test_a_line_of_spaces_at_the_end_is_a_blank_line(tmp_path):
    # it was "r.csv:3: fewer fields than the 2 header columns"
    ds = load_dataset(import_csv(spec(tmp_path, "user_id,item_id\n1,2\n   \n")))
    assert len(ds.interactions()) == 1


@pytest.mark.parametrize(("options", "said"), [
    ({"user_col": "id", "item_col": "id"}, "--user-col and --item-col both name column 'id'"),
    ({"user_col": "u", "item_col": "i", "rating_col": "t", "time_col": "t"}, "--rating-col and --time-col both name column 't'"),
])  # fmt: skip
def test_two_options_naming_one_column_are_refused(tmp_path, options, said):
    # a user id read as the item id too (every user interacted with themselves) imported without a word
    with pytest.raises(DataError, match=rf"r.csv: {said}; expected a column each"):
        import_csv(spec(tmp_path, "id,u,i,t\n1,1,a,5\n2,2,b,4\n", **options))
    assert not (tmp_path / "out").exists()
