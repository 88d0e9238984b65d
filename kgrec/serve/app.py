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
``DELETE /items/{id}`` take an item out of the index, by its raw id (needs the API token)
===================  ==========================================================================

``GET`` endpoints answer ``HEAD`` too (the same status and headers, no body). A method a path does not
take (``OPTIONS`` included) answers 405 with ``Allow`` listing every one it does: ``GET, HEAD`` for
``/health``, ``DELETE, GET, HEAD`` for ``/items/{id}``, ``POST`` for the queries.
Every ranking query accepts ``where`` (``["class=Comedy"]``), ``exclude`` (item ids) and ``explain``.
Ids are strings, or integers (ml-100k's ids are numbers: ``{"user": 196}`` is user ``"196"``);
``k`` is a JSON integer. Input errors answer 4xx, never 5xx: a body that does not fit the schema
422 (FastAPI's list of errors in ``detail``), every other error ``{"detail": "..."}`` (unknown
ids 404, other bad input 400, bodies over ``max_body_bytes`` 413, a missing or wrong token 401,
writes on a server without a token 403, an item id already in the catalog or a several-worker
server 409). A run trained without the retrieval tower (``model.tasks=[rating, like]``) is served
predict-only: ``POST /predict`` answers (``score`` null), the other queries and the writes answer
409 saying so. The run
loads once: ``kgrec serve`` opens it and calls :meth:`~kgrec.retrieval.Recommender.warm_up`
before the port opens (with several workers, before each worker takes requests), so that the model and the text encoder are loaded before the first
query (without the warm-up, on the first query that needs them); a lock serialises queries, so
they are thread-safe.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from kgrec.errors import DataError, IndexOutOfDateError, KgrecError, NotFoundError, PredictOnlyError
from kgrec.retrieval import Recommender, Result, WarmUp
from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.coldstart import template_columns
from kgrec.utils.names import closest

MAX_K = 1000
# What one request may ask for, so that no request holds the server (one at a time) for long:
# 20,000 filters took 68 s and a 140 KB likes_text 15 s on ml-100k, /health waiting behind them.
MAX_FILTERS = 50
MAX_IDS = 10_000
MAX_TEXT = 2000

#: Request bodies: no unknown field, and no conversion (``k`` takes a JSON integer, not "5",
#: 5.0 or true; flags take true / false only).
STRICT = ConfigDict(extra="forbid", strict=True)


class SafeJSON(JSONResponse):
    """A JSON response that never fails on what a request echoed: a lone UTF-16 surrogate
    (``"\\ud800"`` in a request, which Python's JSON parser accepts) is written back as the
    same ``\\ud800`` escape, not a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def _has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate, which no UTF-8 file can store."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def _id(value: object) -> str:
    """A raw id: a string, or an integer as its decimal string (ml-100k's ids are numbers)."""
    if isinstance(value, str):
        if _has_surrogate(value):
            raise PydanticCustomError("id_text", "Input should be an id without a lone UTF-16 surrogate (\\ud800-\\udfff)")
        return value
    if type(value) is int:  # not a bool, not a float
        return str(value)
    raise PydanticCustomError("id_type", "Input should be an id: a string or an integer")


Id = Annotated[str, PlainValidator(_id, json_schema_input_type=str | int)]


class Query(BaseModel):
    """Options shared by every query."""

    model_config = STRICT
    k: int = Field(10, ge=1, le=MAX_K, description="how many items to return")
    where: list[str] = Field(default_factory=list, max_length=MAX_FILTERS,
                             description='filters such as "class=Comedy" (item columns)')  # fmt: skip
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_IDS, description="item ids (or titles) never to return")
    explain: bool = Field(True, description="attach an explanation to every result")


class RecommendRequest(Query):
    user: Id | None = Field(None, description="raw user id known to the run")
    liked: list[Id] = Field(default_factory=list, max_length=MAX_IDS, description="for a new user: items they like (ids or titles)")
    likes_text: str | None = Field(None, min_length=1, max_length=MAX_TEXT, description="for a new user: a text of their interests")
    exclude_seen: bool = Field(True, description="for a known user: false keeps the items they interacted with")


class SimilarRequest(Query):
    item: Id = Field(..., description="raw item id, or the item's title")


class SearchRequest(Query):
    text: str = Field(..., min_length=1, max_length=MAX_TEXT, description="free text")


class PredictRequest(BaseModel):
    model_config = STRICT
    user: Id = Field(..., description="raw user id known to the run")
    items: list[Id] = Field(..., min_length=1, max_length=MAX_K, description="raw ids (or titles) of items the model trained on")


class Predicted(BaseModel):
    item_id: str
    title: str
    rating: float | None = Field(description="the rating tower's predicted rating (null without one)")
    like: float | None = Field(description="the like tower's probability that the user likes it (null without one)")
    score: float | None = Field(description="the retrieval score recommend ranks by (null without a retrieval tower)")


class Predictions(BaseModel):
    predictions: list[Predicted]


class Link(BaseModel):
    model_config = STRICT
    item_id: Id = Field(..., description="a new item of this request")
    entity_id: Id = Field(..., description="the knowledge-graph entity it is")


class NewItems(BaseModel):
    model_config = STRICT
    items: list[dict[str, Any]] = Field(
        ..., min_length=1, max_length=10_000,
        description='rows with "item_id" and the catalog\'s item columns: a string or a number, a list of tokens '
                    "or a space-separated string for a token_seq column, a list of numbers for a float_seq one; "
                    "null or absent for an empty value, except in the columns the text template needs",
    )  # fmt: skip
    links: list[Link] = Field(default_factory=list, description="the KG entity of some new items")
    pathways: list[Literal["text", "graph"]] = Field(["text", "graph"], min_length=1,
                                                     description="the pathways that embed the new items")  # fmt: skip


class Error(BaseModel):
    """The body of every error but 422 (whose ``detail`` is FastAPI's list of schema errors)."""

    detail: str = Field(description="what is wrong and what was expected")


class Health(BaseModel):
    status: Literal["ok"]
    items: int = Field(description="items the catalog serves")
    users: int = Field(description="users of the run")
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="query kinds the warm-up found failing, with why (absent when none)"
    )
    predict_only: str | None = Field(
        default=None, description="why the server answers POST /predict only (a run trained without the retrieval "
        "tower; absent otherwise), known without a warm-up"
    )


