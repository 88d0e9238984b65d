"""Train one model end to end and write a run folder (``kgrec train``, ``scripts/train.py``).

Steps: load + split the data → build (or load) the knowledge graph → encode item texts
(cached) → build the model → Lightning fit with early stopping on the validation metric →
reload the best weights → evaluate valid and test → write the run folder.

Run folder (``RUN_DIR``), the unit everything downstream reads:

====================== ================================================================
``manifest.json``       format version, dataset, sizes, files, kgrec version
``config.yaml``         the resolved :class:`RunConfig`
``sources.json``        the data files the run started on (a resume checks them)
``model.safetensors``   best weights (state dict of :class:`MultiTaskRecommender`)
``vectors.safetensors`` retrieval-space ``user`` (U, d) and ``item`` (I, d) vectors
``text.safetensors``    item text vectors (I, t), when text is used
``text-encoder/``       the fine-tuned transformer, when ``text.finetune_layers > 0``
``graph/``              the knowledge graph the model was trained with
``kg_heldout.npz``      with ``graph.kg_holdout``: the triples held out of it (valid, test, known)
``id_maps.json``        raw user / item ids by index
``metrics.json``        ``{"valid": {...}, "test": {...}, "train_seconds", "epochs", "stopped_by", ...}``
``curves.png``          per-task training losses and validation metrics by epoch
``checkpoints/``        Lightning checkpoints (``last.ckpt`` resumes an interrupted run)
``logs/``               CSV (and TensorBoard, when installed) logs
====================== ================================================================
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml

import kgrec
from kgrec.data import Dataset
from kgrec.errors import ConfigError, KgrecError, TrainingInterrupted
from kgrec.eval import known_users_part
from kgrec.graph import (
    GraphRecipe,
    HeldOutTriples,
    KnowledgeGraph,
    build_graph,
    hold_out_triples,
    resolve_recipe,
)
from kgrec.models import (
    ModelConfig,
    ModelSizes,
    MultiTaskRecommender,
    SideInputs,
    history_matrix,
    rating_matrix,
)
from kgrec.train.config import (
    RunConfig,
    changed_fields,
    config_yaml,
    load_data,
    monitor_mode,
    plain_config,
    resolve_monitor,
    with_defaults,
)
from kgrec.train.defaults import fit_defaults
from kgrec.train.teacher import check_teacher_fits
from kgrec.utils.io import (
    atomic_dir,
    atomic_open,
    atomic_path,
    file_above,
    source_mismatch,
    source_records,
    write_json,
)
from kgrec.utils.names import closest
from kgrec.utils.ranks import launched_as_rank_zero

if TYPE_CHECKING:  # imported in train(): importing kgrec.train does not import Lightning
    from kgrec.train.module import RecommenderModule

RUN_FORMAT = 1
KG_HELDOUT = "kg_heldout.npz"  # the triples graph.kg_holdout took out of the graph
TEXT_ENCODER_DIR = "text-encoder"  # fine-tuned transformer (save_pretrained) when text.finetune_layers > 0
SOURCES = "sources.json"  # the data files a run started on, written with config.yaml: a resume checks them
RESUMABLE_CHANGES = ("max_epochs", "max_minutes", "progress")  # train.* fields a resumed run may change
# What kgrec writes into a run folder (the query commands add index/ and catalog/), in the order
# --overwrite removes it: manifest.json, written last, marks a finished run, so it goes first.
RUN_ENTRIES = (
    "manifest.json", "checkpoints", "metrics.json", "model.safetensors", "vectors.safetensors",
    "text.safetensors", "id_maps.json", "curves.png", "config.yaml", "sources.json", TEXT_ENCODER_DIR, "graph", KG_HELDOUT,
    "index",
    "catalog", "logs",
)  # fmt: skip (checkpoints second: a clean-up cut short must not leave a finished run to resume)


@dataclass
class Prepared:
    """Data a model is built on: the split dataset, its graph, item text vectors and sizes, and
    the KG triples held out of the graph (``graph.kg_holdout``)."""

    dataset: Dataset
    graph: KnowledgeGraph | None
    text: torch.Tensor | None  # (I, t)
    sizes: ModelSizes
    side: SideInputs
    kg_heldout: HeldOutTriples | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # the data, graph, text sections it was prepared with


def prepared_inputs(config: RunConfig) -> dict[str, Any]:
    """The config sections :func:`prepare` reads, as plain values: a :class:`Prepared` serves
    only a config with the same ones."""
    return {section: plain_config(config)[section] for section in ("data", "graph", "text")}


def find_recipe(config: RunConfig, dataset: Dataset, say: bool = False) -> GraphRecipe:
    """``graph.recipe``, else ``graphs/NAME.yaml`` (working folder, then kgrec's own), else
    :func:`~kgrec.graph.default_recipe`; ``graph.users`` adds user nodes. ``say``: print which
    on stderr (``recipe: graphs/shop.yaml``), as ``kgrec graph build`` does: the working folder
    decides it, so the same command in another folder builds another graph."""
    recipe, source = resolve_recipe(dataset, config.graph.recipe or None)
    if say:
        print(f"recipe: {source}", file=sys.stderr)
    return dataclasses.replace(recipe, users=config.graph.users or recipe.users)


def check_data(config: RunConfig, dataset: Dataset) -> None:
    """Refuse a split training cannot select or report on: an empty valid or test part, a part
    whose users are all new, a like threshold leaving every training rating on one side, an AUC
    monitor over valid ratings of one label, cut-offs (``eval.ks``) beyond the catalogue, a
    cold-item split for a model with neither text nor graph, a teacher that cannot be fitted (:func:`~kgrec.train.teacher.check_teacher_fits`)."""
    for part in ("valid", "test"):
        if not len(getattr(dataset, part)):
            key = "data.cold_item_share" if config.data.split == "cold_item" else "data.ratios"
            fix = f"fill {dataset.name}.{part}.inter" if dataset.split == "given" else f"give it a share ({key})"
            raise ConfigError(
                f"{dataset.name}, split {dataset.split}: the {part} part is empty, so training has nothing to "
                f"{'choose its epoch on' if part == 'valid' else 'report on'}; {fix}",
                key=None if dataset.split == "given" else key,
            )
        if not len(known_users_part(dataset, part)):  # type: ignore[arg-type]
            raise ConfigError(
                f"{dataset.name}, split {dataset.split}: none of the {len(getattr(dataset, part))} {part} interactions "
                f"is by a user seen in training (every {part} user is new after the cut), so there is nothing to "
                f"evaluate on; use data.split=ratio or temporal, or give training a larger share (data.ratios)"
            )
    ratings = dataset.train.rating
    labelled_0 = dataset.negative_counts()  # pairs labelled 0 give the like labels both values
    if "like" in config.model.tasks and ratings is not None and len(ratings) and not labelled_0.get("train"):
        threshold, liked = config.model.like_threshold, float((ratings >= config.model.like_threshold).mean())
        if liked in (0.0, 1.0):
            raise ConfigError(
                f"model.like_threshold: {'every' if liked else 'no'} training rating of {dataset.name} is >= {threshold:g} "
                f"(they run from {float(ratings.min()):g} to {float(ratings.max()):g}), so the like tower would see one "
                "label only; set a threshold inside that range, or drop like from model.tasks",
                key="model.like_threshold",
            )
    valid = known_users_part(dataset, "valid") if resolve_monitor(config) == "auc" else None
    if valid is not None and valid.rating is not None and not labelled_0.get("valid"):  # AUC needs both labels
        threshold, liked = config.model.like_threshold, float((valid.rating >= config.model.like_threshold).mean())
        if liked in (0.0, 1.0):
            raise ConfigError(
                f"eval.monitor auc: {'every' if liked else 'no'} valid rating of {dataset.name} is >= {threshold:g} "
                "(model.like_threshold), so the like AUC that selects the epoch is not defined on valid; choose "
                "another eval.monitor (rmse with the rating task, ndcg@10 with retrieval) or a split whose valid "
                "part has both likes and dislikes",
                key="eval.monitor",
            )
    if max(config.eval.ks) > dataset.n_items:
        raise ConfigError(f"eval.ks: cut-off {max(config.eval.ks)} is beyond the {dataset.n_items} items of {dataset.name}",
                          key="eval.ks")  # fmt: skip
    model = config.model
    if config.data.split == "cold_item" and not (model.use_text or model.use_graph):
        raise ConfigError(
            f"{dataset.name}, split cold_item: the held-out items have no training interaction, and a model without "
            "text or graph (model.use_text and model.use_graph false) has only their untrained ID vectors to score "
            "them with; set model.use_text=true or model.use_graph=true, or use data.split=ratio",
            key="model.use_text",
        )
    if config.model.distill_weight > 0:  # the teacher's refusals (memory: minutes of graph and text later)
        t = config.train
        check_teacher_fits(dataset, "cuda" if _uses_gpu(config) else "cpu", t.teacher_reg, t.teacher_session_hours,
                           t.teacher_user_weight, t.teacher_user_reg, t.teacher_recency_hours)  # fmt: skip


def _graph_needed(model_config: ModelConfig, graph: str) -> str:
    """What needs the graph's relations, that the graph has none, and the settings that turn it off."""
    needs = [("model.use_graph", model_config.use_graph, "model.use_graph=false"),
             ("the kg task", "kg" in model_config.tasks,
              f"model.tasks=[{','.join(t for t in model_config.tasks if t != 'kg') or 'retrieval'}]"),
             ("the graph user part", "graph" in model_config.user_parts,
              f"model.user_encoder={'+'.join(p for p in model_config.user_parts if p != 'graph') or 'id'}")]  # fmt: skip
    named = [what for what, needed, _ in needs if needed]
    fixes = " ".join(f"--set {fix}" for _, needed, fix in needs if needed)
    return (f"{' and '.join(named)} need{'s' if len(named) == 1 else ''} the graph's relations, but the graph ({graph}) "
            f"has no triples (no KG triples and no multi-valued item columns to make relations from); {fixes}")


def prepare(config: RunConfig, dataset: Dataset | None = None, progress: bool = True) -> Prepared:
    """Load data, graph and text vectors as the config says; nothing here looks at valid/test
    except the split itself (user graph edges and the history matrix come from train only)."""
    dataset = dataset if dataset is not None else load_data(config)
    check_data(config, dataset)
    model_config = config.model
    pointwise = [t for t in ("rating", "like") if t in model_config.tasks]
    if dataset.negative_counts().get("train"):
        pointwise = [t for t in pointwise if t != "like"]  # likes told from the pairs labelled negative
    if pointwise and dataset.train.rating is None:
        fit = ("fit the config to the data first, config, notes = fit_defaults(config, dataset), as train() does, or "
               if "model.tasks" not in config.given else "")  # the default tasks, not fitted: a call from Python
        raise ConfigError(
            f"model.tasks has {', '.join(pointwise)} but {dataset.name} has no rating column; {fit}"
            f"drop them (--set model.tasks=[{','.join(t for t in model_config.tasks if t not in pointwise) or 'retrieval'}])"
        )
    graph = None
    if model_config.needs_graph:
        if config.graph.path:
            graph = KnowledgeGraph.load(config.graph.path, dataset=dataset)
        else:
            recipe = find_recipe(config, dataset, say=progress and launched_as_rank_zero())
            graph = build_graph(dataset, recipe, progress=progress)
        if not graph.n_triples:
            raise ConfigError(_graph_needed(model_config, config.graph.path or f"built from the recipe of {dataset.name}"))
    kg_heldout = None
    if config.graph.kg_holdout > 0:
        if graph is None or "kg" not in model_config.tasks:
            raise ConfigError("graph.kg_holdout measures the kg tower's link prediction; add kg to model.tasks")
        graph, kg_heldout = hold_out_triples(graph, config.graph.kg_holdout, config.data.seed)
    text = None
    if model_config.use_text:
        from kgrec.text import encode_dataset

        text = encode_dataset(dataset, config.text, progress=progress)
    train = dataset.train
    ratings = train.rating if train.rating is not None else np.ones(len(train), dtype=np.float32)
    side = side_inputs(dataset, model_config, graph, text)
    sizes = ModelSizes(
        num_users=dataset.n_users,
        num_items=dataset.n_items,
        num_nodes=graph.n_nodes if graph is not None else 0,
        num_relations=graph.n_relations if graph is not None else 0,
        text_dim=int(text.shape[1]) if text is not None else 0,
        user_node_offset=graph.user_offset if graph is not None and graph.n_users else None,
        rating_mean=float(ratings.mean()),
        rating_range=(float(ratings.min()), float(ratings.max())),
        num_user_features=side.user_features.shape[1] if side.user_features is not None else 0,
    )
    return Prepared(dataset=dataset, graph=graph, text=text, sizes=sizes, side=side, kg_heldout=kg_heldout,
                    inputs=prepared_inputs(config))  # fmt: skip


def side_inputs(
    dataset: Dataset, model_config: ModelConfig, graph: KnowledgeGraph | None, text: torch.Tensor | None
) -> SideInputs:
    """The fixed tensors the model reads, all from the TRAINING split: graph edges, text vectors,
    the history matrix (``history`` user part), the rating matrix (rating tower's AutoRec term);
    and the user feature matrix (``features`` user part), from ``NAME.user``."""
    train = dataset.train
    side = SideInputs(text=text, warm_items=warm_items(dataset, model_config))
    if graph is not None:
        side.edge_index, side.edge_type = graph.edge_tensors()
        if model_config.id_dropout_private:
            from kgrec.graph import private_owner

            side.private_owner = torch.as_tensor(private_owner(graph))
    users, items = torch.as_tensor(train.user), torch.as_tensor(train.item)
    if "history" in model_config.user_parts:
        side.history = history_matrix(users, items, dataset.n_users, dataset.n_items)
    if model_config.rating_autorec_units and "rating" in model_config.tasks:
        side.ratings = rating_matrix(users, items, torch.as_tensor(train.rating), dataset.n_users, dataset.n_items)
    if "features" in model_config.user_parts:
        side.user_features = user_feature_matrix(dataset, model_config.user_features)
    return side


def user_feature_matrix(dataset: Dataset, columns: tuple[str, ...] | None = None) -> torch.Tensor:
    """``(U, F)`` sparse: row ``u`` the mean over user ``u``'s feature tokens from ``NAME.user``
    (:func:`~kgrec.data.features.feature_tokens` of ``columns``, every usable one when ``None``)."""
    from kgrec.data.features import feature_tokens

    if not dataset.user_features:
        raise ConfigError(f"model.user_encoder has 'features' but {dataset.name} has no user columns "
                          f"(no {dataset.name}.user, or only user_id in it)")  # fmt: skip
    try:
        tokens = feature_tokens(dataset.user_features, dataset.user_feature_types, columns, owner=f"{dataset.name}.user")
    except ConfigError as error:
        raise ConfigError(f"model.user_features: {error}") from None
    if not tokens.names:
        raise ConfigError(f"model.user_encoder has 'features' but {dataset.name}.user has no values in "
                          f"{', '.join(columns or dataset.user_features)}")  # fmt: skip
    rows, cols = torch.as_tensor(tokens.rows), torch.as_tensor(tokens.tokens)
    return history_matrix(rows, cols, dataset.n_users, len(tokens.names))


def warm_items(dataset: Dataset, model_config: ModelConfig) -> torch.Tensor | None:
    """``(I,)`` bool of items with training interactions, when some have none (a cold-item split)
    and the model has text or graph to build their vectors from; else ``None``.

    The model masks the ID vectors of the other items (when it has ID vectors) and never uses
    them as retrieval negatives. An ID-only model has nothing to score such items with, so it
    gets ``None``."""
    warm = torch.as_tensor(dataset.train.has_item(dataset.n_items))
    if bool(warm.all()) or not (model_config.use_text or model_config.use_graph):
        return None
    return warm


def build_model(config: RunConfig, prepared: Prepared) -> MultiTaskRecommender:
    """A fresh model for ``prepared`` data, seeded by ``train.seed``."""
    torch.manual_seed(config.train.seed)
    return MultiTaskRecommender(config.model, prepared.sizes, prepared.side)


def train(
    config: RunConfig,
    out: str | Path,
    overwrite: bool = False,
    prepared: Prepared | None = None,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train, select on validation, test, and write the run folder ``out``. Returns metrics.

    An interrupted run (``checkpoints/last.ckpt`` without ``manifest.json``, which is written
    last) resumes where it stopped, with the same config (``train.max_epochs`` and
    ``train.progress`` may change; fields newer than the run count at their defaults); a
    finished run is refused unless ``overwrite``, which first removes everything a run folder
    holds (:data:`RUN_ENTRIES`), finished or not. A folder that holds other files and no run is
    refused. ``callbacks`` are extra Lightning callbacks.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
    from lightning.pytorch.loggers import CSVLogger

    from kgrec.train.epoch_log import (
        AtomicCheckpointIO,
        EpochLines,
        MovedRunFolder,
        StaysStopped,
        TrainingClock,
        progress_bar,
    )
    from kgrec.train.module import RecommenderModule, evaluate

    out = Path(out)
    last = out / "checkpoints" / "last.ckpt"
    check_before_training(config, out, overwrite)
    if prepared is not None and prepared.inputs and (changed := changed_fields(prepared.inputs, prepared_inputs(config))):
        raise ConfigError(f"prepared data differs from the config in {', '.join(changed)}: prepare(config) again")
    dataset = prepared.dataset if prepared is not None else load_data(config)
    config, notes = fit_defaults(config, dataset)
    if config.text.finetune_layers and not config.model.use_text:  # it fine-tuned nothing, without a word
        notes.append(f"text.finetune_layers={config.text.finetune_layers} has no effect: model.use_text is false, "
                     "so there is no text encoder to fine-tune")
    for note in notes if launched_as_rank_zero() else []:  # DDP: every rank fits the config, one speaks
        print(f"note: {note}", file=sys.stderr)
    _check_loss_mode(config)
    resume = _resumes(out, overwrite)
    if resume:
        _check_same_config(out, config)
        _check_same_data(out, dataset.sources)
        done = _epochs_done(last)
        if launched_as_rank_zero():
            print(f"note: resuming the interrupted run in {out}: {last.name} holds its first {done} "
                  f"epoch{'s' if done != 1 else ''} (of at most {config.train.max_epochs})", file=sys.stderr)  # fmt: skip
    # Everything that checks the config against the data, the teacher and the trainer included,
    # runs before --overwrite removes a run: the run folder is written just before fitting.
    if prepared is not None:
        check_data(config, dataset)  # prepare() checks the data it prepares
    prepared = prepared or prepare(config, dataset, progress=config.train.progress)
    model = build_model(config, prepared)
    if resume:
        _check_checkpoint_fits(out, last, model)
    if config.train.init_from and not resume:  # a resume continues from its own checkpoint
        from kgrec.train.warm_start import dataset_row_tokens, warm_start

        text_model = config.text.model if config.model.use_text else None
        carried = warm_start(model, config.train.init_from, dataset_row_tokens(dataset, prepared.graph), dataset.name, text_model)
        if launched_as_rank_zero():
            print(f"note: {carried.note()}", file=sys.stderr)
    recorded = config_yaml(config)  # the config as fitted to the data, eval.monitor as asked (auto)
    kg_triples = None
    if prepared.graph is not None:
        g = prepared.graph
        kg_triples = tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail))
    text_encoder, texts = None, None
    if config.model.use_text and config.text.finetune_layers:
        from kgrec.text import TextEncoder, item_texts

        text_encoder = TextEncoder.from_config(config.text)
        try:
            text_encoder.unfreeze_top_layers(config.text.finetune_layers)
        except ConfigError as error:  # a model whose layer count check_before_training could not read
            raise ConfigError(f"text.{error}", key="text.finetune_layers") from None
        texts = item_texts(dataset, config.text)
    sources = source_records(dataset.sources)  # hashed once: sources.json now, the manifest at the end
    t = config.train
    gpu = _uses_gpu(config)
    device = _local_gpu() if gpu else torch.device("cpu")  # this process's training device
    started = time.perf_counter()
    module = RecommenderModule(model, dataset, config, kg_triples, text_encoder, texts,  # type: ignore[arg-type]
                               kg_heldout=prepared.kg_heldout, teacher_device=device)  # fmt: skip
    if module.teacher is not None and config.train.progress:  # fitted (and tuned on valid) just now
        print(f"teacher: {module.teacher.description()}, {time.perf_counter() - started:.1f} s", file=sys.stderr)

    config.eval.monitor = resolve_monitor(config)  # again: the model section may have changed since load_config
    monitor = f"valid/{config.eval.monitor}" if config.eval.monitor else None
    mode = monitor_mode(config.eval.monitor) if config.eval.monitor else "max"
    # last.ckpt after every epoch, which a resume continues from (Lightning's save_last=True
    # writes it only when the monitored metric improves, so a resume would redo the epochs
    # since); best.ckpt when the valid metric improves. Without a monitor (KG only) the latest
    # epoch is the best.
    # (mode only names its state: the same as the single callback of earlier versions for KG-only runs)
    latest = ModelCheckpoint(dirpath=last.parent, filename=last.stem, mode="max", enable_version_counter=False)
    checkpoint = ModelCheckpoint(dirpath=last.parent, filename="best", monitor=monitor, mode=mode) if monitor else latest
    savers = [latest] if checkpoint is latest else [checkpoint, latest]
    stoppers = [EarlyStopping(monitor=monitor, mode=mode, patience=config.train.patience)] if monitor else []
    # One CSV per (re)start: Lightning's CSVLogger would overwrite the log of the interrupted part.
    part = _next_log_part(out / "logs") if resume else 0
    loggers: list[Any] = [CSVLogger(out, name="logs", version=f"part-{part}")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
    except ImportError:
        pass
    # A progress bar redraws in place, which a file or pipe sees only at the end: print lines there.
    interactive = sys.stdout.isatty()
    epoch_lines = [EpochLines(monitor, mode, out / "logs")] if t.progress and not interactive else []
    bar = [progress_bar()] if t.progress and interactive else []  # a terminal: Lightning's bar, less v_num
    clock = TrainingClock()
    # Lightning's Timer, checked at epoch ends (after validation), so the best epoch is kept and tested
    timer = [Timer(timedelta(minutes=t.max_minutes), interval="epoch")] if t.max_minutes else []
    flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    trainer = L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=_ddp_strategy(t.strategy, module, device, t.devices),
        precision=_precision(config),  # type: ignore[arg-type]
        callbacks=[*savers, *stoppers, *timer, *epoch_lines, *bar, clock, MovedRunFolder(last.parent), StaysStopped(stoppers),
                   *(callbacks or [])],
        logger=loggers,
        plugins=[AtomicCheckpointIO()],  # checkpoints renamed into place from their own folder, never copied over
        enable_progress_bar=t.progress and interactive,
        enable_model_summary=False,
        gradient_clip_val=t.grad_clip or None,
        num_sanity_val_steps=0,
        deterministic=_deterministic(config),
        log_every_n_steps=1,
    )
    try:
        if overwrite:
            _clear_run(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "config.yaml", "w", encoding="utf-8") as handle:
            handle.write(recorded)
        write_json(out / SOURCES, {"sources": sources})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            # A fine-tuned transformer stays in eval mode on purpose: its frozen layers must not drop
            # out, and its few trained top layers learn without dropout.
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
            # A resumed run continues in its own checkpoints/ folder, which Lightning warns is not empty.
            warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
            _fit(trainer, module, last, resume)
    finally:  # Lightning sets them for the whole process: a Python caller gets its own back
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    train_seconds = clock.seconds  # both parts of a resumed run
    if not trainer.is_global_zero:
        return {}

    best = checkpoint.best_model_path or str(last)
    saved = torch.load(best, map_location="cpu", weights_only=True)
    state = saved["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.to("cpu").eval()
    if text_encoder is not None:  # the fine-tuned transformer's vectors become the run's text vectors
        text_encoder.load_state_dict(
            {k.removeprefix("text_encoder."): v for k, v in state.items() if k.startswith("text_encoder.")}
        )
        module.to("cpu")
        text_encoder.eval()
        module.encode_texts(training=False)  # float32, as validation and the run's queries encode
        prepared.text = model.text.detach().clone()
    # epochs trained: Lightning's current_epoch lags by one when a resumed run stops before its first
    # epoch (a spent train.max_minutes), while `processed` counts every epoch the checkpoints hold
    epochs = int(trainer.fit_loop.epoch_progress.current.processed)
    metrics = {
        "valid": evaluate(model, dataset, "valid", config, prepared.kg_heldout),
        "test": evaluate(model, dataset, "test", config, prepared.kg_heldout),
        "train_seconds": round(train_seconds, 2),
        "epochs": epochs,
        "seconds_per_epoch": round(train_seconds / max(1, epochs), 3),
        "best_epoch": int(saved["epoch"]),  # the kept checkpoint's (logs may lack a killed run's last rows)
        "stopped_by": _stopped_by(epochs, t.max_epochs, stoppers, timer),
        "resumed": resume,
    }
    save_run(out, config, prepared, model, metrics, sources, text_encoder)
    return metrics


def save_run(
    out: Path,
    config: RunConfig,
    prepared: Prepared,
    model: MultiTaskRecommender,
    metrics: dict,
    sources: list[dict[str, Any]],
    text_encoder: Any = None,
) -> None:
    """Write the run folder's model, vectors, graph, id maps, metrics, curves and manifest
    (and the fine-tuned transformer as ``text-encoder/``, which queries then use); ``sources``:
    the data files' records (:func:`~kgrec.utils.io.source_records`) as the run started on them."""
    from safetensors.torch import save_file

    from kgrec.train.plots import plot_training_curves

    dataset = prepared.dataset
    with torch.no_grad():
        encoded = model.encode()
        vectors = {}
        if "retrieval" in config.model.tasks:
            vectors = {"user": model.user_vectors(None, encoded), "item": model.item_vectors(encoded)}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / "model.safetensors", suffix=".safetensors") as tmp:
        save_file(state, str(tmp))
    if vectors:
        with atomic_path(out / "vectors.safetensors", suffix=".safetensors") as tmp:
            save_file({k: v.float().contiguous() for k, v in vectors.items()}, str(tmp))
    if prepared.text is not None:
        with atomic_path(out / "text.safetensors", suffix=".safetensors") as tmp:
            save_file({"text": prepared.text.float().contiguous()}, str(tmp))
    if prepared.graph is not None:
        prepared.graph.save(out / "graph")
    if prepared.kg_heldout is not None:
        prepared.kg_heldout.save(out / KG_HELDOUT)
    if text_encoder is not None:
        with atomic_dir(out / TEXT_ENCODER_DIR) as tmp:
            text_encoder.save(tmp)
    dataset.save_id_maps(out / "id_maps.json")
    sizes = dataclasses.asdict(prepared.sizes)
    if list((out / "logs").glob("part-*/metrics.csv")):
        try:
            plot_training_curves(out / "logs", out / "curves.png", title=f"kgrec on {dataset.name}")
        except Exception as error:  # a figure must not keep a trained run from finishing
            print(f"warning: curves.png not drawn ({type(error).__name__}: {error}); the run is complete without it",
                  file=sys.stderr)  # fmt: skip
    write_json(out / "metrics.json", metrics)
    write_json(
        out / "manifest.json",
        {
            "format": "kgrec-run",
            "format_version": RUN_FORMAT,
            "kgrec_version": kgrec.__version__,
            "dataset": dataset.name,
            "dataset_path": str(Path(dataset.path).resolve()),
            "split": dataset.split,
            "sources": sources,  # kgrec eval checks the data did not change
            "sizes": sizes,
            "files": sorted(p.name for p in out.iterdir() if not p.name.startswith(".")),
        },
    )


