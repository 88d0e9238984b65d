"""Read a run folder back: config, weights (safetensors), graph and text vectors (``kgrec eval``)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

import kgrec
from kgrec.data import Dataset
from kgrec.errors import DataWarning, KgrecError
from kgrec.eval import cold_candidates
from kgrec.graph import HeldOutTriples, KnowledgeGraph
from kgrec.models import ModelSizes, MultiTaskRecommender
from kgrec.train.config import RunConfig, load_config, load_data
from kgrec.train.run import KG_HELDOUT, RUN_FORMAT, TEXT_ENCODER_DIR, side_inputs
from kgrec.utils.config import yaml_text
from kgrec.utils.io import read_safetensors, source_mismatch

RESTORE = "restore the run folder's copy, or retrain"  # what to do about a damaged file of a run


@dataclass
class LoadedRun:
    """A trained model with everything it reads, as :func:`kgrec.train.train` left it.

    The model itself is built and its weights loaded on first use of :attr:`model`: a query
    answered from the saved vectors (``recommend`` for a known user, ``similar``) needs none
    of it, and building its side inputs (the history and rating matrices) takes a second on
    ml-100k."""

    path: Path
    config: RunConfig
    manifest: dict[str, Any]
    dataset: Dataset
    graph: KnowledgeGraph | None
    text: torch.Tensor | None
    kg_heldout: HeldOutTriples | None = None
    _model: MultiTaskRecommender | None = field(default=None, repr=False)

    @property
    def model(self) -> MultiTaskRecommender:
        """The trained model in eval mode, with its side inputs attached."""
        if self._model is None:
            sizes = model_sizes(self.path, self.manifest)
            model = MultiTaskRecommender(self.config.model, sizes, side_inputs(self.dataset, self.config.model, self.graph, self.text))
            weights = self.path / "model.safetensors"
            try:
                model.load_state_dict(read_safetensors(weights, RESTORE))
            except RuntimeError as error:  # another run's weights, or a config.yaml edited or cut short since
                said = " ".join(str(error).split())
                raise KgrecError(
                    f"{weights}: its weights do not fit the model that the run's config.yaml describes "
                    f"({said[:300]}{'...' if len(said) > 300 else ''}); "
                    + advice(self.manifest, "restore the run folder's copies of both files, or retrain")
                ) from None
            self._model = model.eval()
        return self._model


def _release(version: object) -> tuple[int, ...]:
    """The release numbers at the start of a version string: ``"0.2.1rc1"`` -> ``(0, 2, 1)``."""
    match = re.match(r"\d+(?:\.\d+)*", str(version))
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def newer_kgrec(manifest: dict[str, Any]) -> str | None:
    """The kgrec version that wrote a run, when it is newer than this kgrec; else ``None``."""
    written = manifest.get("kgrec_version")
    return str(written) if _release(written) > _release(kgrec.__version__) else None


def advice(manifest: dict[str, Any], fix: str = RESTORE) -> str:
    """What to do about a run file this kgrec cannot read: upgrade, for a run that a newer kgrec
    wrote (a config field, a value or a size this one does not know yet), else ``fix``."""
    written = newer_kgrec(manifest)
    if written:
        return f"the run was written by kgrec {written}, newer than this kgrec {kgrec.__version__}: upgrade kgrec to read it, or retrain"
    return fix


def model_sizes(run: Path, manifest: dict[str, Any]) -> ModelSizes:
    """The manifest's ``sizes`` as :class:`ModelSizes`; a clear error for sizes this kgrec does
    not know (a run from a newer kgrec) or a damaged manifest."""
    sizes = manifest.get("sizes")
    error: Exception | None = None
    if isinstance(sizes, dict):
        try:
            return ModelSizes(**{**sizes, "rating_range": tuple(sizes.get("rating_range") or ()) or None})
        except (TypeError, ValueError) as failure:  # a size this kgrec does not know, a value of the wrong kind
            error = failure
    said = f" ({' '.join(str(error).split())[:200]})" if error else " (no 'sizes' object)"
    raise KgrecError(f"{run / 'manifest.json'}: its model sizes do not read here{said}; {advice(manifest)}")


def read_manifest(run: str | Path) -> dict[str, Any]:
    """The run's manifest; a clear error when the folder is not a finished run of this format."""
    run = Path(run)
    path = run / "manifest.json"
    if not path.is_file():
        if run.is_file():
            raise KgrecError(f"{run}: not a finished kgrec run (a file; a run is the folder `kgrec train --out` wrote)")
        if not run.is_dir():
            raise KgrecError(f"{run}: not a finished kgrec run (no such folder); train one with `kgrec train --out {run}`")
        if (run / "checkpoints" / "last.ckpt").is_file():  # written after every epoch; the manifest comes last
            raise KgrecError(f"{run}: not a finished kgrec run: its training was interrupted (checkpoints/last.ckpt, "
                             "no manifest.json); run the `kgrec train` command that started it again to resume and "
                             "finish it")  # fmt: skip
        raise KgrecError(f"{run}: not a finished kgrec run (no manifest.json); train one with `kgrec train`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise KgrecError(f"{path}: not valid JSON ({error}); retrain the model or restore the file") from None
    if not isinstance(manifest, dict):
        raise KgrecError(f"{path}: expected a JSON object")
    kind, version = manifest.get("format"), manifest.get("format_version")
    if kind != "kgrec-run" or version != RUN_FORMAT or type(version) is not int:  # not true, which == 1
        said = f"{path}: run format {kind} v{version if type(version) is int else json.dumps(version)}, this kgrec reads kgrec-run v{RUN_FORMAT}"
        if kind == "kgrec-run" and type(version) is int and version > RUN_FORMAT:  # from a newer kgrec: retraining is not the fix
            written = manifest.get("kgrec_version") or "a newer kgrec"
            raise KgrecError(f"{said}; the run was written by kgrec {written} (this is kgrec {kgrec.__version__}): "
                             "upgrade kgrec to read it, or retrain the model with this one")  # fmt: skip
        if kind != "kgrec-run" or type(version) is not int:  # no run manifest kgrec ever wrote
            raise KgrecError(f"{said}; not the manifest of a kgrec run, or a damaged one: restore the file, or retrain the model")
        raise KgrecError(f"{said}; retrain the model")
    return manifest


RUN_FILES_READ = ("config.yaml", "model.safetensors", "vectors.safetensors", "text.safetensors", "graph", KG_HELDOUT, TEXT_ENCODER_DIR)


def check_run_files(run: Path, manifest: dict[str, Any]) -> None:
    """Refuse a run folder that lacks a file its manifest lists and queries read (a run copied
    in part): otherwise a missing ``text.safetensors`` would read as a run trained without text."""
    missing = [name for name in RUN_FILES_READ if name in manifest.get("files", ()) and not (run / name).exists()]
    if missing:
        raise KgrecError(
            f"{run}: {', '.join(missing)} missing (the run's manifest.json lists {'them' if len(missing) > 1 else 'it'}): "
            "the folder is incomplete; copy the run folder whole, restore the file, or retrain"
        )


def load_run(run: str | Path, data: str | Path | None = None) -> LoadedRun:
    """Load a run folder. ``data`` overrides the dataset folder recorded at training time."""
    run = Path(run)
    manifest = read_manifest(run)
    check_run_files(run, manifest)
    lacking = [key for key, kind in (("dataset_path", str), ("split", str)) if not isinstance(manifest.get(key), kind)]
    if lacking:
        raise KgrecError(f"{run / 'manifest.json'}: no {' or '.join(lacking)} in it (damaged); {RESTORE}")
    sizes = model_sizes(run, manifest)
    if data is None and not Path(manifest["dataset_path"]).is_dir():
        raise KgrecError(
            f"{run}: the dataset it was trained on is no longer at {manifest['dataset_path']} (moved or deleted); "
            "give its folder with --data DIR (data= in Python)"
        )
    overrides = [f"data.path={yaml_text(str(data or manifest['dataset_path']))}"]
    if (run / TEXT_ENCODER_DIR).is_dir():  # fine-tuned with the model: queries must use it too
        overrides.append(f"text.model={yaml_text(str(run / TEXT_ENCODER_DIR))}")  # verbatim: " run" is not "run"
    try:
        config = load_config(run / "config.yaml", overrides)
    except KgrecError as error:
        if not newer_kgrec(manifest):
            raise
        raise KgrecError(f"{error}; {advice(manifest)}") from None  # a field or value this kgrec does not know yet
    with warnings.catch_warnings():
        if data is None:  # the run's own data (its sources checked below): training said what reading it warns of
            warnings.simplefilter("ignore", DataWarning)  # each query repeated it (rows labelled 0, ...)
        dataset = load_data(config)
    if (dataset.split, dataset.n_items, dataset.n_users) != (manifest["split"], sizes.num_items, sizes.num_users):
        raise KgrecError(
            f"{run}: the dataset at {config.data.path} ({dataset.n_users} users, {dataset.n_items} items, split "
            f"{dataset.split}) is not the one the run was trained on ({sizes.num_users} users, "
            f"{sizes.num_items} items, split {manifest['split']})"
        )
    if manifest.get("sources"):  # runs from before sources were recorded rely on the graph's check
        mismatch = source_mismatch(manifest["sources"], dataset.sources)
        if mismatch:
            raise KgrecError(f"{run}: not the data the run was trained on: {mismatch}; retrain or restore it")
    graph = None
    if (run / "graph").is_dir():  # the same files: hashed once
        graph = KnowledgeGraph.load(run / "graph", dataset=dataset, check_sources=not manifest.get("sources"))
    text = read_safetensors(run / "text.safetensors", RESTORE)["text"] if (run / "text.safetensors").is_file() else None
    kg_heldout = HeldOutTriples.load(run / KG_HELDOUT) if (run / KG_HELDOUT).is_file() else None
    return LoadedRun(run, config, manifest, dataset, graph, text, kg_heldout)


def evaluate_run(run: str | Path, data: str | Path | None = None, baselines: bool = False) -> dict[str, Any]:
    """Valid and test metrics of a saved run, recomputed from its weights; with ``baselines``,
    also ``"baselines"`` (a run with the retrieval tower; on a cold-item split, where they would
    score every test item alike, ``"baselines_left_out"`` says so instead): most-popular's and valid-tuned EASE's test metrics on the run's split
    (:func:`kgrec.baselines.reference_metrics`), which rank at K = 10 and 20: the run is then
    evaluated there too, beside its own ``eval.ks``; and, when the run reports a test ``rmse``
    (a rating tower, rated test pairs), ``"rating_baselines"``: the test RMSE and MAE of the
    mean training rating and of the user + item biases with their shrinkage chosen on valid,
    on the same pairs (:func:`kgrec.baselines.rating_reference`)."""
    from kgrec.train.module import evaluate

    loaded = load_run(run, data)
    config = loaded.config
    ranks = "retrieval" in config.model.tasks  # else the rating baselines alone (a rating-only run was refused)
    if baselines and not ranks and "rating" not in config.model.tasks:
        raise KgrecError(f"{run}: trained without the retrieval and rating towers, so it ranks and rates nothing to "
                         "set beside the baselines; leave out --baselines")  # fmt: skip
    cold = baselines and ranks and cold_candidates(loaded.dataset, "test") is not None
    ranks = ranks and not cold  # every test item new to training: most-popular and EASE would score them alike
    if baselines and ranks:  # a run with eval.ks=[5] had no @10 or @20 to set beside theirs (a KeyError)
        if loaded.dataset.n_items < 20:
            raise KgrecError(f"{run}: --baselines ranks at K = 10 and 20, beyond the {loaded.dataset.n_items} items "
                             f"of {loaded.dataset.name}; leave out --baselines")  # fmt: skip
        from kgrec.baselines import with_reference_ks

        config = replace(config, eval=replace(config.eval, ks=with_reference_ks(config.eval.ks)))
    metrics: dict[str, Any] = {
        part: evaluate(loaded.model, loaded.dataset, part, config, loaded.kg_heldout) for part in ("valid", "test")
    }
    if baselines and ranks:
        from kgrec.baselines import reference_metrics

        metrics["baselines"] = reference_metrics(loaded.dataset, "test")
    if cold:
        metrics["baselines_left_out"] = "cold_item: every test item is new to training, so most-popular and EASE score them alike"
    if baselines and "rmse" in metrics["test"]:
        from kgrec.baselines import rating_reference

        metrics["rating_baselines"] = rating_reference(loaded.dataset, "test")
    return metrics
