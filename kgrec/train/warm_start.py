r"""Warm start: begin training from a finished run's weights (``train.init_from``).

Retraining on this week's data, most users, items, entities and relations are last week's. A
warm start copies what the earlier run learned for them into the new model before the first
epoch, and the new ones keep their fresh initialisation. For every tensor of the new model's
``state_dict``:

* a **row table** (:data:`ROW_AXES`: ID embeddings, biases, the graph encoder's node and relation
  parameters) takes each row from the run's row of the same raw id, when the run has it:

  .. math::
      \mathbf{W}^{\text{new}}_{i} = \mathbf{W}^{\text{run}}_{\pi(i)}
      \quad \text{for every } i \text{ whose id } \pi \text{ finds in the run},

  with users and items matched by raw id, graph nodes by type and key, and relations by name
  (the encoder's inverse of relation ``r`` as ``r``'s inverse);
* **any other tensor** (trunks, towers, the text adaptor, fusion) is copied whole when the run
  has it under the same name and shape.

What cannot be carried (another shape: ``model.dim`` changed; another name: another trunk; user
feature embeddings, whose vocabulary the run does not save) stays as initialised, and
:class:`WarmStart` says what was carried. Only the weights are carried: the optimiser starts
afresh, and so do early stopping and the learning-rate schedule. A transformer the run
fine-tuned (``text.finetune_layers``, saved as ``text-encoder/``) is not part of the model's
weights: the item texts are encoded by ``text.model``, and the note names ``text-encoder/`` as
left behind unless ``text.model`` is that folder; a run whose item texts another ``text.model``
encoded is named too (its text adaptor, carried by shape, learned on that transformer's vectors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kgrec.data import Dataset
from kgrec.errors import ConfigError, KgrecError
from kgrec.graph import KnowledgeGraph

# What the rows of each row table are: parameter name (full match) -> axis of row_tokens()
ROW_AXES: tuple[tuple[str, str], ...] = (
    (r"user_encoder\.id_embedding\.weight", "user"),
    (r"towers\.\w+\.user_bias\.weight", "user"),
    (r"towers\.rating\.autorec\.(encoder|decoder)", "user"),  # item-based AutoRec: a user per input unit
    (r"item_embedding\.weight", "item"),
    (r"towers\.\w+\.item_bias\.weight", "item"),
    (r"graph_encoder\.embedding\.weight", "node"),
    (r"towers\.kg\.relation\.weight", "relation"),
    # the encoder's relations are the graph's and their inverses (add_inverse); an R-GCN layer's
    # "weight" holds its bases instead when it has them, which its row count tells
    (r"graph_encoder\.(relation_embedding|layers\.\d+\.(comp|weight|rel_weight|rel_embedding))", "encoder_relation"),
    (r"user_encoder\.feature_embedding\.weight", "user_feature"),
)
# state of a training run rather than what it learned: recorded afresh (GradNorm's L_m(0))
NOT_CARRIED = {"joint_loss.initial_losses": "GradNorm's first losses, recorded afresh"}
AXIS_WORDS = {"user": "users", "item": "items", "node": "graph nodes", "relation": "relations",
              "encoder_relation": "encoder relations", "user_feature": "user feature tokens"}  # fmt: skip
INVERSE = "~inverse"


def row_axis(name: str) -> str | None:
    """The axis a parameter's rows run along (:data:`ROW_AXES`), ``None`` for other tensors."""
    return next((axis for pattern, axis in ROW_AXES if re.fullmatch(pattern, name)), None)


def row_tokens(users: list[str], items: list[str], graph: KnowledgeGraph | None) -> dict[str, list[str]]:
    """Each axis's ids in row order: raw user and item ids, ``type:key`` for graph nodes, relation
    names, and the encoder's relations (the names, then each with :data:`INVERSE`). User feature
    tokens are not known from a saved run, so that axis has none."""
    tokens = {"user": list(users), "item": list(items)}
    if graph is not None:
        types = np.asarray(graph.node_type).astype(str)
        tokens["node"] = [f"{t}:{k}" for t, k in zip(types.tolist(), np.asarray(graph.keys).astype(str).tolist(), strict=True)]
        relations = np.asarray(graph.relation_names).astype(str).tolist()
        tokens["relation"] = relations
        tokens["encoder_relation"] = relations + [r + INVERSE for r in relations]
    return tokens


def dataset_row_tokens(dataset: Dataset, graph: KnowledgeGraph | None) -> dict[str, list[str]]:
    """:func:`row_tokens` of a model about to train on ``dataset`` and ``graph``."""
    return row_tokens([str(u) for u in dataset.users], [str(i) for i in dataset.items], graph)


