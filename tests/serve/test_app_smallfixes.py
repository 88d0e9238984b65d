"""A 405's Allow header lists every method the path answers: HEAD beside GET, DELETE beside GET on
/items/{id}. A stand-in recommender: routing needs no trained run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kgrec.errors import NotFoundError


class _Catalog:
    n_active = 2
    tokens = ["i1", "i2"]
    titles = ["Film 1", "Film 2"]

    def position(self, item: str) -> int:
        if item not in self.tokens:
            raise NotFoundError(f"unknown item {item!r}")
        return self.tokens.index(item)

    def row(self, position: int) -> dict:
        return {"class": ["Comedy"]}


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from kgrec.serve.app import create_app

    recommender = SimpleNamespace(refresh=lambda: None, index_error=None, predict_only=None, catalog=_Catalog(),
                                  run=SimpleNamespace(dataset=SimpleNamespace(n_users=3)))  # fmt: skip
    return TestClient(create_app(recommender, token="t"), raise_server_exceptions=False)


def _get_paths(client) -> list[str]:
    paths = [r.path for r in client.app.router.routes if "GET" in (getattr(r, "methods", None) or ())]
    assert "/health" in paths and "/items/{item_id:path}" in paths
    return [p.replace("{item_id:path}", "i1") for p in paths]


def test_every_get_route_answers_head_and_its_allow_header_says_so(client):
    for path in _get_paths(client):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        for method in ("OPTIONS", "PUT"):
            refused = client.request(method, path)
            assert refused.status_code == 405, (method, path)
            allowed = refused.headers["allow"].split(", ")
            assert "GET" in allowed and "HEAD" in allowed, (method, path, allowed)  # was: "GET" alone


def test_allow_lists_the_methods_of_every_route_of_the_path(client):
    assert client.options("/items/i1").headers["allow"] == "DELETE, GET, HEAD"  # was: "GET"
    assert client.head("/items/nope").status_code == client.get("/items/nope").status_code == 404
    assert client.options("/health").headers["allow"] == "GET, HEAD"
    for path in ("/recommend", "/items"):
        assert client.options(path).headers["allow"] == "POST"
        assert client.head(path).status_code == 405  # a POST route: no HEAD, and Allow does not claim one
    assert client.get("/nowhere").json() == {"detail": "Not Found"}  # the router's 404 is unchanged
