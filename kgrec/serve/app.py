"""HTTP service over a trained run (``kgrec serve RUN_DIR``): FastAPI, one Recommender per process.

Endpoints (JSON; the schema is served at ``/openapi.json``, interactive docs at ``/docs``):

===================  ==========================================================================
``GET /health``      status, catalogue and user counts, query kinds the warm-up found failing
``GET /items/{id}``  one item: title and columns
``POST /recommend``  ``{"user": "196", "k": 10}``; or ``liked`` items / ``likes_text`` for a new user
``POST /similar``    ``{"item": "50", "k": 10}``
``POST /search``     ``{"text": "animated film for children", "k": 10}``
``POST /predict``    ``{"user": "196", "items": ["50", "181"]}``: predicted rating, like probability
``POST /items``      add cold-start items (needs the API token: ``Authorization: Bearer TOKEN``)
===================  ==========================================================================

Every ranking query accepts ``where`` (``["class=Comedy"]``), ``exclude`` (item ids) and ``explain``.
Input errors answer 4xx with ``{"detail": "..."}`` (unknown ids 404, other bad input 400 or
422, bodies over ``max_body_bytes`` 413, a missing or wrong token 401), never 5xx. The run
loads once: ``kgrec serve`` opens it and calls :meth:`~kgrec.retrieval.Recommender.warm_up`
before the port opens (with several workers, before each worker takes requests), so that the model and the text encoder are loaded before the first
query (without the warm-up, on the first query that needs them); a lock serialises queries, so
they are thread-safe.
"""

from __future__ import annotations

import hmac
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kgrec.errors import DataError, IndexOutOfDateError, KgrecError, NotFoundError
from kgrec.retrieval import Recommender, Result, WarmUp

MAX_K = 1000


