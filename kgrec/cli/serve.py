"""``kgrec serve``: the HTTP service over a run (FastAPI + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from kgrec.errors import KgrecError


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "serve",
        help="serve recommend / similar / search / predict over HTTP",
        description="Start an HTTP service over RUN_DIR: GET /health, GET /items/{id}, POST /recommend, "
        "/similar, /search, /predict, POST /items (adds cold-start items) and DELETE /items/{id} (both need the "
        "API token). The OpenAPI "
        "schema is at /openapi.json, interactive docs at /docs. Install with: pip install 'kgrec[serve]'.",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    p.add_argument("--data", type=Path, help="dataset folder, when it moved since training")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default %(default)s); with more than one the service is read-only "
                        "(POST and DELETE /items answer 409: each worker holds its own catalog)")  # fmt: skip
    p.add_argument("--token", default=None,
                   help="API token for writes (default: $KGREC_API_TOKEN; without one, writes are refused)")  # fmt: skip
    p.add_argument("--cors-origin", dest="cors_origins", action="append", default=[], metavar="ORIGIN",
                   help="let browser pages of ORIGIN call the service (https://app.example.com, or * for any; "
                        "repeatable; default: none, and browsers refuse pages of other origins)")  # fmt: skip
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                   help="start taking requests at once; by default one query of each kind is answered first, so "
                        "that no user's first query waits for the model or the text encoder to load")  # fmt: skip
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:  # uvicorn took 70000 as 70000 % 65536 (4464), while this said 70000
        raise KgrecError(f"--port must be from 1 to 65535, got {args.port}")
    if args.workers < 1:  # it served with one worker, as if nothing were wrong
        raise KgrecError(f"--workers must be 1 or more, got {args.workers}")
    try:
        import uvicorn
    except ImportError:
        raise KgrecError("kgrec serve needs the serve extra: pip install 'kgrec[serve]'") from None
    for origin in args.cors_origins:  # a path or a missing scheme never matches a browser's Origin header
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise KgrecError(f"--cors-origin {origin!r}: expected scheme://host[:port] (https://app.example.com), or *")
    token = args.token or os.environ.get("KGREC_API_TOKEN") or None
    if args.workers > 1:
        from kgrec.train.saved import check_run_files, read_manifest

        # each worker opens the run itself: a folder that is not a run was a traceback per worker, and
        # a server that never answered
        check_run_files(args.run, read_manifest(args.run))
        os.environ["KGREC_SERVE_RUN"] = str(args.run)
        os.environ.pop("KGREC_SERVE_DATA", None)
        if args.data is not None:
            os.environ["KGREC_SERVE_DATA"] = str(args.data)
        os.environ["KGREC_SERVE_WARM_UP"] = "1" if args.warm_up else "0"
        os.environ["KGREC_SERVE_CORS"] = " ".join(args.cors_origins)
        if token:
            os.environ["KGREC_API_TOKEN"] = token
        uvicorn.run("kgrec.serve.asgi:app", host=args.host, port=args.port, workers=args.workers, log_level="warning")
        return 0
    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    recommender = Recommender.open(args.run, data=args.data)  # the vectors, graph and index
    warmed = recommender.warm_up() if args.warm_up else None
    if warmed is not None:
        print(f"warmed up in {warmed}", flush=True)
    app = create_app(recommender, token=token, warmed=warmed, cors_origins=args.cors_origins)
    print(f"serving {args.run} on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