class OutOfDate(BaseModel):
    status: Literal["index out of date", "catalog unreadable"]
    detail: str = Field(description="what failed, and the repair (kgrec index build RUN_DIR for an index out of date)")


class Added(BaseModel):
    added: list[str] = Field(description="the ids added, in the request's order")
    notes: list[str] = Field(description="what the addition did that a client may not expect: KG relations left out, "
                                         "links to nothing, items the graph pathway could not reach")  # fmt: skip


class Removed(BaseModel):
    removed: str = Field(description="the raw id of the item taken out of the index")


class ItemInfo(BaseModel):
    item_id: str
    title: str
    columns: dict[str, str | float | list[str] | list[float | None] | None] = Field(
        description="the catalog's item columns (null: no value)"
    )


_WHY = {
    400: "bad input: a value, filter or combination of fields that cannot be served",
    401: "a missing or wrong API token (Authorization: Bearer TOKEN)",
    403: "the server was started without an API token: it takes no writes",
    404: "an unknown user or item",
    409: "an item id the catalog holds, or held before its removal (an id is not reused), a server of several "
         "workers (read-only), or a run trained without the retrieval tower (it answers POST /predict only)",
    413: "a request body over the server's limit",
    503: "the run's catalog cannot be read, or it changed and its index update failed (`kgrec index build RUN_DIR` "
         "repairs that); GET /health answers 503 too",
}


