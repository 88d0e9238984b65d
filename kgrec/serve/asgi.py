"""ASGI entry for several uvicorn workers: each worker process builds the app from the environment
(``KGREC_SERVE_RUN``, ``KGREC_SERVE_DATA``, ``KGREC_API_TOKEN``, ``KGREC_SERVE_WARM_UP``,
``KGREC_SERVE_CORS``: the ``--cors-origin`` values, space-separated) that ``kgrec serve --workers N``
sets, and warms up before it takes requests unless ``KGREC_SERVE_WARM_UP=0`` (a worker listens
only once its app is loaded, so early connections are refused: clients retry). Read-only: each
worker holds its own catalog, so ``POST /items`` and ``DELETE /items/{id}`` are refused (409)."""

import os

from kgrec.retrieval import Recommender
from kgrec.serve.app import create_app

recommender = Recommender.open(os.environ["KGREC_SERVE_RUN"], data=os.environ.get("KGREC_SERVE_DATA") or None)
warmed = recommender.warm_up() if os.environ.get("KGREC_SERVE_WARM_UP", "1") != "0" else None
if warmed is not None:
    print(f"worker {os.getpid()} warmed up in {warmed}", flush=True)
app = create_app(recommender, token=os.environ.get("KGREC_API_TOKEN") or None, writable=False, warmed=warmed,
                 cors_origins=os.environ.get("KGREC_SERVE_CORS", "").split())
