"""RecBole's own figures on ml-100k, to check the baselines kgrec is compared with.

Runs inside the throwaway environment that ``scripts/recbole_reference.sh`` makes (kgrec neither
imports nor needs RecBole). Each model runs through the calls of RecBole 1.2.1's ``run_recbole``
with its defaults, on the ml-100k files its wheel ships, under the protocol of every kgrec table: per-user
random 80/10/10 split (RecBole's ``RS``, ``RO``), full ranking, items seen in train (and valid,
when testing) excluded, model selection on valid NDCG@10. For each split seed it prints test
metrics; with ``--export DIR`` it also writes the first seed's split as ``ml-100k.train.inter``,
``.valid.inter`` and ``.test.inter`` (raw ids, original ratings and timestamps) beside the
dataset's other files, so that ``kgrec train --data DIR`` trains on the very split RecBole used.

    bash scripts/recbole_reference.sh                                   # EASE, 3 split seeds
    bash scripts/recbole_reference.sh --models EASE BPR --seeds 2020    # BPR trains with early stopping
    bash scripts/recbole_reference.sh --seeds 2020 --export /tmp/recbole-split
"""

import argparse
import ast
import os
import shutil
import sys
import time
import warnings

import pandas as pd
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import ModelType, get_model, get_trainer, init_logger, init_seed

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--models", nargs="+", default=["EASE"], help="RecBole model names")
parser.add_argument(
    "--seeds", type=int, nargs="+", default=[2020, 2026, 0], help="RecBole seeds (2020 is its default)"
)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a RecBole setting, value as Python literal or string (e.g. reg_weight=500.0)")  # fmt: skip
parser.add_argument(
    "--export", default=None, metavar="DIR", help="write the first seed's split to DIR/ml-100k/"
)
args = parser.parse_args()
sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value settings from the command line too
warnings.filterwarnings("ignore", category=FutureWarning)  # pandas and torch on RecBole's calls
warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE")  # recbole_reference.sh sets it

SOURCE = os.path.join(os.path.dirname(recbole.__file__), "dataset_example")
KEYS = ("ndcg@10", "recall@20", "recall@10", "hit@10", "mrr@10")
PROTOCOL = {
    "data_path": SOURCE,
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
    "metrics": ["Recall", "NDCG", "Hit", "MRR", "Precision"],
    "topk": [10, 20],
    "valid_metric": "NDCG@10",
    "use_gpu": False,
    "show_progress": False,
    "checkpoint_dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "kgrec-recbole-saved"),
    "state": "WARNING",  # RecBole's log level; its INFO lines would bury the table
}


def literal(text: str) -> object:
    """A number, list or dict typed on the command line; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def export_split(dataset, parts, out: str) -> None:
    """Writes the three parts with raw ids and the original ratings and timestamps, and copies
    the dataset's item, user, KG and link files beside them."""
    folder = os.path.join(out, "ml-100k")
    os.makedirs(folder, exist_ok=True)
    original = pd.read_csv(os.path.join(SOURCE, "ml-100k", "ml-100k.inter"), sep="\t", dtype=str)
    original.columns = ["user_id", "item_id", "rating", "timestamp"]
    rows = 0
    for name, data in parts.items():
        inter = data._dataset.inter_feat
        pairs = pd.DataFrame({
            "user_id": dataset.id2token(dataset.uid_field, inter[dataset.uid_field].numpy()).astype(str),
            "item_id": dataset.id2token(dataset.iid_field, inter[dataset.iid_field].numpy()).astype(str),
        })  # fmt: skip
        full = pairs.merge(original, on=["user_id", "item_id"], how="left", validate="one_to_one")
        with open(os.path.join(folder, f"ml-100k.{name}.inter"), "w") as handle:
            handle.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
            full.to_csv(handle, sep="\t", header=False, index=False)
        rows += len(full)
        print(f"  exported {name}: {len(full)} interactions, {full.user_id.nunique()} users")
    if rows != len(original):
        raise SystemExit(f"export: the parts hold {rows} interactions, the source {len(original)}")
    for suffix in ("item", "user", "kg", "link"):
        shutil.copyfile(
            os.path.join(SOURCE, "ml-100k", f"ml-100k.{suffix}"), os.path.join(folder, f"ml-100k.{suffix}")
        )
    print(f"  -> {folder}")


def run(model_name: str, seed: int, export: str | None) -> tuple[dict, float]:
    """One RecBole model on one split seed: its test metrics and best valid NDCG@10."""
    settings = {**PROTOCOL, "seed": seed, **overrides}
    config = Config(model=model_name, dataset="ml-100k", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])  # the call sequence of run_recbole
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if export:
        export_split(dataset, {"train": train_data, "valid": valid_data, "test": test_data}, export)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    # A model trained over epochs is tested with its best valid epoch, which RecBole reloads
    # from the checkpoint it has just written (a pickle: recbole_reference.sh allows it);
    # EASE and the other closed-form models fit in one pass and need none.
    saved = config["MODEL_TYPE"] != ModelType.TRADITIONAL
    valid_score, _ = trainer.fit(train_data, valid_data, saved=saved, show_progress=False)
    return trainer.evaluate(test_data, load_best_model=saved, show_progress=False), valid_score


overrides = {key: literal(value) for key, value in (item.split("=", 1) for item in args.overrides)}
print(f"RecBole {recbole.__version__}, ml-100k from its wheel; {torch.get_num_threads()} torch threads")
print(f"{'model':<10} {'seed':>5} " + " ".join(f"{k:>10}" for k in KEYS) + "  valid ndcg@10  seconds")
for model_name in args.models:
    for position, seed in enumerate(args.seeds):
        start = time.perf_counter()
        export = args.export if position == 0 and model_name == args.models[0] else None
        try:
            test, valid_score = run(model_name, seed, export)
        except ImportError as error:  # e.g. KGAT needs dgl, which the environment does not install
            print(
                f"{model_name:<10} {seed:>5}  not run: needs {error.name}, which this environment lacks",
                flush=True,
            )
            break
        seconds = time.perf_counter() - start
        print(f"{model_name:<10} {seed:>5} " + " ".join(f"{float(test[k]):>10.4f}" for k in KEYS)
              + f"  {valid_score:>13.4f}  {seconds:>7.1f}", flush=True)  # fmt: skip