#: The API token's scheme (``Authorization: Bearer TOKEN``, the scheme's name in any case);
#: declared in the OpenAPI schema, so that ``/docs`` has an Authorize button.
BEARER = HTTPBearer(auto_error=False, description="the API token (kgrec serve --token or $KGREC_API_TOKEN); only "
                                                  "the writes, POST /items and DELETE /items/{id}, need it")  # fmt: skip


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses an operation can answer."""
    return {code: {"model": Error, "description": _WHY[code]} for code in codes}


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
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The FastAPI app serving ``recommender``. Writes (``POST /items``, ``DELETE /items/{id}``) need ``token``, sent as
    ``Authorization: Bearer TOKEN`` (401 without it or with a wrong one; checked before the body is
    read, so that a malformed body too answers 401); with no token they are refused (403), and so
    they are with ``writable=False`` (409, after the token check): each of several
    worker processes holds its own catalog, so an item one of them added would be neither served
    by the others nor kept by their next write. ``warmed``, what
    :meth:`~kgrec.retrieval.Recommender.warm_up` did, lets ``GET /health`` name the query kinds
    that failed (``"unavailable"``), which the other kinds do not stop being served. Spaces and line
    breaks around ``token`` are not part of it (a client's header cannot end in them): one read
    from a file or a secret keeps its final line break; a blank token is none. ``cors_origins``
    (``"https://app.example.com"``, or ``"*"``) may call the service from a browser page of
    another origin (Starlette's CORS middleware; none by default, as browsers then refuse)."""
    token = (token or "").strip() or None
    app = FastAPI(title="kgrec", version="1", description=__doc__, default_response_class=SafeJSON)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if cors_origins:  # added last: outermost, so a preflight and a 413 get the CORS headers too
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "HEAD", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    lock = threading.Lock()

    @contextlib.contextmanager
    def serving() -> Iterator[None]:
        """One request at a time, on the latest catalog: changes another process saved
        (``kgrec add-items`` / ``remove-items`` beside this server) are taken up first."""
        with lock:
            try:
                recommender.refresh()
            except (KgrecError, OSError) as error:  # the server's files, not the request: /health answers 503 too
                raise HTTPException(503, f"{_catalog_unreadable(error)}; GET /health answers 503 until it is mended") from None
            yield

    logged: set[str] = set()  # the index-update failures the log has (each said once)

    @app.exception_handler(KgrecError)
    async def input_error(request: Request, error: KgrecError) -> JSONResponse:
        if isinstance(error, IndexOutOfDateError):  # the server's files: its path and error stay in its log
            return SafeJSON({"detail": _index_out_of_date(str(error), logged)}, status_code=503)
        status = 404 if isinstance(error, NotFoundError) else 409 if isinstance(error, PredictOnlyError) else 400
        return SafeJSON({"detail": _http_wording(str(error))}, status_code=status)

    @app.exception_handler(OSError)
    async def run_files_failed(request: Request, error: OSError) -> JSONResponse:
        # the run's files, not the request: a write's lock on a run folder deleted while serving, a
        # full disk (each was a 500); the server's paths stay in its log
        print(f"kgrec serve: {request.method} {request.url.path}: the run's files: {error}", file=sys.stderr)
        return SafeJSON({"detail": "the run's files cannot be read or written (the server's log says why)"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422, except that what JSON cannot hold is echoed as a string (writing it
        # was a 500): a NaN or Infinity, which Python's JSON parser reads, and a body of bytes
        # that are not UTF-8, sent without a JSON content type.
        errors = _json_safe(error.errors())
        if request.method in ("POST", "PUT") and not _json_content_type(request.headers.get("content-type")):
            errors = [_not_json(e, request.headers.get("content-type")) for e in errors]
        return SafeJSON({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> SafeJSON:
        return SafeJSON({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, error: StarletteHTTPException) -> Response:
        # The router's own 404 and 405. Its 405 names in Allow only the methods of the first route
        # whose path matched (GET for /health, though HEAD works; GET for /items/{id}, though HEAD
        # and DELETE do too): Allow lists every method some route of this path answers.
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request.app, request.scope))
        return await http_exception_handler(request, StarletteHTTPException(error.status_code, error.detail, headers))

    def writer(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> None:
        """The token check of a write, which :class:`WriteRoute` runs before the body is read (the
        route's ``Security(BEARER)`` dependency only declares the scheme in the OpenAPI schema)."""
        if token is None:
            raise HTTPException(403, "this server takes no writes: it was started without an API token")
        if credentials is None:
            raise HTTPException(401, "changing the catalog needs the API token: send the header 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        # the header's bytes (Starlette reads headers as latin-1), so that a UTF-8 token sent as it is matches
        if not hmac.compare_digest(credentials.credentials.encode("latin-1"), token.encode()):
            raise HTTPException(401, "wrong API token", headers={"WWW-Authenticate": "Bearer"})
        if not writable:
            raise HTTPException(409, "changing the catalog needs a single-process server (kgrec serve without --workers): "
                                     "each worker holds its own catalog; or run `kgrec add-items` / `kgrec remove-items` "
                                     "and restart")  # fmt: skip

    class WriteRoute(APIRoute):
        """A write's route: ``writer`` answers (401, 403, 409) before the body is read. FastAPI reads
        and parses the body before it solves any dependency, so a malformed JSON body answered 422
        to a client without the token. Only the size limit (413, :class:`BodyLimit`) comes first:
        the server's, the same for every route, decided from the headers before routing."""

        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handle = super().get_route_handler()

            async def checked(request: Request) -> Response:
                writer(await BEARER(request))
                return await handle(request)

            return checked

    def results(found: list[Result], where: list[str]) -> JSONResponse:
        # Result.to_dict() already has Item's fields and types; returning a response skips
        # FastAPI's re-validation of the response model (the schema still declares Results).
        body: dict[str, Any] = {"results": [r.to_dict() for r in found]}
        if not found and where:
            body["unmatched_filters"] = recommender.catalog.unmatched_filters(where)
        return SafeJSON(body)

    @app.get("/health", response_model=Health, responses={503: {"model": OutOfDate, "description": _WHY[503]}})
    def health() -> JSONResponse:
        with lock:
            try:
                recommender.refresh()  # the item count of the catalog as saved now
            except (KgrecError, OSError) as error:  # queries answer 503 too: take this process out of rotation
                return SafeJSON({"status": "catalog unreadable", "detail": _catalog_unreadable(error)}, status_code=503)
            if recommender.index_error is not None:  # queries answer 503 too: take this process out of rotation
                return SafeJSON({"status": "index out of date", "detail": _index_out_of_date(recommender.index_error, logged)},
                                status_code=503)  # fmt: skip
            answer: dict[str, Any] = {"status": "ok", "items": recommender.catalog.n_active,
                                      "users": recommender.run.dataset.n_users}  # fmt: skip
            if recommender.predict_only is not None:
                answer["predict_only"] = recommender.predict_only
        if warmed is not None and warmed.errors:
            answer["unavailable"] = warmed.errors  # e.g. {"search": "text model ... is not on this machine"}
        return SafeJSON(answer)

    @app.get("/items/{item_id:path}", response_model=ItemInfo, responses=_errors(400, 404, 503))
    def item(item_id: str) -> dict[str, Any]:
        """One item by its raw id (which may hold '/') or its title."""
        with serving():
            position = recommender.catalog.position(item_id)
            row, title = recommender.catalog.row(position), recommender.catalog.titles[position]
        return {"item_id": recommender.catalog.tokens[position], "title": title, "columns": _plain(row)}

    # HEAD on each GET (RFC 9110: a server MUST support it; monitors probe /health with it): GET's
    # status and headers, the server leaves out the body. Out of the schema, as FastAPI's own routes.
    for path, endpoint in (("/health", health), ("/items/{item_id:path}", item)):
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    @app.post("/recommend", response_model=Results, responses=_errors(400, 404, 409, 413, 503))
    def recommend(body: RecommendRequest) -> JSONResponse:
        options = {"where": body.where, "exclude": body.exclude, "explain": body.explain}
        if body.user is not None:
            if body.liked or body.likes_text is not None:
                raise HTTPException(400, "give either user, or liked / likes_text for a new user, not both")
        elif not body.liked and body.likes_text is None:
            raise HTTPException(400, "give a known user (user), or for a new user the items they like (liked) "
                                     "and/or a text of their interests (likes_text)")  # fmt: skip
        elif not body.exclude_seen:
            raise HTTPException(400, "exclude_seen is for a known user (user): a new user (liked / likes_text) has "
                                     "seen nothing")  # fmt: skip
        with serving():
            if body.user is not None:
                return results(recommender.recommend(body.user, body.k, exclude_seen=body.exclude_seen, **options), body.where)
            return results(recommender.recommend_for_new_user(body.liked, body.likes_text, body.k, **options), body.where)

    @app.post("/similar", response_model=Results, responses=_errors(400, 404, 409, 413, 503))
    def similar(body: SimilarRequest) -> JSONResponse:
        with serving():
            return results(recommender.similar(body.item, body.k, where=body.where, exclude=body.exclude,
                                               explain=body.explain), body.where)  # fmt: skip

    @app.post("/search", response_model=Results, responses=_errors(400, 404, 409, 413, 503))
    def search(body: SearchRequest) -> JSONResponse:
        with serving():
            return results(recommender.search(body.text, body.k, where=body.where, exclude=body.exclude,
                                              explain=body.explain), body.where)  # fmt: skip

    @app.post("/predict", response_model=Predictions, responses=_errors(400, 404, 413, 503))
    def predict(body: PredictRequest) -> JSONResponse:
        with serving():
            return SafeJSON({"predictions": [p.to_dict() for p in recommender.predict(body.user, body.items)]})

    def add_items(body: NewItems) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp, serving():  # rows checked against the catalog add_items extends
            rows = _item_rows(body.items, recommender.catalog, *_template_columns(recommender, body.pathways))
            types = recommender.catalog.feature_types
            items_file, link_file = _write_atomic_files(Path(tmp), rows, types, _link_rows(body.links))
            try:
                added = recommender.add_items(items_file, link=link_file, pathways=body.pathways)
            except DataError as error:  # located in the request, not in the temporary files
                if error.path not in (items_file, link_file):
                    raise
                part = "items" if error.path == items_file else "links"
                where = part if error.line is None or error.line < 2 else f"{part}[{error.line - 2}]"
                column = f" field '{error.column.split(':')[0]}'" if error.column else ""  # item_id, not item_id:token
                raise KgrecError(f"{where}{column}: {_in_request(error.message, items_file)}") from None
        return {"added": list(added), "notes": [_http_wording(_in_request(note, items_file)) for note in added.notes]}

    def remove_item(item_id: str) -> dict[str, Any]:
        """Take one item out of the index and record it in the run, as ``kgrec remove-items`` does:
        by its raw id only (which may hold '/'), not by its title, so that a removal names exactly
        what it removes. Queries no longer return it; ``GET /items/{id}`` answers 404."""
        with serving():
            position = recommender.catalog.position(item_id)
            token = recommender.catalog.tokens[position]
            if token == item_id.strip() != item_id:  # not "the title of item '50'?": the id with spaces around it
                raise KgrecError(f"'{item_id}' is not an item id (spaces around item '{token}'?): a removal takes the "
                                 f"raw id as it is, DELETE /items/{token}")  # fmt: skip
            if token != item_id:
                raise KgrecError(f"'{item_id}' is not an item id (the title of item '{token}'?): a removal takes the "
                                 f"raw id, DELETE /items/{token}")  # fmt: skip
            return {"removed": recommender.remove_items([token])[0]}

    app.router.add_api_route("/items", add_items, methods=["POST"], status_code=201, response_model=Added,
                             dependencies=[Security(BEARER)], responses=_errors(400, 401, 403, 409, 413, 503),
                             route_class_override=WriteRoute)  # fmt: skip
    app.router.add_api_route("/items/{item_id:path}", remove_item, methods=["DELETE"], response_model=Removed,
                             dependencies=[Security(BEARER)], responses=_errors(400, 401, 403, 404, 409, 413, 503),
                             route_class_override=WriteRoute)  # fmt: skip
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


#: CLI wording in the library's messages, and what a client of this service sends instead.
_HTTP_WORDS = (
    ("(kgrec recommend --liked / --likes-text; Recommender.recommend_for_new_user)", "(liked / likes_text)"),
    ("(--liked ITEM)", "(liked)"),
    ("(--likes-text TEXT)", "(likes_text)"),
    ("(--pathways)", "(pathways)"),
    ("(kgrec remove-items)", "(DELETE /items/ID)"),
)


def _allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """The methods some route of ``app`` answers at the path of ``scope``: what a 405's ``Allow``
    header lists (RFC 9110), e.g. ``DELETE, GET, HEAD`` for ``/items/{id}``."""
    methods: set[str] = set()
    for route in app.router.routes:
        if getattr(route, "methods", None) and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _catalog_unreadable(error: KgrecError | OSError) -> str:
    """Log why the run's catalog cannot be read (the server's paths stay in its log; an
    :class:`OSError`: the run folder deleted or unreadable while serving) and return what a
    client is told instead."""
    print(f"kgrec serve: the catalog cannot be read: {error}", file=sys.stderr)
    return "the run's catalog cannot be read (the server's log says why)"


def _index_out_of_date(reason: str, logged: set[str]) -> str:
    """Log why a catalog change's index update failed (the run's path and the underlying error,
    which the repair needs; once per reason, not on every request and ``/health`` poll) and
    return what a client is told instead: the repair, without the server's path (the answer had
    held both)."""
    if reason not in logged:
        logged.add(reason)
        print(f"kgrec serve: the index is out of date: {reason}", file=sys.stderr)
    return ("the catalog was changed but updating its index failed (the server's log says why); rebuild it with "
            "`kgrec index build RUN_DIR` on the served run folder, which the server then takes up")


def _in_request(message: str, items_file: Path) -> str:
    """A message about the item file a request was written to, about the request instead."""
    return message.replace(f"column of {items_file.name}", "field").replace(items_file.name, "this request's items")


def _http_wording(message: str) -> str:
    """A library message in this service's words: the request's field names, not the CLI's
    flags (``--where class=Comdy: ...`` -> ``where class=Comdy: ...``)."""
    if message.startswith("--where "):
        message = message.removeprefix("--")
    for cli, http in _HTTP_WORDS:
        message = message.replace(cli, http)
    return message


def _json_content_type(value: str | None) -> bool:
    """Whether a Content-Type header announces JSON (``application/json``, ``application/*+json``),
    the only bodies FastAPI parses: a form-encoded or text body is never read as JSON, so that a
    browser's plain form cannot post a write."""
    if not value:
        return False
    kind = value.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _not_json(error: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    """A body-level schema error of a request sent without a JSON content type, with a message that
    says so: FastAPI's "Input should be a valid dictionary" for ``curl -d '{"user": "196"}'``
    (curl's default type is a form) did not name the missing header."""
    if tuple(error.get("loc", ())) != ("body",):
        return error
    sent = f"it came as {content_type!r}" if content_type else "it came without one"
    return {**error, "msg": "the body must be a JSON object sent with the header 'Content-Type: application/json' "
                            f"({sent}; with curl, add -H 'Content-Type: application/json')"}  # fmt: skip


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN / infinite float as its JavaScript name (``"NaN"``, ``"Infinity"``)
    and bytes as text (what is not UTF-8 as U+FFFD)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _shown(value: Any) -> str:
    """A request value as JSON, cut short: what an error says it got."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_FLOAT_MAX = sys.float_info.max


def _number(value: Any) -> bool:
    """A JSON number: an integer (not true / false), or a finite float (not NaN nor Infinity)."""
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and math.isfinite(value)


_EXPECTED = {
    "token": "a string or a number",
    "float": "a number",
    "token_seq": "a list of single-word strings or numbers, or one string of space-separated words",
    "float_seq": "a list of numbers",
}


def _cell(value: Any, kind: str) -> str | None:
    """A JSON value as its column's text in a ``.item`` file (``kind``: the column's type);
    ``None`` for no value (null, an empty string or list). :class:`ValueError` for a value
    the column cannot hold: true / false, an object, NaN, a list in a one-value column, ..."""
    if value is None:
        return None
    if kind == "float":
        if not _number(value) or abs(value) > _FLOAT_MAX:  # an integer past 1.8e308 is no float
            raise ValueError
        return str(value)
    if kind == "token":
        if _number(value):
            return str(value)
        if not isinstance(value, str) or _has_surrogate(value):
            raise ValueError
        text = " ".join(value.splitlines()).replace("\t", " ")  # the file's separators read as spaces
        return text if text.strip() else None
    if kind == "token_seq" and isinstance(value, str) and not _has_surrogate(value):
        return " ".join(value.split()) or None
    if not isinstance(value, list):
        raise ValueError
    tokens = []
    for v in value:
        if _number(v) and (kind == "token_seq" or abs(v) <= _FLOAT_MAX):
            tokens.append(str(v))
        elif kind == "token_seq" and isinstance(v, str) and v and not any(c.isspace() for c in v) and not _has_surrogate(v):
            tokens.append(v)
        else:
            raise ValueError
    return " ".join(tokens) or None


def _new_id(value: Any, where: str) -> str:
    """A new item's (or entity's) id: a string or an integer that an atomic file can hold as it is."""
    text = value if isinstance(value, str) and not _has_surrogate(value) else str(value) if type(value) is int else None
    if text is None or not text.strip():
        raise HTTPException(400, f"{where}: expected a non-empty string or an integer, got {_shown(value)}")
    if text != text.strip() or any(c in text for c in "\t\r\n"):
        raise HTTPException(400, f"{where}: {_shown(text)}: an id cannot hold a tab or a line break, nor start "
                                 "or end with a space")  # fmt: skip
    return text


def _template_columns(recommender: Recommender, pathways: list[str]) -> tuple[str, list[str]]:
    """The run's text template and the item columns it needs, when the text pathway embeds
    the new items (else ``("", [])``): each new item must have them."""
    if not recommender.run.config.model.use_text or "text" not in pathways:
        return "", []
    return template_columns(recommender.run)


def _item_rows(rows: list[dict[str, Any]], catalog: Catalog, template: str, needed: list[str]) -> list[dict[str, str]]:
    """JSON rows -> the cells of a ``.item`` file, checked against the catalog: known columns
    only, each value of its column's type (:func:`_cell`), the columns of the text ``template``
    (``needed``) in every row, ids new to the catalog (409) and to the request."""
    types = catalog.feature_types
    first: dict[str, int] = {}
    out = []
    for i, row in enumerate(rows):
        where = f"items[{i}]"
        if "item_id" not in row:
            raise HTTPException(400, f"{where}: every item needs an 'item_id'")
        item_id = _new_id(row["item_id"], f"{where}: item_id")
        if (j := first.setdefault(item_id, i)) != i:
            raise HTTPException(400, f"{where}: item_id '{item_id}' appears again (first at items[{j}])")
        if state := catalog.taken(item_id):
            raise HTTPException(409, f"{where}: item '{item_id}' {state}")
        cells = {"item_id": item_id}
        for name, value in row.items():
            if name == "item_id":
                continue
            if name not in types:
                raise HTTPException(400, f"{where}: unknown column '{name}'{closest(name, types)}; the catalog's "
                                         f"columns: item_id, {', '.join(types)}")  # fmt: skip
            try:
                text = _cell(value, types[name])
            except ValueError:
                raise HTTPException(400, f"{where}: column '{name}' ({types[name]}) expects {_EXPECTED[types[name]]}"
                                         f", got {_shown(value)}") from None  # fmt: skip
            if text is not None:
                cells[name] = text
        for name in needed:
            if name not in cells:
                state = f"is empty ({_shown(row[name])})" if name in row else "is missing"
                raise HTTPException(400, f"{where}: column '{name}' {state}: the run's text template {template!r} "
                                         f"needs it ({_EXPECTED[types[name]]}); or add the items through the graph "
                                         'pathway alone: "pathways": ["graph"]')  # fmt: skip
        out.append(cells)
    return out


def _link_rows(links: list[Link]) -> list[tuple[str, str]]:
    return [(_new_id(link.item_id, f"links[{i}]: item_id"), _new_id(link.entity_id, f"links[{i}]: entity_id"))
            for i, link in enumerate(links)]  # fmt: skip


def _write_atomic_files(
    folder: Path, rows: list[dict[str, str]], types: dict[str, str], links: list[tuple[str, str]]
) -> tuple[Path, Path | None]:
    """Checked rows (:func:`_item_rows`) -> ``new.item`` (+ ``new.link``): the columns some row
    has, declared with the catalog's ``types``; a row without one leaves its cell empty."""
    names = ["item_id", *[name for name in types if any(name in row for row in rows)]]
    header = "\t".join(f"{name}:{types.get(name, 'token')}" for name in names)
    lines = [header, *("\t".join(row.get(name, "") for name in names) for row in rows)]
    items_file = folder / "new.item"
    items_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    link_file = None
    if links:
        link_file = folder / "new.link"
        lines = ["item_id:token\tentity_id:token", *(f"{item}\t{entity}" for item, entity in links)]
        link_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items_file, link_file


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """An item's columns as JSON values: NaN (no value in a float column) as null."""
    out = {}
    for name, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, list):
            value = [v if not isinstance(v, float) or math.isfinite(v) else None for v in value]
        out[name] = value if isinstance(value, str | int | float | list | type(None)) else str(value)
    return out