def _stopped_by(epochs: int, max_epochs: int, stoppers: list[Any], timer: list[Any]) -> str:
    """What ended training: ``early_stopping``, ``max_minutes`` or ``max_epochs``."""
    if any(stopper.stopped_epoch > 0 for stopper in stoppers):
        return "early_stopping"
    if epochs < max_epochs and any(clock.time_remaining("train") <= 0 for clock in timer):
        return "max_minutes"
    return "max_epochs"


def _ddp_strategy(strategy: str, module: RecommenderModule, device: torch.device, devices: int | str = 1) -> str:
    """The strategy to give Lightning: a DDP one (``ddp``, ``ddp_spawn``, ``ddp_fork``,
    ``ddp_notebook``, or ``auto`` over several ``devices``, which Lightning runs as ``ddp``) in
    its ``find_unused_parameters_true`` form when the config leaves parameters without a gradient
    (:meth:`RecommenderModule.unused_parameters`: a task weighted 0, a KG-only run, GradNorm): plain DDP
    fails on them at the second step, and finding them costs a walk of the autograd graph per
    step, which the other configs are spared. The probe runs on ``device``, this process's
    training device (where the teacher already is), where Lightning would move the module anyway."""
    flavour = _ddp_flavour(strategy, device, devices)
    if flavour is None:
        return strategy
    unused = module.to(device).unused_parameters()
    if unused and launched_as_rank_zero():
        print(f"note: {len(unused)} parameter tensors get no gradient from the backward pass in this config "
              f"({unused[0]}, ...); "
              "DDP looks for unused parameters at every step", file=sys.stderr)  # fmt: skip
    return f"{flavour}_find_unused_parameters_true" if unused else strategy


