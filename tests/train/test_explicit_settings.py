"""A field the config file or ``--set`` gives wins over ``fit_defaults``, even at its default value.

``fit_defaults`` changed every field whose value equalled the default, so a value written out
that happened to be the default could not be told from one left out: on ratings from 2 to 10,
``--set model.like_threshold=4`` (or ``like_threshold: 4`` in the file) became 8, with a note,
and no way of writing 4 kept it. ``load_config`` now records the fields it was given
(``RunConfig.given``) and ``fit_defaults`` leaves them alone.
"""

import dataclasses
from pathlib import Path

import pytest
import yaml

from kgrec.errors import ConfigError
from kgrec.train import load_config, load_data, prepare
from kgrec.train.config import RunConfig, config_yaml
from kgrec.train.defaults import fit_defaults
from tests.train.test_defaults import CLICKS, _rated

ML100K = Path(__file__).resolve().parents[2] / "scripts" / "configs" / "ml-100k.yaml"
LIKE_NOTE = "rated's training ratings run from 2 to 10: a like is a rating >= 8"


@pytest.fixture
def two_to_ten(atomic) -> Path:
    """Ratings on a 2-10 scale: the default like threshold, 4, is moved to 8 unless given."""
    return atomic(name="rated", inter=_rated([2, 4, 6, 8, 10]))


def _fit(path: str | Path | None, overrides: list[str]) -> tuple[RunConfig, list[str]]:
    config = load_config(path, overrides)
    return fit_defaults(config, load_data(config))


@pytest.mark.parametrize("value", ["4", "4.0"])
def test_a_like_threshold_given_with_set_is_kept_at_the_default_value(two_to_ten, value):
    """It became 8, with a note: --set model.like_threshold=4 could not keep 4."""
    fitted, notes = _fit(None, [f"data.path={two_to_ten}", f"model.like_threshold={value}"])
    assert fitted.model.like_threshold == 4.0 and "like" in fitted.model.tasks
    assert not [n for n in notes if "like" in n]


