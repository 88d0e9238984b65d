"""HTTP service (FastAPI) over a trained run: ``kgrec serve RUN_DIR``. Needs the ``serve`` extra."""