_DDP_FLAVOURS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def _check_loss_mode(config: RunConfig) -> None:
    """``model.loss_mode: pcgrad`` and ``gradnorm`` set gradients after the backward pass, which
    fp16 loss scaling would not see: refuse them."""
    t, mode = config.train, config.model.loss_mode
    if mode in ("pcgrad", "gradnorm") and str(t.precision) in ("16", "16-mixed"):
        raise ConfigError(f"model.loss_mode={mode} does not work with train.precision={t.precision} (fp16 loss "
                          "scaling); use bf16-mixed, 32-true or auto")  # fmt: skip


def _ddp_flavour(strategy: str, device: torch.device, devices: int | str) -> str | None:
    """The DDP strategy Lightning will run for ``strategy`` on ``devices`` of ``device``'s kind,
    or None when it runs no DDP. ``auto`` over more than one device is ``ddp`` (``ddp_fork`` in
    an interactive Python), as Lightning's own choice is; ``devices="auto"`` means every GPU, or
    one CPU process."""
    if strategy in _DDP_FLAVOURS:
        return strategy
    if strategy != "auto":
        return None
    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator

    accelerator = CUDAAccelerator if device.type == "cuda" else CPUAccelerator
    count = accelerator.auto_device_count() if devices == "auto" else devices
    if len(accelerator.get_parallel_devices(accelerator.parse_devices(count))) <= 1:
        return None
    interactive = hasattr(sys, "ps1") or bool(sys.flags.interactive)  # as Lightning tells
    return "ddp_fork" if interactive else "ddp"


