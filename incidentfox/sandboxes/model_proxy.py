"""The model proxy: the only door out of a sandbox (design §7, issue: credentials never enter it).

The Claude Code CLI inside a sandbox gets ``ANTHROPIC_BASE_URL`` pointing here and a per-session
token as its API key. The proxy checks the token, swaps it for the real key, and forwards the
Messages API call upstream, streaming the answer back as it arrives. It is its own small server
(not a route of the main app): a sandbox that can reach it can reach nothing else of IncidentFox,
and a long conversation is not held to the main app's 1 MiB body limit.

Every Messages API call is timed here, to its last streamed byte, and its tokens are read from the
answer as it passes (``model_usage``): ``incidentfox_model_seconds{provider="anthropic"}`` and
``incidentfox_model_tokens_total`` (ADR-043).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from incidentfox.observability.metrics import PROCESS_METRICS
from incidentfox.sandboxes.model_usage import MessagesUsage
from incidentfox.sandboxes.session_tokens import SessionTokens

log = logging.getLogger(__name__)

ALLOWED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens", "/v1/models"})
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "content-type", "accept", "user-agent")
MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_UPSTREAM = "https://api.anthropic.com"
MODEL_CALL_PATH = "/v1/messages"
PROVIDER = "anthropic"


def anthropic_error(status: int, kind: str, message: str, *, retry: bool = False) -> web.Response:
    """An error in the shape the Anthropic API (and so the CLI) understands. ``x-should-retry`` tells
    the CLI whether trying again could help (a refused token never gets better)."""
    body = {"type": "error", "error": {"type": kind, "message": message}}
    headers = {"x-should-retry": "true" if retry else "false"}
    return web.json_response(body, status=status, headers=headers)


class ModelProxy:
    """Forwards a session's model calls upstream with the real key; refuses everything else."""

    def __init__(
        self,
        tokens: SessionTokens,
        *,
        api_key: str,
        upstream: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.tokens = tokens
        self.upstream = (upstream or DEFAULT_UPSTREAM).rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.requests_by_session: dict[str, int] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", self.forward)
        return app

    async def start(self, *, host: str = "127.0.0.1", port: int = 0, unix_path: Path | None = None) -> None:
        """Serve on a TCP port (``url`` then says where) or on a Unix socket for local sandboxes."""
        self._http = aiohttp.ClientSession(timeout=self._timeout)
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        if unix_path is not None:
            await web.UnixSite(self._runner, str(unix_path)).start()
            self.url = f"unix:{unix_path}"
            return
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"

    async def also_listen(self, *, host: str, port: int) -> None:
        """Serve on a TCP port as well (pods reach the proxy over the network, local sandboxes through
        the Unix socket of ``start``)."""
        if self._runner is None:
            raise RuntimeError("start the model proxy before adding a listener")
        await web.TCPSite(self._runner, host, port).start()
        log.info("model proxy also listening on %s:%s for sandbox pods", host, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Handlers are cancelled when the CLI goes away (``handler_cancellation``), which closes the
        upstream call too: an interrupted or killed CLI leaves no request hanging at the model API."""
        grant = self.tokens.check(_presented_token(request.headers))
        if grant is None:
            log.info("model proxy refused a call with no valid session token path=%s", request.path)
            return anthropic_error(401, "authentication_error", "this sandbox session is not authorised")
        if request.path not in ALLOWED_PATHS:
            return anthropic_error(404, "not_found_error", f"the model proxy does not serve {request.path}")
        assert self._http is not None, "start() first"
        self.requests_by_session[grant.session_id] = self.requests_by_session.get(grant.session_id, 0) + 1
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k)) is not None}
        headers["x-api-key"] = self._api_key
        body = await request.read()
        target = self.upstream + request.path_qs
        started = time.perf_counter()
        try:
            async with self._http.request(request.method, target, data=body, headers=headers) as upstream:
                if request.path == MODEL_CALL_PATH:
                    return await _metered_relay(request, upstream, started)
                return await _relay(request, upstream)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "model proxy: upstream unreachable session=%s error=%s", grant.session_id, type(exc).__name__
            )
            return anthropic_error(
                502, "api_error", "the model API could not be reached from IncidentFox", retry=True
            )


async def _metered_relay(
    request: web.Request, upstream: aiohttp.ClientResponse, started: float
) -> web.StreamResponse:
    """``_relay`` for a model call: timed to its last byte, its tokens read as they pass."""
    usage = MessagesUsage(streamed=upstream.content_type == "text/event-stream")
    response = await _relay(request, upstream, usage.feed)
    input_tokens, output_tokens = usage.tokens() if upstream.status == 200 else (0, 0)
    PROCESS_METRICS.model_call(
        PROVIDER, time.perf_counter() - started, input_tokens=input_tokens, output_tokens=output_tokens
    )
    return response


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, seen: Callable[[bytes], None] | None = None
) -> web.StreamResponse:
    """Stream the upstream answer back unchanged (SSE events arrive as they are produced); ``seen``
    is shown each chunk as it passes."""
    response = web.StreamResponse(status=upstream.status)
    for name in ("content-type", "retry-after", "request-id", "anthropic-ratelimit-requests-remaining"):
        if name in upstream.headers:
            response.headers[name] = upstream.headers[name]
    await response.prepare(request)
    async for chunk in upstream.content.iter_any():
        await response.write(chunk)
        if seen is not None:
            seen(chunk)
    await response.write_eof()
    return response


def _presented_token(headers: Mapping[str, str]) -> str | None:
    """The CLI sends its API key as ``x-api-key``, or a bearer token with ``ANTHROPIC_AUTH_TOKEN``."""
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("Authorization", "")
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
