"""Health, readiness, metrics, the OpenAPI document, and errors that never become a 500."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from incidentfox.bot.runtime import build_runtime
from incidentfox.bot.server import create_app
from incidentfox.db.migrate import head_revision
from tests.conftest import Api, make_settings


async def test_healthz_readyz_and_metrics(api: Api) -> None:
    assert await api.ok("GET", "/healthz", token=None) == {"status": "ok"}
    ready = await api.ok("GET", "/readyz", token=None)
    assert ready == {"status": "ready", "migration": head_revision()}
    await api.ok("GET", "/api/v1/auth/whoami")
    status, text = await api.call("GET", "/metrics", token=None)
    assert status == 200
    assert (
        'incidentfox_http_requests_total{method="GET",route="/api/v1/auth/whoami",status="200"} 1.0' in text
    )


async def test_readyz_is_503_until_migrations_are_applied(sqlite_url: str, tmp_path: Path) -> None:
    runtime = await build_runtime(make_settings(sqlite_url, tmp_path), migrate=False)
    client: TestClient = TestClient(TestServer(create_app(runtime), host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert "incidentfox migrate" in (await response.json())["reason"]
    finally:
        await client.close()
        await runtime.close()


async def test_unknown_routes_and_methods_answer_in_json(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/nope")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await api.call("DELETE", "/api/v1/orgs")
    assert status == 405
    assert body["message"] == "Method Not Allowed"


async def test_openapi_document_lists_every_config_route(api: Api) -> None:
    document = await api.ok("GET", "/api/v1/openapi.json", token=None)
    assert document["openapi"].startswith("3.")
    routes = {
        resource.canonical
        for resource in api.client.app.router.resources()
        if resource.canonical.startswith("/api/v1/") and resource.canonical != "/api/v1/openapi.json"
    }
    assert routes == set(document["paths"])


async def test_admin_api_is_disabled_without_admin_token(sqlite_url: str, tmp_path: Path) -> None:
    runtime = await build_runtime(make_settings(sqlite_url, tmp_path, admin_token=None), migrate=True)
    client: TestClient = TestClient(TestServer(create_app(runtime), host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.post(
            "/api/v1/orgs", json={"org_id": "acme"}, headers={"Authorization": "Bearer "}
        )
        assert response.status == 401
        response = await client.post(
            "/api/v1/orgs", json={"org_id": "acme"}, headers={"Authorization": "Bearer anything"}
        )
        assert response.status == 401
    finally:
        await client.close()
        await runtime.close()
