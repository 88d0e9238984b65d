"""The real server in a subprocess on a free loopback port, exercised over HTTP with httpx."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    from kgrec.train import train
    from tests.conftest import tiny_config

    run = tmp_path_factory.mktemp("serve") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=5"), run)
    port = free_port()
    env = {**os.environ, "KGREC_API_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", "serve", str(run), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read()}")
    else:
        proc.kill()
        pytest.fail("server did not start in 60 s")
    yield base, run, proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(run, ignore_errors=True)


def test_health_and_item(server):
    base, _, _ = server
    assert httpx.get(base + "/health").json() == {"status": "ok", "items": 60, "users": 40}
    item = httpx.get(base + "/items/i3").json()
    assert item["item_id"] == "i3" and item["title"] == "Film 3" and item["columns"]["class"] == ["Horror"]


def test_each_query_endpoint_answers_with_explained_results(server):
    from kgrec.serve.app import Results

    base, _, _ = server
    for path, body in (("/recommend", {"user": "u1", "k": 5}), ("/similar", {"item": "i4", "k": 5}),
                       ("/recommend", {"liked": ["i1", "i5"], "k": 5})):  # fmt: skip
        response = httpx.post(base + path, json=body)
        assert response.status_code == 200, response.text
        Results.model_validate_json(response.text, strict=True)  # the body is what /openapi.json declares
        results = response.json()["results"]
        assert len(results) == 5 and all(r["explanation"] is not None for r in results)
        assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    filtered = httpx.post(base + "/similar", json={"item": "i4", "k": 3, "where": ["class=Comedy"]}).json()
    assert all(int(r["item_id"][1:]) % 4 == 0 for r in filtered["results"])  # Comedy = items 0, 4, 8, ...
    assert "unmatched_filters" not in filtered
    response = httpx.post(base + "/similar", json={"item": "i4", "where": ["class=Comdy", "class!=Horror"]})
    Results.model_validate_json(response.text, strict=True)
    assert response.json() == {"results": [], "unmatched_filters": ["class=Comdy matches no item (did you mean 'Comedy'?)"]}


def test_predict_answers_what_the_python_api_answers(server):
    from kgrec.retrieval import Recommender
    from kgrec.serve.app import Predictions

    base, run, _ = server
    response = httpx.post(base + "/predict", json={"user": "u1", "items": ["i5", "i0"]})
    assert response.status_code == 200, response.text
    Predictions.model_validate_json(response.text, strict=True)
    expected = [p.to_dict() for p in Recommender.open(run).predict("u1", ["i5", "i0"])]
    assert response.json()["predictions"] == expected and [p["item_id"] for p in expected] == ["i5", "i0"]


def test_openapi_schema_is_served(server):
    schema = httpx.get(server[0] + "/openapi.json").json()
    assert {"/health", "/recommend", "/similar", "/search", "/predict", "/items"} <= set(schema["paths"])


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/recommend", {"user": "nobody", "k": 5}, 404),
        ("/similar", {"item": "nothing", "k": 5}, 404),
        ("/recommend", {"user": "u1", "k": 0}, 422),
        ("/recommend", {"user": "u1", "k": 100000}, 422),
        ("/recommend", {"user": "u1", "k": "ten"}, 422),
        ("/recommend", {"user": "u1", "k": 61}, 400),
        ("/recommend", {"user": 5, "unknown_field": 1}, 422),
        ("/recommend", {}, 400),
        ("/similar", {"item": "i1", "where": ["nocolumn=x"]}, 400),
        ("/search", {"text": ""}, 422),
        ("/predict", {"user": "u1", "items": ["nothing"]}, 404),
        ("/predict", {"user": "nobody", "items": ["i1"]}, 404),
        ("/predict", {"user": "u1", "items": []}, 422),
    ],
)
def test_bad_requests_get_4xx_with_a_message(server, path, body, status):
    response = httpx.post(server[0] + path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_oversized_body_is_refused(server):
    response = httpx.post(server[0] + "/recommend", content=b"{" + b" " * (2 << 20) + b"}",
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413


def test_chunked_body_is_limited_as_it_arrives_and_passed_on_whole(server):
    def chunks(body: bytes, size: int = 1000):
        yield from (body[i : i + size] for i in range(0, len(body), size))

    big = b'{"text": "' + b"x" * (2 << 20) + b'"}'
    headers = {"content-type": "application/json"}
    response = httpx.post(server[0] + "/search", content=chunks(big), headers=headers)
    assert response.status_code == 413 and "request body over" in response.json()["detail"]
    small = b'{"user": "u1", "k": 3}'
    chunked = httpx.post(server[0] + "/recommend", content=chunks(small, 5), headers=headers)
    assert chunked.status_code == 200, chunked.text
    assert chunked.json() == httpx.post(server[0] + "/recommend", content=small, headers=headers).json()


def test_the_server_warms_up_before_it_takes_requests(server):
    """One query of each kind ran before the port opened (``Recommender.warm_up``), so no
    user's first query waits for the model to load; /health answered, so both lines are there."""
    lines = []
    while not lines or not (lines[-1] == "" or lines[-1].startswith("serving ")):  # "": the output ended
        lines.append(server[2].stdout.readline())
    assert lines[-1].startswith("serving "), lines
    warmed = [line for line in lines if line.startswith("warmed up in ")]
    assert len(warmed) == 1 and "recommend" in warmed[0] and "new user" in warmed[0] and "failed" not in warmed[0]


