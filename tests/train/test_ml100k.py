"""A short real run on ml-100k: few epochs, no text (encoding 1.7k texts is the slow part)."""

from kgrec.baselines import MostPopular
from kgrec.eval import evaluate_split
from kgrec.train import load_config, load_data, train


def test_short_ml100k_run_lands_well_above_most_popular(ml100k, tmp_path):
    config = load_config(None, [
        f"data.path={ml100k}", "model.use_text=false", "model.user_encoder=id+history",
        "model.retrieval_loss=full_softmax", "model.tasks=[retrieval,kg]", "model.graph_layers=1",
        "model.loss_weights={retrieval: 1.0, kg: 0.1}", "train.max_epochs=3", "train.progress=false",
    ])  # fmt: skip
    metrics = train(config, tmp_path / "run")
    dataset = load_data(config)
    popular = evaluate_split(MostPopular().fit(dataset.train, dataset.n_users, dataset.n_items).score, dataset, "test")
    assert popular["ndcg@10"] < 0.16  # ~0.135 on this split
    assert metrics["test"]["ndcg@10"] > popular["ndcg@10"] + 0.05