@dataclass
class WarmStart:
    """What :func:`warm_start` carried from the run."""

    run: Path
    tensors: int = 0  # tensors the model has
    carried: int = 0  # tensors that took values from the run
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # axis -> (rows found in the run, rows)
    not_carried: list[str] = field(default_factory=list)  # "name (why)"
    other_dataset: str | None = None  # the run's dataset, when another than this one's

    def note(self) -> str:
        """One line: ``warm start from RUN: 80 of 82 tensors; users 900 of 943, ...``."""
        parts = [f"warm start from {self.run}: {self.carried} of {self.tensors} tensors"]
        if self.other_dataset:
            parts[0] += f" (the run trained on {self.other_dataset}: its ids are matched as they are)"
        parts += [f"{AXIS_WORDS[axis]} {self.rows[axis][0]:,} of {self.rows[axis][1]:,} by id"
                  for axis in ("user", "item", "node", "relation") if axis in self.rows]  # fmt: skip
        line = "; ".join(parts)
        if self.not_carried:
            shown = ", ".join(self.not_carried[:3]) + (f" and {len(self.not_carried) - 3} more" if len(self.not_carried) > 3 else "")
            line += f"; left as initialised: {shown}"
        return line


def read_id_maps(run: Path) -> dict[str, list[str]]:
    """The run's ``id_maps.json`` (raw user and item ids by row), or a :class:`ConfigError`."""
    path = run / "id_maps.json"
    try:
        with open(path, encoding="utf-8") as handle:
            maps = json.load(handle)
    except (OSError, ValueError) as error:  # ValueError: JSON and UTF-8 decoding
        raise ConfigError(f"train.init_from: {path}: not readable ({error}); restore the file or retrain that run",
                          key="train.init_from") from None  # fmt: skip
    if not isinstance(maps, dict) or not all(isinstance(maps.get(key), list) for key in ("users", "items")):
        raise ConfigError(f"train.init_from: {path}: expected a JSON object with the lists 'users' and 'items'; "
                          "restore the file or retrain that run", key="train.init_from")  # fmt: skip
    return maps


def saved_row_tokens(run: Path, manifest: dict) -> dict[str, list[str]]:
    """:func:`row_tokens` of a finished run, from its ``id_maps.json`` and, when its
    ``manifest`` lists one, its ``graph/``."""
    maps = read_id_maps(run)
    graph = None
    if "graph" in manifest.get("files", ()):
        try:
            graph = KnowledgeGraph.load(run / "graph")
        except KgrecError as error:
            raise ConfigError(f"train.init_from: {error}", key="train.init_from") from None
    return row_tokens([str(u) for u in maps["users"]], [str(i) for i in maps["items"]], graph)


def _run_config(run: Path) -> dict:
    """The run's ``config.yaml`` as recorded (a mapping; empty when a run has none), or a
    :class:`ConfigError` when it cannot be read."""
    from kgrec.utils.config import load_yaml

    if not (run / "config.yaml").is_file():
        return {}
    try:
        return load_yaml(run / "config.yaml", "run config")
    except KgrecError as error:
        raise ConfigError(f"train.init_from: {error}; restore the file or retrain that run", key="train.init_from") from None


def _encoder_relations(tokens: dict[str, list[str]], add_inverse: bool) -> dict[str, list[str]]:
    """``tokens`` with the encoder's relations as the graph's alone when its encoder adds no
    inverses (``model.graph_add_inverse=false``): one row per relation, matched by name."""
    if add_inverse or "relation" not in tokens:
        return tokens
    return {**tokens, "encoder_relation": list(tokens["relation"])}


def _same_text_model(a: str, b: str) -> bool:
    """Whether ``text.model`` values ``a`` and ``b`` name one transformer (a name or a folder)."""
    return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _run_manifest(run: Path) -> dict:
    """The manifest of a finished run, or a :class:`ConfigError` saying what the folder is instead."""
    from kgrec.train.saved import read_manifest

    try:
        return read_manifest(run)
    except KgrecError as error:
        raise ConfigError(f"train.init_from: {error}", key="train.init_from") from None


def check_init_run(run: str | Path) -> dict:
    """The manifest of ``train.init_from``, a finished run with its weights, else a
    :class:`ConfigError` saying what the folder is instead: not a run, or a run without (or with
    an unreadable) ``model.safetensors`` or ``id_maps.json``, or without the ``graph/`` its
    manifest lists (the graph's rows would silently go uncarried). Reads the weights' header
    only, so it is quick on large runs."""
    from safetensors import SafetensorError, safe_open

    run = Path(run)
    manifest = _run_manifest(run)
    for name in ("model.safetensors", "id_maps.json"):
        if not (run / name).is_file():
            raise ConfigError(f"train.init_from: {run} has no {name}; retrain that run", key="train.init_from")
    try:
        with safe_open(str(run / "model.safetensors"), framework="pt"):
            pass
    except (OSError, SafetensorError) as error:
        raise ConfigError(f"train.init_from: {run / 'model.safetensors'}: not readable ({error}); restore the file "
                          "or retrain that run", key="train.init_from") from None  # fmt: skip
    read_id_maps(run)
    _run_config(run)
    if "graph" in manifest.get("files", ()) and not (run / "graph").is_dir():
        raise ConfigError(f"train.init_from: {run}: graph missing (the run's manifest.json lists it), so its graph "
                          "nodes and relations could not be matched; copy the run folder whole, restore graph/, "
                          "or retrain that run", key="train.init_from")  # fmt: skip
    return manifest