def test_a_like_threshold_written_in_the_config_file_is_kept_at_the_default_value(two_to_ten, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("model:\n  dim: 16\n  like_threshold: 4   # 4 on 2-10, meant\n")
    fitted, notes = _fit(mine, [f"data.path={two_to_ten}"])
    assert fitted.model.like_threshold == 4.0 and not [n for n in notes if "like" in n]
    prepare(fitted, load_data(fitted), progress=False)  # and 4 trains: ratings on both sides of it


def test_a_field_left_out_is_still_fitted_with_its_note(two_to_ten, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("model:\n  dim: 16\n")  # the model section, without like_threshold
    for path, overrides in ((None, []), (mine, []), (None, ["model.dim=16", "model.tasks=[retrieval,rating,like]"])):
        fitted, notes = _fit(path, [f"data.path={two_to_ten}", *overrides])
        assert fitted.model.like_threshold == 8.0
        assert [n for n in notes if "like" in n] == [f"{LIKE_NOTE} (model.like_threshold: three quarters of the way up, as 4 is on 1-5)"]


def test_a_section_given_as_a_mapping_gives_the_fields_inside_it(two_to_ten, tmp_path):
    config = load_config(None, [f"data.path={two_to_ten}", "model={dim: 32, like_threshold: 4}"])
    assert {"model.dim", "model.like_threshold"} <= config.given and "model" not in config.given
    assert "model.tasks" not in config.given
    assert fit_defaults(config, load_data(config))[0].model.like_threshold == 4.0
    mine = tmp_path / "mine.yaml"
    mine.write_text("model:\n  like_threshold: 4\ntrain: null\n")  # an empty section gives nothing
    config = load_config(mine, [f"data.path={two_to_ten}", "model.loss_weights={retrieval: 1, like: 0.5}"])
    assert config.given == {"data.path", "model.like_threshold", "model.loss_weights"}


def test_the_built_in_defaults_give_nothing_and_the_record_is_no_config_field(two_to_ten):
    assert load_config(None).given == frozenset() and RunConfig().given == frozenset()
    config = load_config(None, [f"data.path={two_to_ten}", "model.like_threshold=4"])
    assert config.given == {"data.path", "model.like_threshold"}
    assert config == load_config(None, [f"data.path={two_to_ten}"])  # not compared
    assert "given" not in config_yaml(config) and "given" not in repr(config)  # not written, not shown
    assert [f.name for f in dataclasses.fields(RunConfig)] == ["data", "graph", "text", "model", "train", "eval"]
    assert dataclasses.replace(config, model=dataclasses.replace(config.model, dim=8)).given == config.given
    with pytest.raises(ConfigError, match="unknown key 'given'"):  # nor can a file write it
        load_config(None, ["given=[model.dim]"])


@pytest.mark.parametrize(
    ("given", "refused"),
    [  # what a value other than the default is told too: the model's checks say what is missing
        ("model.tasks=[retrieval,rating,like,kg]", r"model.tasks has rating, like but clicks has no rating column"),
        ("model.use_graph=true", r"model.use_graph needs the graph's relations, but the graph .* has no triples"),
        ("model.id_dropout=0.1", r"model.id_dropout > 0 needs use_item_id and use_text or use_graph"),
    ],
)
def test_a_default_given_that_the_data_cannot_feed_is_kept_and_refused_with_the_reason(atomic, given, refused):
    config = load_config(None, [f"data.path={atomic(name='clicks', inter=CLICKS)}", "model.use_text=false", given])
    data = load_data(config)
    field = given.partition("=")[0].partition(".")[2]
    with pytest.raises(ConfigError, match=refused):  # id_dropout: by the model section, as fitting switches the graph off
        fitted, _ = fit_defaults(config, data)
        assert getattr(fitted.model, field) == getattr(config.model, field)  # kept as given
        prepare(fitted, data, progress=False)


def test_fitting_again_and_reading_the_run_s_config_back_change_nothing(two_to_ten, tmp_path):
    """A resumed run fits its config again and compares it with the run folder's config.yaml."""
    for overrides in (["model.like_threshold=4"], []):
        config = load_config(None, [f"data.path={two_to_ten}", *overrides])
        data = load_data(config)
        fitted, _ = fit_defaults(config, data)
        again, notes = fit_defaults(fitted, data)
        assert again == fitted and again.given == fitted.given and notes == []
        saved = tmp_path / "config.yaml"
        saved.write_text(config_yaml(fitted))
        read_back = load_config(saved)  # as kgrec eval and a resume from the file read it: every field given
        assert fit_defaults(read_back, data) == (fitted, [])


def test_kgrec_train_print_config_keeps_a_given_default(two_to_ten, capsys):
    from kgrec.cli.main import main

    assert main(["train", "--data", str(two_to_ten), "--config", "none", "--print-config", "--set", "model.like_threshold=4"]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["model"]["like_threshold"] == 4.0 and "like" not in err
    assert main(["train", "--data", str(two_to_ten), "--config", "none", "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["model"]["like_threshold"] == 8.0 and f"note: {LIKE_NOTE}" in err


def test_a_split_given_at_its_default_for_a_folder_with_its_own_split_gets_the_note(clustered_dataset, tmp_path):
    from kgrec.data import export_split

    folder = export_split(load_data(load_config(None, [f"data.path={clustered_dataset}"])), tmp_path / "split" / "clusters")
    fitted, notes = _fit(None, [f"data.path={folder}", "data.split=ratio", "train.batch_size=128"])
    assert fitted.data.split == "given"
    assert notes == ["clusters holds its own split (clusters.train/valid/test.inter), used as it is: data.split=ratio does not apply"]
    assert _fit(None, [f"data.path={folder}", "train.batch_size=128"])[1] == []  # left out: nothing to say


def test_the_shipped_ml100k_config_fits_ml100k_as_before():
    """ml-100k.yaml writes model.tasks, use_text, use_graph and id_dropout at their defaults, so
    they are given now; on ml-100k, which feeds them all, fitting changed none of them anyway."""
    config = load_config(ML100K)
    assert {"model.tasks", "model.use_text", "model.use_graph", "model.id_dropout"} <= config.given
    assert "model.like_threshold" not in config.given
    data = load_data(config)
    fitted, notes = fit_defaults(config, data)
    assert notes == [] and fitted == config
    assert fit_defaults(dataclasses.replace(config, given=frozenset()), data) == (fitted, [])  # as before the record
