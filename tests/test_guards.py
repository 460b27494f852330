"""The NUL guard at the door: path, query string and bodies; what it lets through reaches
the route byte for byte (webhook signatures are computed over the body)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from alerts.web.guards import RejectNul


def _app() -> TestClient:
    app = FastAPI(openapi_url=None)
    app.add_middleware(RejectNul, max_body=1000)

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST"])
    async def echo(request: Request, rest: str) -> dict:
        return {"rest": rest, "body": (await request.body()).decode("latin-1")}

    return TestClient(app)


def test_a_clean_request_reaches_the_route_unchanged():
    body = '{"events": [{"text": "50% off"}]}'
    answer = _app().post("/echo/a?b=c", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["body"] == body


def test_nul_in_path_query_or_body_is_a_400():
    client = _app()
    form = {"content-type": "application/x-www-form-urlencoded"}
    json = {"content-type": "application/json"}
    assert client.get("/echo/a%00b").status_code == 400
    assert client.get("/echo/a?q=%00").status_code == 400
    assert client.post("/echo/a", content="name=a%00b", headers=form).status_code == 400
    assert client.post("/echo/a", content=b"name=a\x00b", headers=form).status_code == 400
    assert client.post("/echo/a", content='{"a": "\\u0000"}', headers=json).status_code == 400
    assert "NUL" in client.get("/echo/a?q=%00").text


def test_percent_zero_zero_is_only_a_nul_where_it_decodes_to_one():
    json = {"content-type": "application/json"}
    assert _app().post("/echo/a", content='{"a": "%00"}', headers=json).status_code == 200


def test_an_oversized_body_is_a_413():
    assert _app().post("/echo/a", content=b"x" * 1001).status_code == 413


def test_the_api_schema_is_not_published(settings, database):
    from alerts.web.app import create_app

    client = TestClient(create_app(settings, database))
    assert client.get("/openapi.json").status_code == 404