def test_health_names_the_query_kinds_the_warm_up_found_failing(server, monkeypatch):
    from fastapi.testclient import TestClient

    from kgrec.errors import KgrecError
    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    recommender = Recommender.open(server[1])
    assert "unavailable" not in TestClient(create_app(recommender, warmed=recommender.warm_up())).get("/health").json()

    def broken(*args, **kwargs):
        raise KgrecError("the model file cannot be read")

    monkeypatch.setattr(Recommender, "predict", broken)
    health = TestClient(create_app(recommender, warmed=recommender.warm_up())).get("/health")
    assert health.status_code == 200 and health.json()["unavailable"] == {"predict": "the model file cannot be read"}


def test_each_worker_of_a_several_worker_server_warms_up_unless_told_not_to(server, monkeypatch):
    """``kgrec serve --workers N`` passes the choice on to each worker through the environment,
    and each worker's app (``kgrec.serve.asgi``) warms up as the environment says."""
    import uvicorn

    from kgrec.cli.main import main

    for flags, expected in (([], "1"), (["--no-warm-up"], "0")):
        monkeypatch.setenv("KGREC_SERVE_WARM_UP", "unset")  # both restored after the test
        monkeypatch.setenv("KGREC_SERVE_RUN", "unset")
        monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
        assert main(["serve", str(server[1]), "--workers", "2", *flags]) == 0
        assert os.environ["KGREC_SERVE_WARM_UP"] == expected and os.environ["KGREC_SERVE_RUN"] == str(server[1])
        assert "KGREC_SERVE_DATA" not in os.environ
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    assert main(["serve", str(server[1]), "--workers", "2", "--data", "/data/moved"]) == 0  # a dataset that moved
    assert os.environ["KGREC_SERVE_DATA"] == "/data/moved"
    monkeypatch.delenv("KGREC_SERVE_DATA")
    probe = [sys.executable, "-c", "import kgrec.serve.asgi"]
    env = {**os.environ, "KGREC_SERVE_RUN": str(server[1]), "OMP_NUM_THREADS": "1", "KGREC_SERVE_WARM_UP": "1"}
    warm = subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout
    cold = subprocess.run(probe, env={**env, "KGREC_SERVE_WARM_UP": "0"}, capture_output=True, text=True, check=True)
    assert "warmed up in" in warm and "predict" in warm and cold.stdout == ""


def test_a_several_worker_app_refuses_to_add_items(server):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    client = TestClient(create_app(Recommender.open(server[1]), token="t", writable=False))
    response = client.post("/items", json={"items": [{"item_id": "new", "title": "New"}]},
                           headers={"Authorization": "Bearer t"})  # fmt: skip
    assert response.status_code == 409 and "single-process server" in response.json()["detail"]
    assert client.post("/recommend", json={"user": "u1", "k": 3}).status_code == 200  # reads still served


