"""ASGI entry for several uvicorn workers: each worker process builds the app from the environment
(``KGREC_SERVE_RUN``, ``KGREC_API_TOKEN``) that ``kgrec serve --workers N`` sets. Read-only: each
worker holds its own catalog, so ``POST /items`` is refused (409)."""

import os

from kgrec.retrieval import Recommender
from kgrec.serve.app import create_app

app = create_app(
    Recommender.open(os.environ["KGREC_SERVE_RUN"]), token=os.environ.get("KGREC_API_TOKEN") or None, writable=False
)
