"""The CSV import called from Python (a notebook), not through ``kgrec data import``."""

import os
import textwrap
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.data.importer import ImportSpec, import_csv, import_dataset


@pytest.fixture
def shop(tmp_path):
    (tmp_path / "clicks.csv").write_text("user,item,time\nu1,a,2020-01-01\nu2,b,2020-01-02\nu1,b,2020-01-03\n")
    (tmp_path / "products.csv").write_text("item,title,description,tags\na,Alpha,A red thing,x|y\nb,Beta,A blue one,y\n")
    return tmp_path


class _FsPath:
    """An ``os.PathLike`` that is not a :class:`~pathlib.Path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_files_given_as_str_or_pathlike_import(shop, monkeypatch):
    monkeypatch.chdir(shop)
    spec = ImportSpec(interactions="clicks.csv", out="data/music", items=_FsPath(shop / "products.csv"),
                      user_col="user", item_col="item", text_cols=("title",))  # fmt: skip
    assert (spec.interactions, spec.out, spec.items) == (Path("clicks.csv"), Path("data/music"), shop / "products.csv")
    dataset = load_dataset(import_csv(spec))
    assert (dataset.name, dataset.n_users, dataset.n_items) == ("music", 2, 2)


def test_a_string_of_columns_is_split_on_commas_as_the_options_are(shop):
    spec = ImportSpec(interactions=shop / "clicks.csv", out=shop / "music", items=shop / "products.csv", user_col="user",
                      item_col="item", text_cols=" title, description,", seq_cols="tags")  # fmt: skip
    assert (spec.text_cols, spec.seq_cols) == (("title", "description"), ("tags",))
    dataset = import_dataset(spec)
    assert list(dataset.item_features) == ["title", "description", "tags"]
    assert dataset.item_features["description"][0] == "A red thing"


def test_help_of_import_csv_holds_an_example_that_runs(shop, monkeypatch):
    doc = import_csv.__doc__ or ""
    assert "::\n" in doc, "import_csv's docstring has no example"
    block = doc.split("::\n", 1)[1]
    code = textwrap.dedent("\n".join(line for line in block.splitlines() if not line.strip() or line.startswith("        ")))
    (shop / "clicks.csv").write_text("user,item,time\nu1,a,2020-01-01\nu2,b,2020-01-02\n")
    (shop / "products.csv").write_text("item,title,tags\na,Alpha,x|y\nb,Beta,y\n")
    monkeypatch.chdir(shop)
    namespace: dict = {}
    exec(code, namespace)  # the example as help(import_csv) shows it
    assert os.path.isfile(shop / "data" / "shop" / "shop.item")
    assert namespace["dataset"].n_items == 2