def warm_start(
    model: nn.Module,
    run: str | Path,
    tokens: dict[str, list[str]],
    dataset: str | None = None,
    text_model: str | None = None,
) -> WarmStart:
    """Copy into ``model`` what finished run ``run`` learned (see the module), its rows found by
    the ids ``tokens`` gives for the model's axes (:func:`dataset_row_tokens`). ``dataset``: the
    name of the data the model trains on; a run of another is noted. ``text_model``: the
    transformer that encodes the model's item texts (``text.model``); a run that fine-tuned its
    own (``text-encoder/``) is noted unless it is that one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run = Path(run)  # checked by check_init_run before training's slow steps; read once here
    manifest = _run_manifest(run)
    trained_on = manifest.get("dataset")
    try:
        saved = load_file(str(run / "model.safetensors"))
    except (OSError, SafetensorError) as error:
        raise ConfigError(f"train.init_from: {run / 'model.safetensors'}: not readable ({error}); restore the file "
                          "or retrain that run", key="train.init_from") from None  # fmt: skip
    recorded = _run_config(run)
    recorded_model, recorded_text = ({} if not isinstance(recorded.get(k), dict) else recorded[k] for k in ("model", "text"))
    saved_tokens = _encoder_relations(saved_row_tokens(run, manifest), recorded_model.get("graph_add_inverse", True) is not False)
    tokens = _encoder_relations(tokens, getattr(getattr(model, "graph_encoder", None), "add_inverse", True))
    state = model.state_dict()
    report = WarmStart(run=run, tensors=len(state), other_dataset=trained_on if dataset and trained_on != dataset else None)
    updated: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        old = saved.get(name)
        axis = row_axis(name)
        if old is None or name in NOT_CARRIED:
            report.not_carried.append(f"{name} ({NOT_CARRIED.get(name, 'not in the run')})")
            continue
        is_table = False
        if axis is not None:
            new_rows, old_rows = tokens.get(axis), saved_tokens.get(axis)
            if new_rows is None or old_rows is None:
                why = "the run does not save their ids" if axis == "user_feature" else "one model has no graph"
                report.not_carried.append(f"{name} (its rows are {AXIS_WORDS[axis]}: {why})")
                continue
            is_table = tensor.shape[0] == len(new_rows)
            if is_table != (old.shape[0] == len(old_rows)):  # e.g. an R-GCN's bases in one model only
                report.not_carried.append(f"{name} (its rows are {AXIS_WORDS[axis]} in one model only)")
                continue
        if tuple(old.shape[int(is_table):]) != tuple(tensor.shape[int(is_table):]):
            report.not_carried.append(f"{name} (shape {tuple(old.shape)} in the run, {tuple(tensor.shape)} here)")
            continue
        if not is_table:
            updated[name] = old.to(device=tensor.device, dtype=tensor.dtype)
            report.carried += 1
            continue
        assert new_rows is not None and old_rows is not None and axis is not None
        position = {token: i for i, token in enumerate(old_rows)}
        source = np.array([position.get(token, -1) for token in new_rows], dtype=np.int64)
        found = source >= 0
        value = tensor.detach().clone()
        rows = old[torch.from_numpy(source[found])].to(device=tensor.device, dtype=tensor.dtype)
        value[torch.from_numpy(np.flatnonzero(found)).to(tensor.device)] = rows
        updated[name] = value
        report.carried += 1
        report.rows.setdefault(axis, (int(found.sum()), len(new_rows)))
    model.load_state_dict(updated, strict=False)
    from kgrec.train.run import TEXT_ENCODER_DIR

    fine_tuned = run / TEXT_ENCODER_DIR
    from_fine_tuned = text_model is not None and _same_text_model(str(fine_tuned), text_model)
    if text_model is not None and fine_tuned.is_dir() and not from_fine_tuned:
        why = f"the transformer the run fine-tuned: the item texts are encoded by text.model; text.model={run / TEXT_ENCODER_DIR} starts from it"
        report.not_carried.insert(0, f"{TEXT_ENCODER_DIR}/ ({why})")  # first: the note shows three
    run_text = recorded_text.get("model")
    if (text_model is not None and recorded_model.get("use_text") and isinstance(run_text, str)
            and not _same_text_model(run_text, text_model) and not from_fine_tuned):  # fmt: skip
        adaptor = ": the text adaptor carried learned on its vectors" if any(n.startswith("text_adaptor.") for n in updated) else ""
        report.not_carried.insert(0, f"text.model {run_text} (the run's item texts were encoded by it, here by {text_model}{adaptor})")
    return report