def _resumes(out: Path, overwrite: bool) -> bool:
    """Whether training into ``out`` continues an interrupted run (its ``checkpoints/last.ckpt``)."""
    return (out / "checkpoints" / "last.ckpt").is_file() and not overwrite


def check_before_training(config: RunConfig, out: str | Path, overwrite: bool = False) -> None:
    """What :func:`train` refuses before it reads any data, for a caller to ask before its own
    slow steps (:func:`prepare`: the graph, the text vectors): an ``out`` holding other files, or
    a finished run unless ``overwrite``; a ``--graph`` or ``text.model`` folder inside the ``out``
    that ``overwrite`` would clear; a ``train.init_from`` that is not a finished run; Lightning
    settings this machine cannot train with; a ``text.finetune_layers`` above the text model's
    number of layers.

    Raises:
        ConfigError: naming what to change.
    """
    out = Path(out)
    _check_out(out)
    if (out / "manifest.json").exists() and not overwrite:
        raise ConfigError(f"{out} already holds a finished run; pass --overwrite or choose another --out")
    if overwrite:
        graph = Path(config.graph.path).resolve() if config.graph.path else None
        if graph is not None and graph.is_relative_to(out.resolve()):
            raise ConfigError(f"--graph {config.graph.path} is inside --out {out}, which --overwrite clears; "
                              "use a graph folder outside the run")  # fmt: skip
        _check_text_model_outside(config, out)
        _check_no_linked_folders(out)
    processes = _check_trainer(config)  # before the data, graph, text and teacher: minutes on large data
    if config.train.init_from and not _resumes(out, overwrite):  # a resume needs its own checkpoint, not that run
        from kgrec.train.warm_start import check_init_run

        if overwrite and processes > 1 and Path(config.train.init_from).resolve() == out.resolve():
            # Under DDP the other ranks read the weights too, and rank 0 may have cleared the folder
            # by then (Lightning starts them once it fits): they would fail, with the run gone.
            raise ConfigError(f"train.init_from is --out ({out}), which --overwrite clears while the other "
                              f"{processes - 1} of the {processes} training processes may still have to read it; "
                              "copy the run elsewhere and start from the copy, or train into another --out",
                              key="train.init_from")  # fmt: skip
        check_init_run(config.train.init_from)
    if config.model.use_text and config.text.finetune_layers:
        _check_finetune_layers(config)