class Query(BaseModel):
    """Options shared by every query."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(10, ge=1, le=MAX_K, description="how many items to return")
    where: list[str] = Field(default_factory=list, description='filters such as "class=Comedy" (item columns)')
    exclude: list[str] = Field(default_factory=list, description="item ids never to return")
    explain: bool = Field(True, description="attach an explanation to every result")


class RecommendRequest(Query):
    user: str | None = Field(None, description="raw user id known to the run")
    liked: list[str] = Field(default_factory=list, description="for a new user: items they like")
    likes_text: str | None = Field(None, description="for a new user: a text of their interests")
    exclude_seen: bool = Field(True, description="leave out items the user interacted with")


class SimilarRequest(Query):
    item: str = Field(..., description="raw item id")


class SearchRequest(Query):
    text: str = Field(..., min_length=1, max_length=2000, description="free text")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(..., description="raw user id known to the run")
    items: list[str] = Field(..., min_length=1, max_length=MAX_K, description="raw ids of items the model trained on")


class Predicted(BaseModel):
    item_id: str
    title: str
    rating: float | None = Field(description="the rating tower's predicted rating (null without one)")
    like: float | None = Field(description="the like tower's probability that the user likes it (null without one)")
    score: float = Field(description="the retrieval score recommend ranks by")


class Predictions(BaseModel):
    predictions: list[Predicted]


class NewItems(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[dict[str, Any]] = Field(..., min_length=1, max_length=10_000,
                                        description='rows with "item_id" and item columns (lists for token_seq)')  # fmt: skip
    links: list[dict[str, str]] = Field(default_factory=list, description='rows {"item_id", "entity_id"}')
    pathways: list[Literal["text", "graph"]] = Field(["text", "graph"], min_length=1,
                                                     description="the pathways that embed the new items")  # fmt: skip


class Item(BaseModel):
    item_id: str
    title: str
    score: float
    explanation: dict[str, Any] | None = None


class Results(BaseModel):
    results: list[Item]
    unmatched_filters: list[str] = Field(
        default_factory=list,
        description="when results is empty: each `where` filter that matches no item, with the closest value",
    )


def create_app(
    recommender: Recommender,
    token: str | None = None,
    max_body_bytes: int = 1 << 20,
    writable: bool = True,
    warmed: WarmUp | None = None,
) -> FastAPI:
    """The FastAPI app serving ``recommender``. Writes (``POST /items``) need ``token``; with
    no token they are refused, and so they are with ``writable=False`` (409): each of several
    worker processes holds its own catalog, so an item one of them added would be neither served
    by the others nor kept by their next write. ``warmed``, what
    :meth:`~kgrec.retrieval.Recommender.warm_up` did, lets ``GET /health`` name the query kinds
    that failed (``"unavailable"``), which the other kinds do not stop being served."""
    app = FastAPI(title="kgrec", version="1", description=__doc__)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    lock = threading.Lock()

    @app.exception_handler(KgrecError)
    async def input_error(request: Request, error: KgrecError) -> JSONResponse:
        status = 404 if isinstance(error, NotFoundError) else 503 if isinstance(error, IndexOutOfDateError) else 400
        return JSONResponse({"detail": str(error)}, status_code=status)

    def results(found: list[Result], where: list[str]) -> JSONResponse:
        # Result.to_dict() already has Item's fields and types; returning a response skips
        # FastAPI's re-validation of the response model (the schema still declares Results).
        body: dict[str, Any] = {"results": [r.to_dict() for r in found]}
        if not found and where:
            body["unmatched_filters"] = recommender.catalog.unmatched_filters(where)
        return JSONResponse(body)

    @app.get("/health")
    def health() -> Any:
        if recommender.index_error is not None:  # queries answer 503 too: take this process out of rotation
            return JSONResponse({"status": "index out of date", "detail": recommender.index_error}, status_code=503)
        answer = {"status": "ok", "items": recommender.catalog.n_active, "users": recommender.run.dataset.n_users}
        if warmed is not None and warmed.errors:
            answer["unavailable"] = warmed.errors  # e.g. {"search": "text model ... is not on this machine"}
        return answer

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, Any]:
        with lock:
            position = recommender.catalog.position(item_id)
            row = recommender.catalog.row(position)
        return {"item_id": item_id, "title": recommender.catalog.titles[position], "columns": _plain(row)}

    @app.post("/recommend", response_model=Results)
    def recommend(body: RecommendRequest) -> JSONResponse:
        options = {"where": body.where, "exclude": body.exclude, "explain": body.explain}
        with lock:
            if body.user is not None:
                if body.liked or body.likes_text:
                    raise HTTPException(400, "give either user, or liked / likes_text for a new user, not both")
                return results(recommender.recommend(body.user, body.k, exclude_seen=body.exclude_seen, **options), body.where)
            return results(recommender.recommend_for_new_user(body.liked, body.likes_text, body.k, **options), body.where)

    @app.post("/similar", response_model=Results)
    def similar(body: SimilarRequest) -> JSONResponse:
        with lock:
            return results(recommender.similar(body.item, body.k, where=body.where, exclude=body.exclude,
                                               explain=body.explain), body.where)  # fmt: skip

    @app.post("/search", response_model=Results)
    def search(body: SearchRequest) -> JSONResponse:
        with lock:
            return results(recommender.search(body.text, body.k, where=body.where, exclude=body.exclude,
                                              explain=body.explain), body.where)  # fmt: skip

    @app.post("/predict", response_model=Predictions)
    def predict(body: PredictRequest) -> JSONResponse:
        with lock:
            return JSONResponse({"predictions": [p.to_dict() for p in recommender.predict(body.user, body.items)]})

    @app.post("/items", status_code=201)
    def add_items(body: NewItems, authorization: str | None = Header(None)) -> dict[str, Any]:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "adding items needs the API token: Authorization: Bearer TOKEN")
        if not writable:
            raise HTTPException(409, "adding items needs a single-process server (kgrec serve without --workers): "
                                     "each worker holds its own catalog; or run `kgrec add-items` and restart")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp, lock:
            items_file, link_file = _write_atomic_files(Path(tmp), body, recommender.catalog.feature_types)
            try:
                added = recommender.add_items(items_file, link=link_file, pathways=body.pathways)
            except DataError as error:  # located in the request, not in the temporary files
                if error.path not in (items_file, link_file):
                    raise
                part = "items" if error.path == items_file else "links"
                where = part if error.line is None or error.line < 2 else f"{part}[{error.line - 2}]"
                column = f" column '{error.column}'" if error.column else ""
                raise KgrecError(f"{where}{column}: {error.message}") from None
        return {"added": added}

    return app


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``: a declared ``Content-Length`` over it
    (or not a number), or a chunked body (no length) that grows past it while it is read.

    A plain ASGI wrapper rather than ``@app.middleware("http")``, whose per-request task and
    streaming wrapper cost more than a whole fast query. A chunked body is read here, at most
    ``max_bytes`` of it, and handed on whole.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                await self._refuse(scope, receive, send)
                return
            if length is None and any(k == b"transfer-encoding" for k, _ in scope["headers"]):
                chunks, size, more = [], 0, True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away
                        return
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.max_bytes:
                        await self._refuse(scope, receive, send)
                        return
                    more = message.get("more_body", False)
                receive = _replay(b"".join(chunks), receive)
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, status_code=413)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that returns ``body`` as one message, then defers to ``receive``."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict:
        return pending.pop() if pending else await receive()

    return replayed


def _write_atomic_files(folder: Path, body: NewItems, known: dict[str, str]) -> tuple[Path, Path | None]:
    """JSON rows -> ``new.item`` (+ ``new.link``). A column of the catalog keeps its type
    (``known``): a string for a token_seq column is its space-separated tokens, as in a .item
    file, and a number for a token column its text. A new column takes its type from the JSON:
    lists become token_seq, numbers float, else token."""
    columns: dict[str, str] = {}
    first: dict[str, int] = {}
    for i, row in enumerate(body.items):
        if "item_id" not in row:
            raise HTTPException(400, f"items[{i}]: every item needs an 'item_id'")
        if (j := first.setdefault(str(row["item_id"]), i)) != i:
            raise HTTPException(400, f"items[{i}]: item_id '{row['item_id']}' appears again (first at items[{j}])")
        for name, value in row.items():
            guessed = "token_seq" if isinstance(value, list) else "float" if isinstance(value, int | float) else "token"
            kind = known.get(name, guessed)
            if name in known and isinstance(value, list) and not kind.endswith("_seq"):
                raise HTTPException(400, f"items[{i}]: column '{name}' holds one {kind} per item, got a list")
            if columns.setdefault(name, kind) != kind:
                raise HTTPException(400, f"items[{i}]: column '{name}' mixes types ({columns[name]} and {kind})")
    columns["item_id"] = "token"

    def cell(value: Any) -> str:
        text = " ".join(str(v).replace(" ", "_") for v in value) if isinstance(value, list) else str(value)
        return text.replace("\t", " ").replace("\n", " ")

    names = ["item_id", *[c for c in columns if c != "item_id"]]
    lines = ["\t".join(f"{n}:{columns[n]}" for n in names)]
    lines += ["\t".join(cell(row.get(n, "")) for n in names) for row in body.items]
    items_file = folder / "new.item"
    items_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    link_file = None
    if body.links:
        link_file = folder / "new.link"
        rows = [f"{cell(r.get('item_id', ''))}\t{cell(r.get('entity_id', ''))}" for r in body.links]
        link_file.write_text("item_id:token\tentity_id:token\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return items_file, link_file


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        out[name] = value if isinstance(value, str | int | float | list | type(None)) else str(value)
    return out
