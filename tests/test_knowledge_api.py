"""Runbooks through the config API: uploaded as JSON or as the raw file, refused with the reason when
they cannot be read, listed, searched with their citation, removed; only by the team itself or its org
admins. Over loopback HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from incidentfox.bot.runtime import Runtime
from incidentfox.bot.server import create_app
from incidentfox.knowledge import views
from incidentfox.knowledge.openapi import KNOWLEDGE_PATHS
from incidentfox.knowledge.store import KnowledgeBase
from tests.conftest import Api
from tests.knowledge_world import EMBEDDER, RUNBOOKS, finished_run, rca, store_runs

KNOWLEDGE = "/api/v1/orgs/acme/nodes/payments/knowledge"


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    app = create_app(runtime)
    views.add_routes(app, KnowledgeBase(runtime.sessions, EMBEDDER))
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield Api(client)
    await client.close()


@dataclass
class World:
    org_token: str
    payments_token: str
    search_token: str


async def _world(api: Api) -> World:
    """acme: payments (team), search (team), platform (unit)."""
    org_token = await api.create_org("acme")
    await api.create_node("acme", "payments", "acme", "team", org_token)
    await api.create_node("acme", "search", "acme", "team", org_token)
    await api.create_node("acme", "platform", "acme", "unit", org_token)
    payments = await api.team_token("acme", "payments", org_token)
    search = await api.team_token("acme", "search", org_token)
    return World(org_token, payments, search)


async def test_a_team_uploads_runbooks_and_search_cites_them(api: Api) -> None:
    world = await _world(api)
    documents = [{"path": path, "content": content} for path, content in RUNBOOKS.items()]
    body = await api.ok(
        "POST", KNOWLEDGE + "/runbooks", token=world.payments_token, json={"documents": documents}, expect=201
    )
    assert [a["path"] for a in body["added"]] == list(RUNBOOKS) and body["skipped"] == []
    assert body["added"][0] == {
        "path": "runbooks/postgres-connections.md",
        "title": "Postgres connection pool exhausted",
        "passages": 3,
    }
    found = await api.ok(
        "GET",
        KNOWLEDGE + "/search?q=browsers+say+the+https+certificate+is+no+longer+valid&limit=2",
        token=world.payments_token,
    )
    top = found["results"][0]
    assert top["path"] == "runbooks/tls-certificate-expiry.md"
    assert top["cite"] == f"runbook runbooks/tls-certificate-expiry.md § {top['section']}"
    assert found["search"] == {"mode": "hybrid", "embedding_model": "all-MiniLM-L6-v2"}
    listed = await api.ok("GET", KNOWLEDGE, token=world.org_token)
    assert len(listed["documents"]) == len(RUNBOOKS)
    assert {d["kind"] for d in listed["documents"]} == {"runbook"}


async def test_an_unreadable_upload_is_refused_with_the_reason(api: Api) -> None:
    world = await _world(api)
    status, body = await api.call(
        "PUT",
        KNOWLEDGE + "/runbooks/runbooks/legacy.md",
        token=world.payments_token,
        data="# Café down\n\nRésumé service returns 502.".encode("cp1252"),
        headers={"Content-Type": "text/markdown"},
    )
    assert status == 400 and body["error"] == "unreadable_runbook"
    assert "runbooks/legacy.md: it is not UTF-8 text (byte 5 cannot be decoded)" in body["message"]
    assert body["details"]["skipped"][0]["path"] == "runbooks/legacy.md"

    status, body = await api.call(
        "POST",
        KNOWLEDGE + "/runbooks",
        token=world.payments_token,
        json={"documents": [{"path": "runbooks/empty.md", "content": "   \n"}]},
    )
    assert status == 400 and "no text to search" in body["message"]
    listed = await api.ok("GET", KNOWLEDGE, token=world.payments_token)
    assert listed["documents"] == []

    body = await api.ok(
        "POST",
        KNOWLEDGE + "/runbooks",
        token=world.payments_token,
        expect=201,
        json={
            "documents": [
                {"path": "runbooks/dns.md", "content": RUNBOOKS["runbooks/dns-resolution.md"]},
                {
                    "path": "runbooks/half.md",
                    "content": "---\ntitle: never closed\n\n# Heading\n\nText here.",
                },
                {"path": "runbooks/none.md"},
            ]
        },
    )
    assert [a["path"] for a in body["added"]] == ["runbooks/dns.md"]
    assert [s["path"] for s in body["skipped"]] == ["runbooks/half.md", "runbooks/none.md"]
    assert "never closed" in body["skipped"][0]["reason"]
    assert "as a string in 'content'" in body["skipped"][1]["reason"]


async def test_a_raw_markdown_file_is_added_replaced_and_removed(api: Api) -> None:
    world = await _world(api)
    path = KNOWLEDGE + "/runbooks/runbooks/oom.md"
    markdown = {"Content-Type": "text/markdown"}
    content = RUNBOOKS["runbooks/oom-killed.md"].encode()
    body = await api.ok("PUT", path, token=world.org_token, data=content, headers=markdown, expect=201)
    assert body["added"] == [{"path": "runbooks/oom.md", "title": "Containers OOMKilled", "passages": 2}]
    replaced = b"# Memory limits\n\nRaise the limit of the pod that was OOMKilled."
    await api.ok("PUT", path, token=world.org_token, data=replaced, headers=markdown, expect=201)
    listed = await api.ok("GET", KNOWLEDGE, token=world.org_token)
    assert [(d["source"], d["title"], d["passages"]) for d in listed["documents"]] == [
        ("runbooks/oom.md", "Memory limits", 1)
    ]
    await api.ok("DELETE", path, token=world.payments_token, expect=204)
    status, body = await api.call("DELETE", path, token=world.payments_token)
    assert status == 404 and body["error"] == "unknown_runbook"


async def test_finished_investigations_are_listed_with_their_thread(api: Api, runtime: Runtime) -> None:
    world = await _world(api)
    answer = rca("Checkout ran out of DB connections.", "Leaked sessions.", "too many clients", "logs")
    await store_runs(runtime.sessions, finished_run("run-1", "checkout 500s", answer))
    listed = await api.ok("GET", KNOWLEDGE, token=world.payments_token)
    assert [(d["kind"], d["source"], d["title"]) for d in listed["documents"]] == [
        ("incident", "run-1", "checkout 500s")
    ]
    assert listed["documents"][0]["url"].startswith("https://slack.com/archives/C0PAYMENTS/p")
    found = await api.ok(
        "GET", KNOWLEDGE + "/search?q=database+connections&kind=incident", token=world.org_token
    )
    assert found["results"][0]["cite"] == f"past incident {listed['documents'][0]['url']}"
    assert found["results"][0]["feedback"] == {"up": 0, "down": 0}


async def test_only_the_team_and_its_org_admins_reach_its_knowledge(api: Api) -> None:
    world = await _world(api)
    status, body = await api.call("GET", KNOWLEDGE, token=world.search_token)
    assert status == 403 and "only its own team" in body["message"]
    status, _ = await api.call("GET", KNOWLEDGE, token=None)
    assert status == 401
    status, body = await api.call("GET", "/api/v1/orgs/acme/nodes/platform/knowledge", token=world.org_token)
    assert status == 400 and body["error"] == "not_a_team"
    status, body = await api.call("GET", KNOWLEDGE + "/search?q=", token=world.payments_token)
    assert status == 400 and body["error"] == "missing_query"
    status, body = await api.call("GET", KNOWLEDGE + "/search?q=x&kind=wiki", token=world.payments_token)
    assert status == 400 and body["error"] == "invalid_kind"
    status, body = await api.call(
        "POST", KNOWLEDGE + "/runbooks", token=world.payments_token, json={"documents": []}
    )
    assert status == 400 and body["error"] == "invalid_documents"


async def test_every_knowledge_route_is_in_the_openapi_fragment(api: Api) -> None:
    routes = {
        resource.canonical
        for resource in api.client.app.router.resources()
        if "/knowledge" in resource.canonical
    }
    assert routes == set(KNOWLEDGE_PATHS)