def _check_no_linked_folders(out: Path) -> None:
    """Refuse to ``--overwrite`` a run folder in which a folder of the run (``checkpoints/`` on
    another disk, say) is a symbolic link: clearing it would mean deleting what the link leads to,
    outside the run (and Lightning, which resolves the link, writes there); ``rmtree`` refused the
    link with a traceback once ``manifest.json`` was gone."""
    linked = [out / name for name in RUN_ENTRIES if (out / name).is_symlink() and (out / name).is_dir()]
    if linked:
        links = " and ".join(f"{p} is a link to {p.resolve()}" for p in linked)
        raise ConfigError(f"--overwrite clears the run in {out}, but {links}, which kgrec does not clear through a "
                          f"link; remove the link{'s' if len(linked) > 1 else ''} (rm {' '.join(map(str, linked))}; what "
                          "they lead to is left as it is), or choose another --out")  # fmt: skip


def _check_text_model_outside(config: RunConfig, out: Path) -> None:
    """Refuse a ``text.model`` folder inside the ``out`` that ``--overwrite`` clears (the run's own
    ``text-encoder/``, to fine-tune further or encode with it frozen): the run's config would name
    a folder that is gone (queries by text failed) or holds other weights, and an interrupted run
    could not resume."""
    from kgrec.text import DEFAULT_MODEL

    model = config.text.model
    folder = Path(model).expanduser()
    if not config.model.use_text or model == DEFAULT_MODEL or not folder.is_dir():
        return
    if folder.resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"text.model {model} is inside --out {out}, which --overwrite clears (the run's config would "
                          "name a folder that is gone, and an interrupted run could not resume); copy it out of the run "
                          f"first, e.g. cp -r {model} {out}-text-encoder, and set text.model to the copy",
                          key="text.model")  # fmt: skip


