"""A trained run's retrieval vectors (``RUN_DIR/vectors.safetensors``), read and checked against
its dataset, with the catalog of items they are searched over. A run trained without the
retrieval tower (``model.tasks=[rating]``, ``[rating, like]``) has none: it opens predict-only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kgrec.errors import RetrievalError
from kgrec.retrieval.catalog import Catalog
from kgrec.utils.io import sha256_file

if TYPE_CHECKING:
    from kgrec.train.saved import LoadedRun


@dataclass(frozen=True)
class RunVectors:
    """The loaded ``run``, its ``catalog``, its ``user_vectors`` ``(U, d)`` and the SHA-256 of
    ``vectors.safetensors`` (``vectors_sha256``, what a saved index must have been built from).

    A run trained without the retrieval tower has no vectors: ``user_vectors`` and the catalog's
    vectors are then zero-width (``d = 0``), ``vectors_sha256`` is ``""`` (the catalog's
    ``base_sha256`` is then that of ``model.safetensors``: what added items were embedded by),
    and ``no_retrieval`` says so (what its queries other than predict answer); else
    ``no_retrieval`` is ``None``."""

    run: LoadedRun
    catalog: Catalog
    user_vectors: np.ndarray
    vectors_sha256: str
    no_retrieval: str | None = None


def predict_only_queries(has_text: bool) -> tuple[str, str]:
    """What a run without retrieval vectors answers and what it does not, in words: ``search``
    compares the text encoder's vectors, so a run with text answers it too."""
    if has_text:
        return "predict and search only", "recommend or find similar items"
    return "predict only", "recommend, find similar items or search"


def load_run_vectors(run_dir: str | Path, data: str | Path | None = None) -> RunVectors:
    """Load a run folder's model, dataset (from ``data`` when it moved since training), retrieval
    vectors and catalog (the items added and removed since training applied).

    A run trained without the retrieval tower (its ``config.yaml``'s ``model.tasks``) has no
    vectors: see :class:`RunVectors`.

    Raises:
        RetrievalError: the run has no retrieval vectors though its config has the retrieval
            tower, they cannot be read, or they do not match the dataset.
        KgrecError: not a run folder, or its dataset is gone or changed.
    """
    from safetensors.numpy import load_file

    from kgrec.train.config import load_config
    from kgrec.train.saved import check_run_files, load_run, read_manifest

    run_dir = Path(run_dir)
    check_run_files(run_dir, read_manifest(run_dir))
    vectors_file = run_dir / "vectors.safetensors"
    if vectors_file.is_file():
        try:
            vectors = load_file(str(vectors_file))
        except Exception as error:  # safetensors raises its own types for corrupt files
            raise RetrievalError(f"{vectors_file}: cannot read it ({error})") from None
        if "item" not in vectors or "user" not in vectors:
            raise RetrievalError(f"{vectors_file}: expected 'user' and 'item' vectors, found {sorted(vectors)}")
        no_retrieval = None
    else:
        model_config = load_config(run_dir / "config.yaml").model
        tasks = model_config.tasks
        if "retrieval" in tasks:  # the folder lost the vectors training wrote
            raise RetrievalError(
                f"{run_dir}: no vectors.safetensors, though its config.yaml has the retrieval tower (model.tasks="
                f"[{', '.join(tasks)}]), so the folder lost the vectors training wrote; restore the file or retrain"
            )
        answers, others = predict_only_queries(model_config.use_text)
        no_retrieval = (f"this run was trained without the retrieval tower (model.tasks=[{', '.join(tasks)}]), so it "
                        f"answers {answers}; retrain with 'retrieval' in model.tasks to {others}")  # fmt: skip
    run = load_run(run_dir, data)
    if no_retrieval is not None:  # zero-width vectors: the catalog's items, nothing to search
        vectors = {"user": np.zeros((run.dataset.n_users, 0), np.float32), "item": np.zeros((run.dataset.n_items, 0), np.float32)}
    sha = sha256_file(vectors_file) if no_retrieval is None else ""
    titles = [str(n) for n in run.graph.names[: run.dataset.n_items]] if run.graph is not None else None
    text_dim = run.text.shape[1] if run.text is not None else 0
    # the added items' fused vectors are the model's: a catalog of a run without vectors is tied to its weights
    stamp = sha or sha256_file(run_dir / "model.safetensors")
    fused_dim = run.config.model.dim if run.config.model.rec_tasks else 0  # the config: the model is built on first use
    catalog = Catalog.load(run_dir, run.dataset, vectors["item"], stamp, titles, text_dim, fused_dim)  # graph names: "Title (1977)"
    if vectors["user"].shape[0] != run.dataset.n_users:
        raise RetrievalError(
            f"{vectors_file}: {vectors['user'].shape[0]} user vectors, the dataset has {run.dataset.n_users} users"
        )
    return RunVectors(run, catalog, vectors["user"], sha, no_retrieval)
