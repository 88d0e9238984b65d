"""Config files and ``--set`` overrides that are almost right: a key written twice, a field
without its section, a misspelt task."""

import pytest

from kgrec.errors import ConfigError
from kgrec.graph import load_recipe
from kgrec.train import load_config
from kgrec.utils.config import load_yaml

SECTIONS = "expected one of: data, eval, graph, model, text, train"


def error(call, *args) -> str:
    with pytest.raises(ConfigError) as raised:
        call(*args)
    return str(raised.value)


def test_a_section_written_twice_is_refused_at_both_places(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  dim: 32\nmodel:\n  trunk: ple\n")  # the second would drop dim: 32
    assert error(load_config, path) == f"{path}:3:1: key 'model' appears again (first at line 1, column 1); merge the two"


def test_a_key_written_twice_inside_a_section_or_a_list_item_is_refused(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("train:\n  lr: 0.01\nmodel:\n  dim: 32\n  trunk: ple\n  dim: 8\n")
    assert error(load_config, path) == f"{path}:6:3: key 'dim' appears again (first at line 4, column 3); merge the two"
    path.write_text("a:\n  - {b: 1, c: 2, b: 3}\n")
    assert error(load_yaml, path) == f"{path}:2:18: key 'b' appears again (first at line 2, column 6); merge the two"


def test_a_recipe_key_written_twice_is_refused(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("kg: true\nmin_degree: 2\nkg: false\n")
    assert error(load_recipe, path) == f"{path}:3:1: key 'kg' appears again (first at line 1, column 1); merge the two"


def test_the_same_key_in_different_mappings_and_merged_keys_are_fine(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("base: &base {dim: 16, trunk: ple}\nmodel:\n  <<: *base\n  dim: 32\ntrain:\n  seed: 1\ndata:\n  seed: 1\n")
    assert load_yaml(path) == {
        "base": {"dim": 16, "trunk": "ple"}, "model": {"dim": 32, "trunk": "ple"}, "train": {"seed": 1}, "data": {"seed": 1},
    }


def test_a_field_without_its_section_suggests_the_section(tmp_path):
    assert error(load_config, None, ["trunk=ple"]) == f"unknown key 'trunk' (did you mean 'model.trunk'?); {SECTIONS}"
    assert error(load_config, None, ["max_epochs=3"]).startswith("unknown key 'max_epochs' (did you mean 'train.max_epochs'?)")
    assert error(load_config, None, ["loss_weights.rating=2"]).startswith(
        "unknown key 'loss_weights' (did you mean 'model.loss_weights'?)"
    )
    # a field of several sections: each of them
    assert error(load_config, None, ["seed=1"]).startswith("unknown key 'seed' (did you mean 'data.seed' or 'train.seed'?)")
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  dim: 8\ntrunk: ple\n")
    assert error(load_config, path, []).startswith(f"{path}:3:1: unknown key 'trunk' (did you mean 'model.trunk'?)")


def test_a_key_that_is_no_field_of_any_section_keeps_the_closest_section():
    assert error(load_config, None, ["modle.trunk=ple"]) == f"unknown key 'modle' (did you mean 'model'?); {SECTIONS}"
    assert error(load_config, None, ["trunck=ple"]) == f"unknown key 'trunck'; {SECTIONS}"


def test_a_misspelt_task_suggests_the_closest():
    tasks = "model.tasks: expected a non-empty subset of ['retrieval', 'rating', 'like', 'kg']"
    message = error(load_config, None, ["model.tasks=[retrieval,raiting,kgg]"])
    assert message == f"{tasks}, got ['retrieval', 'raiting', 'kgg'] (did you mean 'rating'?)"  # the first unknown one
    assert error(load_config, None, ["model.tasks=[retrieval,qqq]"]) == f"{tasks}, got ['retrieval', 'qqq']"
    assert error(load_config, None, ["model.tasks=[rating,rating]"]) == f"{tasks}, got ['rating', 'rating']"
    assert "did you mean" not in error(load_config, None, ["model.tasks=[]"])


def test_a_folder_or_a_binary_file_given_as_config_is_named_as_such(tmp_path):
    assert error(load_config, tmp_path) == f"{tmp_path}: is a folder; expected a YAML config file"  # before: "not found"
    binary = tmp_path / "last.ckpt"
    binary.write_bytes(b"model:\n  dim: 8\nPK\x03\x04\xff\xfe")
    assert error(load_config, binary) == (
        f"{binary}:3:5: byte 0xff is not UTF-8; expected a YAML config file, which is text"
    )  # before: a UnicodeDecodeError traceback
    assert error(load_recipe, tmp_path).endswith("is a folder; expected a YAML recipe file")