def _check_finetune_layers(config: RunConfig) -> None:
    """Refuse a ``text.finetune_layers`` above the transformer's layer count before anything is
    read (it was refused once the graph was built and every item text encoded), from the model's
    config alone (:func:`~kgrec.text.encoder.finetunable_layers`)."""
    from kgrec.text.encoder import finetunable_layers

    layers, asked = finetunable_layers(config.text.model), config.text.finetune_layers
    if layers is not None and asked > layers:
        raise ConfigError(f"text.finetune_layers must be between 0 and {layers} for {config.text.model} (its number of "
                          f"transformer layers), got {asked}", key="text.finetune_layers")  # fmt: skip


def _uses_gpu(config: RunConfig) -> bool:
    """Whether the run trains on GPUs: asked for, or ``train.accelerator=auto`` with one here."""
    accelerator = config.train.accelerator
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def _deterministic(config: RunConfig) -> bool | str:
    """``train.deterministic`` for Lightning, ``auto`` resolved: on for the CPU (a seeded run
    repeats bit for bit, at no measurable cost), off on a GPU."""
    deterministic = config.train.deterministic
    return not _uses_gpu(config) if deterministic == "auto" else deterministic


def _precision(config: RunConfig) -> str:
    """``train.precision`` for Lightning, ``auto`` resolved: bf16 autocast on a GPU, else fp32."""
    precision = str(config.train.precision)
    return precision if precision != "auto" else ("bf16-mixed" if _uses_gpu(config) else "32-true")


