"""Config files and ``--set`` overrides (a helper's audit): an empty section, a section that is no
mapping, a huge number, a date that is none, a recursive alias, a section given as a mapping."""

import pytest

from kgrec.train import load_config
from kgrec.utils.config import key_positions, load_yaml
from tests.utils.test_config_loading import error


def test_a_field_is_set_in_a_section_the_file_leaves_empty(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  # dim: 32\ntrain:\n  lr: 0.01\n")  # was: "'model' is not a section"
    config = load_config(path, ["model.dim=8"])
    assert config.model.dim == 8 and config.train.lr == 0.01
    assert load_config(None, ["model=null", "model.dim=8"]).model.dim == 8


@pytest.mark.parametrize("value", ["false", "0", "[]", "''"])
def test_a_section_that_is_no_mapping_is_refused(tmp_path, value):
    path = tmp_path / "my.yaml"
    path.write_text(f"model: {value}\n")  # was: read as an empty section, the defaults
    assert error(load_config, path).startswith(f"{path}:1:1: model: expected a mapping, found ")


def test_an_integer_too_large_for_a_float_field_is_refused(tmp_path):
    huge = "1" + "0" * 400
    assert error(load_config, None, [f"train.lr={huge}"]) == (
        "train.lr: expected float, found an integer of 401 digits, too large for a float"
    )  # was: an OverflowError traceback
    path = tmp_path / "my.yaml"
    path.write_text(f"train:\n  lr: {huge}\n")
    assert error(load_config, path).startswith(f"{path}:2:3: train.lr: expected float")


def test_a_value_that_looks_like_a_date_but_is_none_is_refused_at_its_place(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("data:\n  name: 2024-02-30\n")  # was: a ValueError traceback
    assert error(load_yaml, path) == (
        f"{path}:2:9: not valid YAML ('2024-02-30' is no valid timestamp (day is out of range for "
        "month); quote it for text)"
    )
    path.write_text("train:\n  lr: 0x_\n")
    assert error(load_yaml, path).startswith(f"{path}:2:7: not valid YAML ('0x_' is no valid int (")


def test_an_override_that_looks_like_a_date_but_is_none_is_text_or_refused():
    assert load_config(None, ["data.name=2024-13-01"]).data.name == "2024-13-01"  # a text field: verbatim
    assert error(load_config, None, ["train.seed=2024-13-01"]) == "train.seed: expected int, found '2024-13-01'"


def test_a_recursive_alias_does_not_recurse_forever(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("model: &m\n  dim: *m\n")  # was: a RecursionError traceback
    assert error(load_config, path).startswith(f"{path}:2:3: model.dim: expected int, found ")
    path.write_text("a: &x [*x]\n")
    assert error(load_config, path).startswith(f"{path}:1:1: unknown key 'a'")


def test_key_positions_of_a_file_that_is_not_text_are_empty(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"model:\n  dim: 8\nPK\x03\x04\xff\xfe")  # its docstring: empty for a file that does not parse
    assert key_positions(path) == {}


def test_a_section_given_as_a_mapping_leaves_the_file_s_other_fields_located(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("train:\n  lr: 0.01\nmodel:\n  dim: big\n")
    # model={trunk: ple} sets model.trunk only; model.dim is the file's, so its error says where
    assert error(load_config, path, ["model={trunk: ple}"]) == f"{path}:4:3: model.dim: expected int, found 'big'"
    assert error(load_config, path, ["model={dim: bigger}"]) == "model.dim: expected int, found 'bigger'"
