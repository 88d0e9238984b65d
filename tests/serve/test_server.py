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
    assert httpx.get(base + "/items/film 3").json() == item  # by its title, answered with its id


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
        ("/recommend", {"liked": ["i1"], "exclude_seen": False}, 400),
        ("/recommend", {"likes_text": "comedy", "exclude_seen": False}, 400),
        ("/recommend", {"user": "u1", "k": "5"}, 422),
        ("/recommend", {"user": "u1", "k": 5.0}, 422),
        ("/recommend", {"user": "u1", "k": True}, 422),
        ("/recommend", {"user": "u1", "explain": 1}, 422),
        ("/recommend", {"user": 1.5}, 422),
        ("/recommend", {"user": True}, 422),
        ("/recommend", {"user": 5}, 404),  # an integer id is its decimal string: user "5", not of this run
        ("/similar", {"item": 7}, 404),
        ("/predict", {"user": "u1", "items": [7]}, 404),
        ("/recommend", {"user": "u1", "exclude": [7]}, 404),
        ("/recommend", {"liked": [7]}, 404),
        ("/similar", {"item": "i1", "where": ["nocolumn=x"]}, 400),
        ("/similar", {"item": "i1", "where": ["class"]}, 400),
        ("/search", {"text": ""}, 422),
        ("/predict", {"user": "u1", "items": ["nothing"]}, 404),
        ("/predict", {"user": "nobody", "items": ["i1"]}, 404),
        ("/predict", {"user": "u1", "items": []}, 422),
    ],
)
def test_bad_requests_get_4xx_with_a_message(server, path, body, status):
    response = httpx.post(server[0] + path, json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail
    if status != 422:  # FastAPI's schema errors are a list; every other error is one message
        assert isinstance(detail, str) and "--" not in detail, detail  # the request's words, not the CLI's flags


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "give a known user (user), or for a new user the items they like (liked) and/or a text of their "
             "interests (likes_text)"),
        ({"liked": ["i1"], "exclude_seen": False}, "exclude_seen is for a known user (user): a new user (liked / "
                                                   "likes_text) has seen nothing"),
        ({"user": "u1", "where": ["genre=Comedy"]}, "where genre=Comedy: unknown column 'genre' (item columns: "
                                                    "class, title)"),
        ({"user": "u1", "where": ["class"]}, "where 'class': expected COLUMN=VALUE or COLUMN!=VALUE, e.g. class=Comedy"),
    ],
)  # fmt: skip
def test_error_messages_name_the_request_fields(server, body, detail):
    response = httpx.post(server[0] + "/recommend", json=body)
    assert response.status_code == 400 and response.json() == {"detail": detail}