def _check_trainer(config: RunConfig) -> int:
    """Refuse the Lightning settings (``train.accelerator``, ``devices``, ``strategy``,
    ``precision``) this machine cannot train with, with a :class:`ConfigError` naming them, before
    anything is loaded: Lightning's own refusal is a traceback once the data is prepared and the
    teacher fitted. A trainer is built with them and thrown away (no process is started).

    Returns:
        The number of processes the run will train in (devices x nodes; 1 without DDP)."""
    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no device banners or tips: after the
    t = config.train  # import, which sets the level to INFO the first time (a notebook's first call printed them)
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.accelerator={t.accelerator}: this machine has no GPU that PyTorch can use "
                          "(torch.cuda.is_available() is False); use train.accelerator=cpu, or auto (the GPU when "
                          "there is one)", key="train.accelerator")  # fmt: skip
    from lightning.pytorch.strategies import StrategyRegistry

    if t.strategy != "auto" and t.strategy not in StrategyRegistry:
        raise ConfigError(f"train.strategy: {t.strategy!r} is not a Lightning strategy{closest(t.strategy, StrategyRegistry)}; "
                          "expected auto, ddp, ddp_spawn, fsdp, deepspeed, ...", key="train.strategy")  # fmt: skip
    try:
        with warnings.catch_warnings():  # the trainer built for training warns again
            warnings.simplefilter("ignore")
            trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=_precision(config),  # type: ignore[arg-type]
                                logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    except Exception as error:  # Lightning's MisconfigurationException, ValueError, TypeError, ImportError
        said = " ".join(str(error).split())  # its messages span lines
        key = next((f"train.{name}" for name in ("precision", "strategy", "devices", "accelerator") if name in said.lower()),
                   "train.devices" if "requested gpu" in said.lower() else None)  # fmt: skip
        raise ConfigError(f"train.accelerator={t.accelerator}, train.devices={t.devices}, train.strategy={t.strategy}, "
                          f"train.precision={t.precision}: Lightning cannot train with these on this machine: {said}",
                          key=key) from None  # fmt: skip
    return trainer.world_size


