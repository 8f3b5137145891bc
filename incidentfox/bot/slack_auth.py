"""Bolt's authorization with the bot token: ``auth.test`` fetched at start, cached, retried on failure.

Bolt's built-in single-workspace authorization calls ``auth.test`` lazily on the first request and,
when that call fails, answers 200 with an error text: Slack considers the event delivered and it is
lost. Here the result is fetched when the process starts (with retries) and cached; a request that
arrives while it cannot be fetched gets 503, so Slack delivers it again (HTTP mode) or, over Socket
Mode, the envelope is not acknowledged and Slack sends it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
UNAVAILABLE_BODY = (
    "IncidentFox cannot reach Slack to authorize this request yet; Slack will deliver it again."
)


class SlackAuthorizationUnavailable(Exception):
    """``auth.test`` could not be had, so the request cannot be authorized now."""


class BotTokenAuthorization(AsyncAuthorize):
    """Authorizes every request with the one bot token, from a cached ``auth.test`` result.

    ``min_retry_interval_s`` keeps a burst of requests during an outage from each calling Slack.
    """

    def __init__(self, client: AsyncWebClient, *, min_retry_interval_s: float = 1.0) -> None:
        super().__init__()
        self._client = client
        self._auth_test: dict[str, Any] | None = None
        self._scopes: str | None = None
        self._last_try = float("-inf")
        self._min_retry_interval_s = min_retry_interval_s
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._auth_test is not None

    async def warm(
        self,
        *,
        attempts: int = 5,
        base_delay_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> bool:
        """Fetch ``auth.test`` at start, retrying with backoff; ``False`` if Slack never answered (the
        next requests try again)."""
        for attempt in range(1, attempts + 1):
            if await self._fetch():
                return True
            if attempt < attempts:
                await sleep(base_delay_s * 2 ** (attempt - 1))
        log.error("Slack auth.test failed at start attempts=%d; requests get 503 until it works", attempts)
        return False

    async def ensure(self) -> bool:
        """The cached result, or one more try if the last one is at least ``min_retry_interval_s`` old."""
        if self._auth_test is not None:
            return True
        async with self._lock:
            if self._auth_test is not None:
                return True
            if time.monotonic() - self._last_try < self._min_retry_interval_s:
                return False
            return await self._fetch()

    async def _fetch(self) -> bool:
        self._last_try = time.monotonic()
        try:
            response = await self._client.auth_test()
        except SlackApiError as exc:
            log.warning("Slack auth.test failed error=%s", exc.response.get("error"))
            return False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Slack auth.test failed error=%s", type(exc).__name__)
            return False
        self._auth_test = dict(response.data) if isinstance(response.data, dict) else {}
        self._scopes = response.headers.get("x-oauth-scopes") if response.headers else None
        return True

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        if not await self.ensure() or self._auth_test is None:
            # Only when auth.test broke between RequireAuthorization and here: an error (500) makes
            # Slack retry, where returning None would make Bolt answer 200 and drop the event.
            raise SlackAuthorizationUnavailable("Slack auth.test is unavailable")
        auth = self._auth_test
        return AuthorizeResult(
            enterprise_id=auth.get("enterprise_id"),
            team_id=auth.get("team_id"),
            bot_id=auth.get("bot_id"),
            bot_user_id=auth.get("user_id"),
            bot_token=self._client.token,
            user_id=user_id,
            bot_scopes=self._scopes,
        )


class RequireAuthorization(AsyncMiddleware):
    """Runs before Bolt's authorization: answers 503 (not 200) while ``auth.test`` cannot be had."""

    def __init__(self, authorization: BotTokenAuthorization) -> None:
        self._authorization = authorization

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        if await self._authorization.ensure():
            return await next()
        log.warning("request not authorized yet: Slack auth.test unavailable; answering 503")
        return BoltResponse(status=503, body=UNAVAILABLE_BODY)