def test_a_failed_index_update_answers_503_until_rebuilt(server, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    rec = Recommender.open(shutil.copytree(server[1], tmp_path / "run"))  # the served run stays as it is

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(rec.index), "add", fail)
    client = TestClient(create_app(rec, token="t"))
    body = {"items": [{"item_id": "new", "title": "New"}], "links": [{"item_id": "new", "entity_id": "d0_0"}]}
    response = client.post("/items", json=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == 503 and "kgrec index build" in response.json()["detail"], response.text
    assert client.post("/recommend", json={"user": "u1", "k": 3}).status_code == 503
    health = client.get("/health")
    assert health.status_code == 503 and "kgrec index build" in health.json()["detail"]


def test_adding_items_needs_the_token(server):
    base, _, _ = server
    body = {"items": [{"item_id": "new1", "title": "Film New", "class": ["Comedy"]}], "links": [{"item_id": "new1", "entity_id": "d0_0"}]}
    assert httpx.post(base + "/items", json=body).status_code == 401
    assert httpx.post(base + "/items", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(base + "/items", json={**body, "pathways": ["txt"]}, headers=auth).status_code == 422
    response = httpx.post(base + "/items", json={**body, "pathways": ["graph"]}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["added"] == ["new1"]
    assert httpx.get(base + "/items/new1").json()["title"] == "Film New"


def test_added_items_keep_the_catalogs_column_types_and_errors_name_the_request_row(server, tmp_path):
    """A string for a token_seq column is its space-separated tokens, as in a .item file; an
    error points at ``items[i]``, not at the temporary file the rows went through."""
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    run = shutil.copytree(server[1], tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    client = TestClient(create_app(Recommender.open(run), token="t"))
    auth = {"Authorization": "Bearer t"}
    def links(*ids: str) -> list[dict[str, str]]:
        return [{"item_id": i, "entity_id": "d0_0"} for i in ids]

    body = {"items": [{"item_id": "n1", "title": "Film N", "class": "Comedy Drama"}], "links": links("n1")}
    response = client.post("/items", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert client.get("/items/n1").json()["columns"]["class"] == ["Comedy", "Drama"]
    rows = [{"item_id": "n2", "title": "Film 2"}, {"item_id": "n3", "title": ["Film", "3"]}]
    response = client.post("/items", json={"items": rows, "links": links("n2", "n3")}, headers=auth)
    assert response.status_code == 400 and response.json()["detail"] == (
        "items[1]: column 'title' holds one token per item, got a list"
    )
    twice = [{"item_id": "n4", "title": "Film 4"}, {"item_id": "n5", "title": "Film 5"}, {"item_id": "n4", "title": "4"}]
    detail = client.post("/items", json={"items": twice, "links": links("n4", "n5")}, headers=auth).json()["detail"]
    assert detail == "items[2]: item_id 'n4' appears again (first at items[0])"
    detail = client.post("/items", json={"items": twice[:2], "links": links("n4", "zz")}, headers=auth).json()["detail"]
    assert detail.startswith("links[1] column 'item_id:token': item 'zz' is not in") and "tmp" not in detail, detail


def test_bounded_load_has_no_errors(server):
    """2,000 requests from 8 concurrent keep-alive clients, stopping by itself."""
    base = server[0]
    bodies = [
        ("/similar", {"item": f"i{i % 30}", "k": 5}) if i % 4 == 3
        else ("/recommend", {"user": f"u{i % 40}", "k": 10, "explain": i % 5 == 0})
        for i in range(2000)
    ]  # fmt: skip

    def client_loop(share: list[tuple[str, dict]]) -> list[int]:
        with httpx.Client(base_url=base, timeout=30) as client:
            return [client.post(path, json=body).status_code for path, body in share]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [c for part in pool.map(client_loop, [bodies[i::8] for i in range(8)]) for c in part]
    assert time.monotonic() - started < 300
    assert len(codes) == 2000 and codes.count(200) == 2000


def test_schema_fuzzing_never_gets_5xx(server):
    """Bodies generated from the served OpenAPI schema: each POST operation's fields, with values
    of the declared type (in and out of the declared bounds) or of a wrong type, plus unknown keys;
    writes are sent with and without the token (runs last but one: it may add items)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = httpx.get(server[0] + "/openapi.json").json()
    components = schema["components"]["schemas"]

    def fields_of(operation: dict) -> dict[str, dict]:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]["properties"]

    def typed(spec: dict) -> st.SearchStrategy:
        kinds = {v.get("type") for v in spec.get("anyOf", [spec])}
        options = []
        if "integer" in kinds:
            low, high = spec.get("minimum", 0), spec.get("maximum", 100)
            options.append(st.integers(low - 2, high + 2))
        if "string" in kinds:
            options.append(st.text(max_size=30))
        if "boolean" in kinds:
            options.append(st.booleans())
        if "array" in kinds:
            rows = st.dictionaries(st.sampled_from(["item_id", "entity_id", "movie_title", "class", "x"]),
                                   st.text(max_size=8) | st.lists(st.text(max_size=5), max_size=2) | wrong, max_size=4)
            options.append(st.lists(st.text(max_size=8) | rows, max_size=4))
        if "null" in kinds:
            options.append(st.none())
        return st.one_of(options) if options else st.none()

    wrong = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
    operations = {path: fields_of(ops["post"]) for path, ops in schema["paths"].items() if "post" in ops}
    assert {"/recommend", "/similar", "/search", "/items"} <= set(operations)

    @st.composite
    def requests(draw):
        path = draw(st.sampled_from(sorted(operations)))
        body = {}
        for name, spec in operations[path].items():
            if draw(st.booleans()):
                body[name] = draw(typed(spec) if draw(st.integers(0, 3)) else wrong)
        body.update(draw(st.dictionaries(st.sampled_from(["x", "users", "K"]), wrong, max_size=1)))
        headers = {"Authorization": f"Bearer {TOKEN}"} if draw(st.booleans()) else {}
        return path, body, headers

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests())
    def check(request):
        path, body, headers = request
        response = httpx.post(server[0] + path, json=body, headers=headers, timeout=30)
        assert response.status_code < 500, (path, body, response.text)

    check()


def test_sigterm_shuts_down_gracefully(server):
    proc = server[2]
    assert proc.poll() is None  # still serving after all the tests above; the fixture then sends SIGTERM