def _local_gpu() -> torch.device:
    """This process's GPU: under DDP each rank's own (``LOCAL_RANK``), else the first."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def _fit(trainer: Any, module: Any, last: Path, resume: bool) -> None:
    """``trainer.fit``, with Ctrl+C turned into :class:`TrainingInterrupted`.

    Lightning answers Ctrl+C with ``sys.exit(1)``, so a script could not tell an interruption
    from a failure; here a ``KeyboardInterrupt`` that says how to resume is raised instead (the
    CLI exits with status 130). Other exits (a callback's ``sys.exit``, SIGTERM) pass through."""
    try:
        trainer.fit(module, ckpt_path=str(last) if resume else None)
    except SystemExit as exit_:
        # Lightning calls sys.exit inside its `except KeyboardInterrupt`, hence the context.
        if not isinstance(exit_.__context__, KeyboardInterrupt):
            raise
        if last.is_file():
            done = _epochs_done(last)
            hint = (f"{last} holds the first {done} epoch{'s' if done > 1 else ''}; "
                    "run the same command again to resume from there")  # fmt: skip
        else:
            hint = "no epoch had finished; run the same command again to start over"
        raise TrainingInterrupted(f"training interrupted: {hint}", rank_zero=trainer.is_global_zero) from None


def _epochs_done(last: Path) -> int:
    """How many epochs the checkpoint ``last`` holds; a clear error when it cannot be read (a
    file cut short or damaged after it was written: kgrec's writes are atomic)."""
    try:
        saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        return int(saved["epoch"]) + 1  # 0-based
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise KgrecError(f"{last}: cannot read the checkpoint to resume from ({reason}); restore the file, or pass "
                         "--overwrite to start the run over") from None  # fmt: skip


def _check_same_config(out: Path, config: RunConfig) -> None:
    changed = config_differences(out, config)
    if changed:
        raise KgrecError(
            f"{out} holds an interrupted run with another config (differs in: {', '.join(changed)}); "
            "run it again with the run's values to resume it (its config.yaml), or pass --overwrite to start over"
        )


def _check_same_data(out: Path, files: list[Path]) -> None:
    """Refuse to resume an interrupted run on data files that changed since it started (its
    ``sources.json``; a run begun by a kgrec that did not write one goes by the checkpoint's
    shapes alone): the same counts of other rows would train on silently."""
    path = out / SOURCES
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["sources"]
        mismatch = source_mismatch(recorded, files)
    except (OSError, ValueError, KeyError, TypeError):
        raise KgrecError(f"{path}: cannot read the data files the interrupted run started on (damaged); restore the "
                         "file, or pass --overwrite to start the run over") from None  # fmt: skip
    if mismatch:
        raise KgrecError(f"{out} holds an interrupted run begun on other data: {mismatch}; restore the data it started "
                         "on to resume it, or pass --overwrite to start over")  # fmt: skip


def config_differences(run: Path, config: RunConfig, ignore: tuple[str, ...] = RESUMABLE_CHANGES) -> list[str]:
    """The fields in which the run folder ``run`` was trained with another config than ``config``
    (as fitted to the data, as :func:`train` records it), ``train`` fields in ``ignore`` aside:
    ``"model.dim (16 in the run, 32 now)"``; empty without a recorded config."""
    saved = run / "config.yaml"
    if not saved.is_file():
        return []
    before = with_defaults(_recorded_config(saved))  # saved by an older kgrec, maybe
    now = plain_config(config)
    if now["data"]["split"] == "given":  # recorded as the config asked before a folder's own split was noted
        before["data"]["split"] = "given"
    if now["data"]["path"]:  # data.name recorded as the config's (the default ml-100k) before it was the folder's
        before["data"]["name"] = now["data"]["name"]
    for section in ("data", "graph"):  # one folder, named relative or absolute (as kgrec tune compares them)
        if _same_folder(before[section].get("path"), now[section]["path"]):
            before[section]["path"] = now[section]["path"]
    for free in ignore:
        before["train"].pop(free, None)
        now["train"].pop(free, None)
    if before == now:
        return []
    changed = [f"{key} ({_field_value(before, key)} in the run, {_field_value(now, key)} now)"
               for key in changed_fields(before, now)]  # fmt: skip
    return changed or ["sections"]


def _recorded_config(saved: Path) -> dict:
    """The sections of the interrupted run's ``config.yaml`` as recorded; a clear error when they
    cannot be read (the file was edited by hand or damaged: kgrec writes it atomically)."""
    try:
        recorded = yaml.safe_load(saved.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())[:200]
    else:
        if isinstance(recorded, dict) and all(isinstance(v, (dict, type(None))) for v in recorded.values()):
            return recorded
        reason = "not a mapping of config sections, each a mapping of fields"
    raise KgrecError(f"{saved}: cannot read the config of the interrupted run ({reason}); restore the file, or pass "
                     "--overwrite to start the run over") from None  # fmt: skip


def _same_folder(recorded: Any, now: Any) -> bool:
    """Whether two recorded folder paths name the same folder (``d`` and ``$PWD/d``)."""
    if not (isinstance(recorded, str) and isinstance(now, str) and recorded and now):
        return False
    return Path(recorded).expanduser().resolve() == Path(now).expanduser().resolve()


def _check_checkpoint_fits(out: Path, last: Path, model: MultiTaskRecommender) -> None:
    """Refuse to resume from a ``last`` whose weights have other shapes than ``model``'s, built
    from the data as it is now: users, items or graph nodes were added or removed since the run
    started, or the graph recipe changed (Lightning's refusal was a traceback of size mismatches)."""
    saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
    shapes = {f"model.{key}": tuple(value.shape) for key, value in model.state_dict().items()}
    differ = [f"{key.removeprefix('model.')} {tuple(value.shape)} in the run, {shapes[key]} now"
              for key, value in saved.items() if key in shapes and tuple(value.shape) != shapes[key]]  # fmt: skip
    if differ:
        raise KgrecError(f"{out} holds an interrupted run trained on other data: its weights do not fit the data and "
                         f"graph as they are now ({'; '.join(differ[:3])}{'; ...' if len(differ) > 3 else ''}); restore "
                         "the data (and graph recipe) the run started on to resume it, or pass --overwrite to start over")  # fmt: skip


def _field_value(config: dict, key: str) -> str:
    """The value of ``section.field`` in a plain config, as JSON (``null`` when it lacks the field)."""
    section, _, name = key.partition(".")
    return json.dumps((config.get(section) or {}).get(name))


def _check_out(out: Path) -> None:
    """``out`` must be new, empty, or a run folder: training into a folder of other files would
    mix them into the run (and ``--overwrite`` would not know what to remove). A folder holding
    other files is a run only with what a run writes first (``config.yaml``) or last: a ``logs/``
    or ``checkpoints/`` of another tool beside them does not make it one (``--overwrite`` deleted
    them). A folder of nothing but run entries is one an ``--overwrite`` was cut short in."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: expected a folder for the run")
    if (above := file_above(out)) is not None:  # the run folder could not be made, once the data was prepared
        raise ConfigError(f"--out {out}: {above} is a file, not a folder; expected a folder for the run")
    visible = [p for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []
    others = [p for p in visible if p.name not in RUN_ENTRIES]
    started = any((out / name).exists() for name in ("config.yaml", "manifest.json", "checkpoints/last.ckpt"))
    if others and not started:
        raise ConfigError(f"--out {out} holds other files and no kgrec run: choose a new or empty folder")


def _next_log_part(logs: Path) -> int:
    """The number of a resumed run's next CSV log folder, ``logs/part-N``: one past the highest
    (counting them reused a number when one had been deleted, and overwrote that log)."""
    numbers = [int(m.group(1)) for p in logs.glob("part-*") if (m := re.fullmatch(r"part-(\d+)", p.name))]
    return max(numbers, default=-1) + 1


def _clear_run(out: Path) -> None:
    """Remove what a run folder holds (:data:`RUN_ENTRIES`, and the ``.NAME.old`` folders an
    interrupted atomic save may have left), the finished-run marker first."""
    import shutil

    for name in RUN_ENTRIES:
        for path in (out / name, out / f".{name}.old"):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
