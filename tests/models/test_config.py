import pytest

from kgrec.errors import ConfigError
from kgrec.models import ModelConfig


def test_invalid_configs_fail_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match="model.trunk: .*got 'moe' \\(did you mean 'mmoe'\\?\\)"):
        ModelConfig(trunk="moe")
    with pytest.raises(ConfigError, match="id_dropout"):
        ModelConfig(use_text=False, use_graph=False, id_dropout=0.5)
    with pytest.raises(ConfigError, match="model.user_id_dropout > 0 needs the 'id' user part"):
        ModelConfig(user_encoder="id", user_id_dropout=0.2)
    with pytest.raises(ConfigError, match="model.user_id_dropout: expected a probability"):
        ModelConfig(user_id_dropout=-0.1)
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict({"dimension": 3})


def test_switched_off_towers_lose_their_weights_and_bpr_mf_is_id_only_retrieval() -> None:
    config = ModelConfig(tasks=("retrieval", "rating"))
    assert config.loss_weights == {"retrieval": 1.0, "rating": 0.1}  # like and kg dropped from the defaults
    bpr = ModelConfig.bpr_mf(dim=8)
    assert (bpr.item_modalities, bpr.user_parts, bpr.tasks, bpr.retrieval_loss) == (("id",), ("id",), ("retrieval",), "bpr")
    assert bpr.with_changes(dim=16).dim == 16
    with pytest.raises(ConfigError, match="model.dim >= 1"):
        bpr.with_changes(dim=0)  # a changed copy is checked again
