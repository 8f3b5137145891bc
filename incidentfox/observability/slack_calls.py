"""Every Slack Web API request counted by method and outcome, 429s included, even the retried ones.

slack_sdk asks each of a client's retry handlers, in order, about every attempt's answer or error
until one takes it. ``SlackCallMeter`` goes first, records what it saw and never takes it, so it sees
each attempt of every call: also the 429s that ``AsyncRateLimitErrorRetryHandler`` retries, which no
hook around ``api_call`` could see. Bolt copies the app client's handlers into the client it builds
for each request, so calls made by listeners are counted too.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from incidentfox.observability.metrics import PROCESS_METRICS, ProcessMetrics

_METHOD = re.compile(r"[a-z]+(?:\.[A-Za-z]+)+")
OTHER_METHOD = "other"
"""The label of a request to anything but a Web API method (a file upload URL, say)."""


def slack_method(url: str) -> str:
    """``https://slack.com/api/chat.postMessage`` → ``chat.postMessage``; anything else → ``other``,
    so an upload URL's random path never becomes a label value."""
    name = url[url.rfind("/") + 1 :]
    return name if _METHOD.fullmatch(name) else OTHER_METHOD


def outcome_of(response: HttpResponse | None, error: Exception | None) -> str:
    """``ok``, ``error`` (Slack said ``ok: false``, or the answer was unreadable), ``ratelimited``
    (429), ``server_error`` (5xx) or ``unreachable`` (no answer: connection refused, reset, timeout)."""
    if error is not None:
        if isinstance(error, aiohttp.ClientError | asyncio.TimeoutError | OSError):
            return "unreachable"
        return "error"
    if response is None:
        return "error"
    status = response.status_code
    if status == 429:
        return "ratelimited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "error"
    body = response.body
    if isinstance(body, dict) and body.get("ok") is False:
        return "error"
    return "ok"


class SlackCallMeter(AsyncRetryHandler):
    """A retry handler that retries nothing: it counts each attempt. Put it first in the list."""

    def __init__(self, metrics: ProcessMetrics = PROCESS_METRICS) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics
        self._methods: dict[str, str] = {}

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = self._methods.get(request.url)
        if method is None:
            method = slack_method(request.url)
            if method != OTHER_METHOD:
                self._methods[request.url] = method
        self._metrics.slack_call(method, outcome_of(response, error))
        return False