def test_an_unknown_user_is_pointed_at_the_new_user_fields(server):
    detail = httpx.post(server[0] + "/recommend", json={"user": "nobody"}).json()["detail"]
    assert detail.startswith("unknown user 'nobody'") and detail.endswith("(liked / likes_text)"), detail


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/recommend", '{"user": "u1", "k": NaN}'),
        ("/recommend", '{"user": NaN}'),
        ("/recommend", '{"k": Infinity}'),
        ("/recommend", '{"liked": [-Infinity]}'),
        ("/similar", '{"item": NaN}'),
        ("/search", '{"text": "comedy", "k": NaN}'),
        ("/predict", '{"user": "u1", "items": [NaN]}'),
    ],
)
def test_non_finite_numbers_are_refused_with_422(server, path, raw):
    """Python's JSON parser reads NaN and Infinity, which JSON has not: the 422 echoes them as
    strings (writing them back as numbers was a 500)."""
    response = httpx.post(server[0] + path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["input"] in ("NaN", "Infinity", "-Infinity")


def test_a_body_that_is_not_utf8_gets_4xx(server):
    for headers in ({}, {"content-type": "application/json"}):  # without a content type FastAPI echoes the bytes
        response = httpx.post(server[0] + "/recommend", content=b"\xff\xfe{", headers=headers)
        assert 400 <= response.status_code < 500 and response.json()["detail"], response.text


def test_non_finite_numbers_in_writes_are_refused(server):
    base, json_type = server[0], {"content-type": "application/json"}
    auth = {**json_type, "Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(base + "/items", content='{"items": NaN}', headers=json_type).status_code == 401
    response = httpx.post(base + "/items", content='{"items": NaN}', headers=auth)
    assert response.status_code == 422 and response.json()["detail"][0]["input"] == "NaN"
    raw = '{"items": [{"item_id": "nan1", "title": NaN}]}'
    response = httpx.post(base + "/items", content=raw, headers=auth)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "items[0]: column 'title' (token) expects a string or a number, got NaN"
    raw = '{"items": [{"item_id": "nan1"}], "links": [{"item_id": "nan1", "entity_id": Infinity}]}'
    assert httpx.post(base + "/items", content=raw, headers=auth).status_code == 422


def test_a_several_worker_app_refuses_non_finite_numbers_too(server):
    """``kgrec serve --workers N`` serves ``kgrec.serve.asgi:app``, built by the same create_app."""
    probe = (
        "from fastapi.testclient import TestClient\n"
        "from kgrec.serve.asgi import app\n"
        "response = TestClient(app, raise_server_exceptions=False).post('/recommend', content='{\"k\": NaN}',"
        " headers={'content-type': 'application/json'})\n"
        "print(response.status_code, response.json()['detail'][0]['input'])\n"
    )
    env = {**os.environ, "KGREC_SERVE_RUN": str(server[1]), "OMP_NUM_THREADS": "1", "KGREC_SERVE_WARM_UP": "0"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["422", "NaN"], done.stdout + done.stderr


def test_integer_ids_are_their_decimal_strings(server, tmp_path):
    """ml-100k's ids are numbers: {"item": 50} is item "50", in queries and in added items."""
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    run = shutil.copytree(server[1], tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    client = TestClient(create_app(Recommender.open(run), token="t"))
    body = {"items": [{"item_id": 9001, "title": "Film 9001", "class": ["Comedy", 7]}],
            "links": [{"item_id": 9001, "entity_id": "d2_2"}]}  # fmt: skip
    response = client.post("/items", json=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == 201 and response.json() == {"added": ["9001"], "notes": []}, response.text
    assert client.get("/items/9001").json()["columns"]["class"] == ["Comedy", "7"]
    by_number = client.post("/similar", json={"item": 9001, "k": 3, "explain": False})
    assert by_number.status_code == 200 and by_number.json() == client.post(
        "/similar", json={"item": "9001", "k": 3, "explain": False}).json()  # fmt: skip
    assert client.post("/recommend", json={"user": "u1", "exclude": [9001], "k": 5}).status_code == 200


def test_a_lone_surrogate_is_refused_or_echoed_never_a_500(server, tmp_path):
    """Python's JSON parser reads "\\ud800", which UTF-8 cannot write: echoing it in an error
    and writing it to an item file were 500s."""
    client = _write_client(server[1], tmp_path)
    for path, raw in (("/recommend", '{"user": "\\ud800"}'), ("/similar", '{"item": "x\\udfff"}'),
                      ("/search", '{"text": "\\ud800 space"}'), ("/recommend", '{"user": "u1", "where": ["class=\\ud800"]}')):  # fmt: skip
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code < 500 and response.json(), (path, raw, response.text)  # JSON, the escape echoed
    for raw in ('{"items": [{"item_id": "s\\ud800"}]}', '{"items": [{"item_id": "s1", "title": "X\\ud800"}]}'):
        response = client.post("/items", content=raw, headers={"content-type": "application/json", "Authorization": "Bearer t"})
        assert response.status_code in (400, 422), (raw, response.text)
    assert client.get("/health").json()["items"] == 60  # nothing was added


def test_no_request_asks_for_unbounded_work(server):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import MAX_FILTERS, MAX_TEXT, create_app

    client = TestClient(create_app(Recommender.open(server[1])))
    # 20,000 filters held the server for 68 s on ml-100k, and a 140 KB likes_text 15 s
    assert client.post("/recommend", json={"user": "u1", "where": ["class=Comedy"] * (MAX_FILTERS + 1)}).status_code == 422
    assert client.post("/recommend", json={"liked": ["i1"], "likes_text": "w " * MAX_TEXT}).status_code == 422
    assert client.post("/recommend", json={"user": "u1", "where": ["class=Comedy"] * MAX_FILTERS}).status_code == 200


def test_a_catalog_that_cannot_be_read_answers_503(server, tmp_path):
    client = _write_client(server[1], tmp_path)
    assert client.post("/items", json={"items": [{"item_id": "c9", "title": "C9"}], "links": [{"item_id": "c9", "entity_id": "d0_0"}]},
                       headers={"Authorization": "Bearer t"}).status_code == 201  # fmt: skip
    (tmp_path / "run" / "catalog" / "catalog.json").write_text("{broken")
    for response in (client.post("/recommend", json={"user": "u1"}), client.get("/items/i1")):
        assert response.status_code == 503 and "catalog cannot be read" in response.json()["detail"], response.text
        assert str(tmp_path) not in response.text  # the server's paths stay in its log
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "catalog unreadable"
    assert str(tmp_path) not in health.text  # before: the error with the server's path


def test_a_title_is_found_with_its_accents_composed_decomposed_or_left_out(server, tmp_path):
    client = _write_client(server[1], tmp_path)
    body = {"items": [{"item_id": "m1", "title": "Misérables, Les"}], "links": [{"item_id": "m1", "entity_id": "d0_0"}]}
    assert client.post("/items", json=body, headers={"Authorization": "Bearer t"}).status_code == 201
    for name in ("Misérables, Les", "Mise\u0301rables, Les", "miserables, les"):
        response = client.get(f"/items/{name}")
        assert response.status_code == 200 and response.json()["item_id"] == "m1", (name, response.text)


def _write_client(run: Path, tmp_path: Path, token: str = "t"):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    run = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return TestClient(create_app(Recommender.open(run), token=token))


@pytest.mark.parametrize(
    ("row", "status", "detail"),
    [
        ({"title": None}, 201, None),  # null: no value, where the column may go without
        ({"title": True}, 400, "items[1]: column 'title' (token) expects a string or a number, got true"),
        ({"title": {"a": 1}}, 400, "items[1]: column 'title' (token) expects a string or a number, got {\"a\": 1}"),
        ({"class": None}, 201, None),
        ({"class": [None]}, 400, "items[1]: column 'class' (token_seq) expects a list of single-word strings or "
                                 "numbers, or one string of space-separated words, got [null]"),
        ({"class": ["Film Noir"]}, 400, "items[1]: column 'class' (token_seq) expects a list of single-word "
                                        "strings or numbers, or one string of space-separated words, got "
                                        "[\"Film Noir\"]"),
        ({"class": [True]}, 400, None),
        ({"class": 3.5}, 400, None),
        ({"item_id": ""}, 400, "items[1]: item_id: expected a non-empty string or an integer, got \"\""),
        ({"item_id": None}, 400, "items[1]: item_id: expected a non-empty string or an integer, got null"),
        ({"item_id": 1.5}, 400, "items[1]: item_id: expected a non-empty string or an integer, got 1.5"),
        ({"item_id": True}, 400, "items[1]: item_id: expected a non-empty string or an integer, got true"),
        ({"item_id": "a\tb"}, 400, "items[1]: item_id: \"a\\tb\": an id cannot hold a tab or a line break, nor "
                                   "start or end with a space"),
        ({"item_id": " n2"}, 400, "items[1]: item_id: \" n2\": an id cannot hold a tab or a line break, nor "
                                  "start or end with a space"),
        ({"extra": "x"}, 400, "items[1]: unknown column 'extra'; the catalog's columns: item_id, title, class"),
        ({"clas": "Comedy"}, 400, "items[1]: unknown column 'clas' (did you mean 'class'?); the catalog's columns: "
                                  "item_id, title, class"),
        ({"item_id": "i3"}, 409, "items[1]: item 'i3' is already in the catalog"),
        ({"item_id": "n1"}, 400, "items[1]: item_id 'n1' appears again (first at items[0])"),
    ],
)  # fmt: skip
def test_added_items_refuse_values_the_catalog_cannot_hold(server, tmp_path, row, status, detail):
    """null is no value, not the string "None"; true, objects, empty or unknown ids and unknown
    columns are refused, naming the row and the column; nothing is added then."""
    client = _write_client(server[1], tmp_path)
    rows = [{"item_id": "n1", "title": "Film N1", "class": ["Comedy"]}, {"item_id": "n2", "title": "Film N2", **row}]
    linked = [r["item_id"] for r in rows if isinstance(r.get("item_id"), str) and r["item_id"]]
    body = {"items": rows, "links": [{"item_id": i, "entity_id": f"d0_{j}"} for j, i in enumerate(linked)]}
    response = client.post("/items", json=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json() == {"detail": detail}
    if status == 201:
        columns = client.get("/items/n2").json()["columns"]
        assert "None" not in str(columns) and columns.get("class") in (None, []), columns
        assert client.get("/items/n2").json()["title"] in ("Film N2", "n2")
    else:
        assert isinstance(response.json()["detail"], str)
        assert client.get("/health").json()["items"] == 60 and client.get("/items/n1").status_code == 404


def test_an_item_id_the_catalog_holds_is_a_conflict_even_when_another_process_added_it(server, tmp_path):
    """409, not 400: the rows are checked against the catalog as saved now (``kgrec add-items``
    or ``remove-items`` beside the server), the one the write extends."""
    from kgrec.retrieval import Recommender

    client = _write_client(server[1], tmp_path)
    run = tmp_path / "run"
    (tmp_path / "cli.item").write_text("item_id:token\ttitle:token\nc1\tFilm C1\n")
    (tmp_path / "cli.link").write_text("item_id:token\tentity_id:token\nc1\td1_2\n")
    command = Recommender.open(run)
    command.add_items(tmp_path / "cli.item", link=tmp_path / "cli.link")
    command.remove_items("i5")
    auth = {"Authorization": "Bearer t"}
    for item_id, state in (("c1", "is already in the catalog"), ("i5", "was removed; add it under a new id")):
        response = client.post("/items", json={"items": [{"item_id": item_id, "title": "x"}]}, headers=auth)
        assert response.status_code == 409 and response.json() == {"detail": f"items[0]: item '{item_id}' {state}"}


def test_reads_see_what_another_process_changed_and_writes_keep_it(server, tmp_path):
    """A server beside ``kgrec add-items`` / ``remove-items``: its next request answers from the
    changed catalog, and its own write keeps the other process's changes (it overwrote them)."""
    from kgrec.retrieval import Recommender

    client = _write_client(server[1], tmp_path)
    assert client.get("/items/i5").status_code == 200
    (tmp_path / "cli.item").write_text("item_id:token\ttitle:token\nc1\tFilm C1\n")
    (tmp_path / "cli.link").write_text("item_id:token\tentity_id:token\nc1\td1_2\n")
    command = Recommender.open(tmp_path / "run")
    command.add_items(tmp_path / "cli.item", link=tmp_path / "cli.link")
    command.remove_items("i5")
    assert client.get("/health").json()["items"] == 60  # 60 + c1 - i5
    assert client.get("/items/c1").json()["title"] == "Film C1"
    assert client.get("/items/i5").status_code == 404  # removed: gone, as an unknown item
    found = client.post("/similar", json={"item": "c1", "k": 59}).json()["results"]
    assert "i5" not in {r["item_id"] for r in found}
    body = {"items": [{"item_id": "h1", "title": "Film H1"}], "links": [{"item_id": "h1", "entity_id": "d1_1"}]}
    added = client.post("/items", json=body, headers={"Authorization": "Bearer t"})
    assert added.status_code == 201, added.text
    again = Recommender.open(tmp_path / "run")  # what a restart reads: every change of both
    assert {"c1", "h1"} <= set(again.catalog.tokens) and "i5" in again.catalog.removed_tokens()


def test_an_item_is_removed_by_its_id_with_the_token(server, tmp_path):
    """DELETE /items/{id}: what ``kgrec remove-items`` does, over HTTP (clients were told to run it)."""
    from kgrec.retrieval import Recommender

    client = _write_client(server[1], tmp_path)
    auth = {"Authorization": "Bearer t"}
    title = client.get("/items/i5").json()["title"]
    assert client.delete("/items/i5").status_code == 401  # a write: the token first
    assert client.delete("/items/i5", headers={"Authorization": "Bearer wrong"}).status_code == 401
    refused = client.delete(f"/items/{title}", headers=auth)  # GET takes a title; a removal names the id
    assert refused.status_code == 400 and refused.json()["detail"] == (
        f"'{title}' is not an item id (the title of item 'i5'?): a removal takes the raw id, DELETE /items/i5")
    assert client.get("/items/i5").status_code == 200  # still there
    response = client.delete("/items/i5", headers=auth)
    assert response.status_code == 200 and response.json() == {"removed": "i5"}
    assert client.get("/items/i5").status_code == 404 and client.get("/health").json()["items"] == 59
    found = client.post("/similar", json={"item": "i6", "k": 58}).json()["results"]
    assert len(found) == 58 and "i5" not in {r["item_id"] for r in found}
    again = client.delete("/items/i5", headers=auth)
    assert again.json() == {"detail": "item 'i5' was removed from this run's catalog (DELETE /items/ID)"}
    assert again.status_code == 404
    body = {"items": [{"item_id": "n1"}], "links": [{"item_id": "n1", "entity_id": "d0_0"}]}
    untitled = client.post("/items", json=body, headers=auth).json()["notes"]
    assert "to title it, remove it (DELETE /items/ID) and add it again" in " ".join(untitled), untitled
    assert client.delete("/items/nope", headers=auth).status_code == 404
    assert "i5" in Recommender.open(tmp_path / "run").catalog.removed_tokens()  # recorded in the run, as the CLI's


def test_a_removal_of_an_id_with_spaces_around_it_names_the_id_not_a_title(server, tmp_path):
    """'i5 ' is the id i5 with a space, not a title: the 400 says so (it asked "the title of item 'i5'?")."""
    client = _write_client(server[1], tmp_path)
    for sent in (" i5", "i5 "):
        response = client.delete(f"/items/{sent}", headers={"Authorization": "Bearer t"})
        assert response.status_code == 400 and response.json() == {"detail": (
            f"'{sent}' is not an item id (spaces around item 'i5'?): a removal takes the raw id as it is, "
            "DELETE /items/i5")}, response.text  # fmt: skip
    assert client.get("/items/i5").status_code == 200  # nothing removed


def test_get_endpoints_answer_head_with_the_status_and_headers_of_get(server):
    """HEAD, which RFC 9110 makes every server support and uptime monitors send, was a 405."""
    base = server[0]
    for path, status in (("/health", 200), ("/items/i1", 200), ("/items/nope", 404)):
        got, head = httpx.get(base + path), httpx.head(base + path)
        assert head.status_code == got.status_code == status, (path, head.status_code, got.status_code)
        assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"], path
    assert httpx.head(base + "/recommend").status_code == 405  # a POST operation takes no HEAD
    schema = httpx.get(base + "/openapi.json").json()
    assert all("head" not in operations for operations in schema["paths"].values())


def test_the_schema_describes_the_writes_as_they_behave(server):
    """The bearer scheme guards both writes (it said only POST /items); DELETE answers 413 over the
    size limit (which comes before the token); a removed id answers 409 when added again."""
    schema = httpx.get(server[0] + "/openapi.json").json()
    bearer = schema["components"]["securitySchemes"]["HTTPBearer"]["description"]
    assert "POST /items" in bearer and "DELETE /items/{id}" in bearer, bearer
    delete = schema["paths"]["/items/{item_id}"]["delete"]["responses"]
    assert delete["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    response = httpx.request("DELETE", server[0] + "/items/nope", content=b" " * ((1 << 20) + 1))
    assert response.status_code == 413 and response.json() == {"detail": "request body over 1048576 bytes"}
    assert "removal" in schema["paths"]["/items"]["post"]["responses"]["409"]["description"]


def test_added_items_answer_their_notes(server, tmp_path):
    client = _write_client(server[1], tmp_path)
    body = {"items": [{"item_id": "h2", "title": "Film H2"}], "links": [{"item_id": "h2", "entity_id": "g1"}]}
    response = client.post("/items", json=body, headers={"Authorization": "Bearer t"})  # linked to a genre
    assert response.status_code == 201 and response.json()["added"] == ["h2"], response.text
    [note] = response.json()["notes"]
    assert note.startswith("new item 'h2' is linked to entity 'g1'") and "of the run's items point to" in note


def test_an_item_id_with_a_slash_can_be_fetched(server, tmp_path):
    client = _write_client(server[1], tmp_path)
    body = {"items": [{"item_id": "tt/01", "title": "Film tt"}], "links": [{"item_id": "tt/01", "entity_id": "d3_2"}]}
    assert client.post("/items", json=body, headers={"Authorization": "Bearer t"}).status_code == 201
    for path in ("/items/tt/01", "/items/tt%2F01"):
        response = client.get(path)
        assert response.status_code == 200 and response.json()["item_id"] == "tt/01", (path, response.text)
    assert client.get("/items/tt").status_code == 404


@pytest.mark.parametrize(
    ("value", "kind", "cell"),
    [
        (2024, "token", "2024"),
        (" New\tFilm\nX", "token", " New Film X"),  # the file's separators read as spaces
        ("  ", "token", None),
        (None, "float", None),
        (1.5, "float", "1.5"),
        (-3, "float", "-3"),
        ("1.5", "float", ValueError),
        (10**400, "float", ValueError),  # no float holds it (math.isfinite would overflow)
        (10**400, "token", str(10**400)),
        ("Comedy  Drama", "token_seq", "Comedy Drama"),
        ([], "token_seq", None),
        (["Comedy", 1977], "token_seq", "Comedy 1977"),
        (["Sci Fi"], "token_seq", ValueError),
        ([""], "token_seq", ValueError),
        ([[1]], "token_seq", ValueError),
        ([0.5, 2], "float_seq", "0.5 2"),
        ([10**400], "float_seq", ValueError),
        ("0.5 2", "float_seq", ValueError),
        (False, "token", ValueError),
        ([True], "float_seq", ValueError),
    ],
)
def test_a_json_value_becomes_its_columns_text(value, kind, cell):
    from kgrec.serve.app import _cell

    if cell is ValueError:
        with pytest.raises(ValueError):
            _cell(value, kind)
    else:
        assert _cell(value, kind) == cell


def test_an_item_column_without_a_value_reads_as_null():
    from kgrec.serve.app import _plain

    assert _plain({"year": float("nan"), "class": ["Comedy"], "title": "x"}) == {"year": None, "class": ["Comedy"], "title": "x"}


@pytest.fixture(scope="module")
def text_run(clustered_dataset: Path, tiny_models: tuple[str, str], tmp_path_factory: pytest.TempPathFactory):
    """The clustered dataset trained with text (a tiny BERT): its template needs title and class."""
    from kgrec.train import train
    from tests.conftest import tiny_config

    run = tmp_path_factory.mktemp("serve-text") / "run"
    with pytest.MonkeyPatch.context() as patch:  # the text cache goes to $KGREC_HOME
        patch.setenv("KGREC_HOME", str(tmp_path_factory.mktemp("kgrec-home")))
        train(tiny_config(clustered_dataset, "model.use_text=true", f"text.model={tiny_models[0]}",
                          "train.max_epochs=1"), run)  # fmt: skip
    return run


def test_every_added_item_has_the_columns_the_text_template_needs(text_run, tmp_path, monkeypatch):
    """Whatever the other rows of the request hold; the graph pathway alone needs none."""
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    client = _write_client(text_run, tmp_path)
    auth = {"Authorization": "Bearer t"}
    full = {"item_id": "n1", "title": "Film N1", "class": ["Comedy"]}
    for second, detail in (
        ({"item_id": "n2", "title": "Film N2"}, "items[1]: column 'class' is missing"),
        ({"item_id": "n2", "title": None, "class": "Drama"}, "items[1]: column 'title' is empty (null)"),
        ({"item_id": "n2", "title": "  ", "class": "Drama"}, "items[1]: column 'title' is empty (\"  \")"),
        ({"item_id": "n2", "title": "Film N2", "class": []}, "items[1]: column 'class' is empty ([])"),
    ):
        response = client.post("/items", json={"items": [full, second]}, headers=auth)
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith(detail + ": the run's text template '{title}. Genres: {class}' "
                                                    "needs it ("), response.json()  # fmt: skip
        assert response.json()["detail"].endswith('or add the items through the graph pathway alone: "pathways": ["graph"]')
    body = {"items": [full, {"item_id": "n2", "title": "Film N2", "class": ["Drama"]}]}
    response = client.post("/items", json=body, headers=auth)
    assert response.status_code == 201 and response.json()["added"] == ["n1", "n2"], response.text
    graph_only = {"items": [{"item_id": "n3"}], "links": [{"item_id": "n3", "entity_id": "d0_0"}], "pathways": ["graph"]}
    response = client.post("/items", json=graph_only, headers=auth)
    assert response.status_code == 201 and response.json()["added"] == ["n3"], response.text


def test_the_schema_declares_errors_and_the_token(server):
    schema = httpx.get(server[0] + "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["HTTPBearer"]["description"]
    }  # fmt: skip
    paths = schema["paths"]
    assert paths["/items"]["post"]["security"] == paths["/items/{item_id}"]["delete"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/recommend"]["post"]  # reads stay open
    declared = {
        ("/recommend", "post"): {"400", "404", "413", "503"},
        ("/similar", "post"): {"400", "404", "413", "503"},
        ("/search", "post"): {"400", "404", "413", "503"},
        ("/predict", "post"): {"400", "404", "413"},
        ("/items", "post"): {"400", "401", "403", "409", "413", "503"},
        ("/items/{item_id}", "get"): {"400", "404"},
        ("/items/{item_id}", "delete"): {"400", "401", "403", "404", "409", "413", "503"},
    }
    for (path, method), codes in declared.items():
        responses = paths[path][method]["responses"]
        assert codes <= set(responses), (path, sorted(responses))
        for code in codes:
            assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"
    ok = paths["/health"]["get"]["responses"]
    assert ok["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Health"}
    assert ok["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OutOfDate"}
    item = paths["/items/{item_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert item == {"$ref": "#/components/schemas/ItemInfo"}
    user = schema["components"]["schemas"]["RecommendRequest"]["properties"]["user"]
    assert {"type": "integer"} in user["anyOf"] and {"type": "string"} in user["anyOf"]


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
    response = client.delete("/items/i1", headers={"Authorization": "Bearer t"})
    assert response.status_code == 409 and "kgrec remove-items" in response.json()["detail"]
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
    for refused in (TOKEN, f"Basic {TOKEN}", f"Bearer{TOKEN}"):  # a bare token or another scheme is no bearer token
        response = httpx.post(base + "/items", json=body, headers={"Authorization": refused})
        assert response.status_code == 401 and "Authorization: Bearer TOKEN" in response.json()["detail"], refused
    for junk in ({"items": "junk"}, {"items": [{"item_id": None}]}, {}):  # the token is checked before the body
        assert httpx.post(base + "/items", json=junk).status_code == 401
        assert httpx.post(base + "/items", json=junk, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(base + "/items", json={**body, "pathways": ["txt"]}, headers=auth).status_code == 422
    response = httpx.post(base + "/items", json={**body, "pathways": ["graph"]}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["added"] == ["new1"]
    assert httpx.get(base + "/items/new1").json()["title"] == "Film New"
    lower = {"authorization": f"bearer {TOKEN}"}  # the scheme's name is case-insensitive (RFC 9110)
    body = {"items": [{"item_id": "new2", "title": "Film New 2"}], "links": [{"item_id": "new2", "entity_id": "d1_1"}]}
    response = httpx.post(base + "/items", json=body, headers=lower)
    assert response.status_code == 201 and response.json()["added"] == ["new2"], response.text


def test_a_server_without_a_token_takes_no_writes(server):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    client = TestClient(create_app(Recommender.open(server[1])))
    response = client.post("/items", json={"items": [{"item_id": "new"}]}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "without an API token" in response.json()["detail"]
    response = client.delete("/items/i1", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "without an API token" in response.json()["detail"]


#: Bodies FastAPI cannot parse (its 422 json_invalid): the token is checked before they are read.
MALFORMED = ['{"items": [', "not json", b"\xff\xfe{"]


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_body_without_the_token_gets_401(server, raw):
    """401, not 422: a client without the token learns nothing of how the body is parsed."""
    base, headers = server[0], {"content-type": "application/json"}
    missing = {"detail": "changing the catalog needs the API token: send the header 'Authorization: Bearer TOKEN'"}
    for auth, detail in (({}, missing), ({"Authorization": "Bearer wrong"}, {"detail": "wrong API token"})):
        response = httpx.post(base + "/items", content=raw, headers={**headers, **auth})
        assert response.status_code == 401 and response.json() == detail, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    response = httpx.post(base + "/items", content=raw, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (400, 422), response.text  # read then: json_invalid, or 400 for bytes not UTF-8


def test_a_malformed_write_is_refused_403_or_409_before_its_body_is_read(server):
    """A server without a token (403) or of several workers (409, after the token check)."""
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    recommender = Recommender.open(server[1])
    no_token = TestClient(create_app(recommender))
    read_only = TestClient(create_app(recommender, token="t", writable=False))
    headers = {"content-type": "application/json"}
    for raw in MALFORMED:
        for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer t"}):
            response = no_token.post("/items", content=raw, headers={**headers, **auth})
            assert response.status_code == 403 and "without an API token" in response.json()["detail"], response.text
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            response = read_only.post("/items", content=raw, headers={**headers, **auth})
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", response.text
        response = read_only.post("/items", content=raw, headers={**headers, "Authorization": "Bearer t"})
        assert response.status_code == 409 and "single-process server" in response.json()["detail"], response.text


def test_the_size_limit_answers_before_the_token_check(server):
    """413 first, as nginx's client_max_body_size does: the server's limit, the same on every route
    and decided before routing (a declared length without reading the body); then the token,
    before the body is read."""
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    client = TestClient(create_app(Recommender.open(server[1]), token="t", max_body_bytes=100))
    headers = {"content-type": "application/json"}
    big = b'{"items": [' + b" " * 200

    def chunked(body: bytes):
        yield from (body[i : i + 10] for i in range(0, len(body), 10))

    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer t"}):
        for content in (big, chunked(big)):
            response = client.post("/items", content=content, headers={**headers, **auth})
            assert response.status_code == 413 and response.json() == {"detail": "request body over 100 bytes"}
    for content in (big[:50], chunked(big[:50])):  # within the limit, malformed: the token first
        assert client.post("/items", content=content, headers=headers).status_code == 401


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
        "items[1]: column 'title' (token) expects a string or a number, got [\"Film\", \"3\"]"
    )
    twice = [{"item_id": "n4", "title": "Film 4"}, {"item_id": "n5", "title": "Film 5"}, {"item_id": "n4", "title": "4"}]
    detail = client.post("/items", json={"items": twice, "links": links("n4", "n5")}, headers=auth).json()["detail"]
    assert detail == "items[2]: item_id 'n4' appears again (first at items[0])"
    detail = client.post("/items", json={"items": twice[:2], "links": links("n4", "zz")}, headers=auth).json()["detail"]
    assert detail == "links[1] field 'item_id': item 'zz' is not in this request's items", detail  # not new.item's header


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
