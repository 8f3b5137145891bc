"""The model proxy: a sandbox's session token is swapped for the real key, answers stream through,
and anything without a live token, or beyond the Messages API, is refused in Anthropic's own shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.session_tokens import SessionTokens

REAL_KEY = "sk-ant-real-key-never-in-a-sandbox"


@dataclass
class Upstream:
    """A stand-in model API that records what reached it and streams its answer in pieces."""

    seen: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.seen.append({**request.headers, "body": await request.text(), "path": request.path_qs})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: message_start\ndata: {}\n\n")
        await self.release.wait()
        await response.write(b"event: message_stop\ndata: {}\n\n")
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    fake = Upstream()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    fake.release.set()
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_token_is_swapped_for_the_real_key_and_the_stream_arrives_as_it_is_made(
    upstream: Upstream,
) -> None:
    tokens = SessionTokens()
    proxy = ModelProxy(tokens, api_key=REAL_KEY, upstream=upstream.url)
    await proxy.start()
    token = tokens.issue("sess-1")
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"x-api-key": token, "anthropic-version": "2023-06-01", "cookie": "host=1"}
            async with http.post(proxy.url + "/v1/messages?beta=true", json={"q": 1}, headers=headers) as r:
                assert r.status == 200
                first = await r.content.readuntil(b"\n\n")
                assert b"message_start" in first, "the first event arrives before the answer is complete"
                upstream.release.set()
                rest = await r.read()
                assert b"message_stop" in rest
                assert REAL_KEY not in (first + rest).decode()
    finally:
        await proxy.stop()
    [seen] = upstream.seen
    assert seen["x-api-key"] == REAL_KEY
    assert seen["anthropic-version"] == "2023-06-01"
    assert "cookie" not in {k.lower() for k in seen}, "only the API's own headers are forwarded"
    assert token not in str(seen), "the session token stops at the proxy"
    assert seen["path"] == "/v1/messages?beta=true" and seen["body"] == '{"q": 1}'
    assert proxy.requests_by_session == {"sess-1": 1}


async def test_missing_wrong_revoked_and_expired_tokens_are_refused(upstream: Upstream) -> None:
    clock = Clock()
    tokens = SessionTokens(ttl_s=60, clock=clock)
    proxy = ModelProxy(tokens, api_key=REAL_KEY, upstream=upstream.url)
    await proxy.start()
    try:
        old = tokens.issue("sess-1")
        current = tokens.issue("sess-1")
        other = tokens.issue("sess-2")
        tokens.revoke("sess-2")
        async with aiohttp.ClientSession() as http:

            async def status_for(headers: dict[str, str], path: str = "/v1/messages") -> tuple[int, str]:
                async with http.post(proxy.url + path, json={}, headers=headers) as response:
                    body = await response.json()
                    return response.status, body["error"]["type"]

            assert await status_for({}) == (401, "authentication_error")
            assert await status_for({"x-api-key": REAL_KEY}) == (401, "authentication_error")
            assert await status_for({"x-api-key": old}) == (401, "authentication_error"), "re-issue revokes"
            assert await status_for({"x-api-key": other}) == (401, "authentication_error")
            assert await status_for({"Authorization": f"Bearer {current}"}, "/v1/files") == (
                404,
                "not_found_error",
            )
            clock.now += 61
            assert await status_for({"x-api-key": current}) == (401, "authentication_error")
    finally:
        await proxy.stop()
    assert upstream.seen == [], "nothing refused reached the model API"


async def test_an_unreachable_model_api_is_a_plain_502() -> None:
    tokens = SessionTokens()
    proxy = ModelProxy(tokens, api_key=REAL_KEY, upstream="http://127.0.0.1:9")
    await proxy.start()
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"x-api-key": tokens.issue("sess-1")}
            async with http.post(proxy.url + "/v1/messages", json={}, headers=headers) as response:
                assert response.status == 502
                body = await response.json()
        assert body["error"]["type"] == "api_error" and "could not be reached" in body["error"]["message"]
    finally:
        await proxy.stop()


async def test_a_client_that_goes_away_ends_its_upstream_call(upstream: Upstream) -> None:
    tokens = SessionTokens()
    proxy = ModelProxy(tokens, api_key=REAL_KEY, upstream=upstream.url)
    await proxy.start()
    headers = {"x-api-key": tokens.issue("sess-1")}
    async with aiohttp.ClientSession() as http:
        response = await http.post(proxy.url + "/v1/messages", json={}, headers=headers)
        assert b"message_start" in await response.content.readuntil(b"\n\n")
        response.close()
    async with asyncio.timeout(20):
        await proxy.stop()
    assert not upstream.release.is_set(), "the upstream answer never finished: the proxy let go of it"
