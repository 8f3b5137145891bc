"""``SlackProgressUpdater``: the one place that edits a live Slack message.

Progress arrives much faster than Slack lets us edit (``chat.update`` is Tier 3, and the design caps
us at one edit per second per message). The updater therefore *coalesces*: ``update()`` only records
the newest state and a background task sends it when the interval window opens, so intermediate
states are skipped and the caller never waits on Slack. ``finish()`` is the opposite: it waits out
the window and retries until the final state is on screen (or a bounded budget runs out; the caller
then keeps the final state pending in the database, see ``agents/pending_finals.py``).

Why 429 is handled here and not by slack_sdk's ``AsyncRateLimitErrorRetryHandler``: that handler
sleeps *inside* ``chat_update`` (real ``asyncio.sleep`` plus random jitter) and then resends the
request it was given. For live progress that is the wrong content - by the time Retry-After has
passed a newer state has usually arrived and should replace the throttled one - and the hidden
retry would escape our interval accounting and our injectable clock. So the updater sees every
429 itself, treats ``Retry-After`` as a floor for its next attempt and sends the newest content
then. Pass a client *without* that handler (the default ``AsyncWebClient`` has none; its default
connection-error handler is harmless). Server errors (5xx) and connection errors are retried with
exponential backoff, also here, so that ``finish()`` owns its total time budget.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

#: Errors caused by the content itself; a plain-text message usually gets through.
CONTENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_attachments",
    }
)
#: Errors Slack reports with HTTP 200 that are nonetheless temporary.
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
#: Errors saying the message's thread is gone for good: a final message for it is dropped, not retried.
GONE_ERRORS = frozenset({"message_not_found", "channel_not_found", "is_archived", "thread_not_found"})

FALLBACK_TEXT_LIMIT = 39_000
EMPTY_FALLBACK_TEXT = "The investigation finished, but its result could not be shown here."
MAX_INTERMEDIATE_RETRIES = 3


class SendKind(enum.Enum):
    """How Slack answered one attempt to send a message."""

    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    BAD_CONTENT = "bad_content"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class _Content:
    blocks: list[dict[str, Any]]
    text: str


@dataclass(frozen=True, slots=True)
class SendOutcome:
    kind: SendKind
    error: str | None = None
    retry_after: float = 0.0


class SlackProgressUpdater:
    """Coalesced, rate-limit-aware edits of one message (``channel`` + ``ts``).

    ``clock`` and ``sleep`` are injectable for tests; ``log_context`` (run_id, team, trigger ...) is
    appended to every log line. ``max_final_wait`` bounds how long ``finish()`` keeps retrying.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_final_wait: float = 60.0,
        max_final_attempts: int = 10,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        log_context: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._ts = ts
        self._interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._max_final_wait = max_final_wait
        self._max_final_attempts = max_final_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._log_suffix = " ".join(f"{k}={v}" for k, v in (log_context or {}).items())
        self._pending: _Content | None = None
        self._last_delivered: _Content | None = None
        self._not_before = 0.0
        self._failures = 0
        self._requeues = 0
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = False
        self._finishing = False
        self._closed = False
        self._final_lock = asyncio.Lock()
        self.final_delivered = False
        self.used_fallback = False
        self.final_error: str | None = None
        """Why the final state is not on screen, when it is not: Slack's error code or ``ratelimited``."""
        self.final_blocks: list[dict[str, Any]] = []
        self.final_text = ""
        """The final content last tried (the plain-text fallback once blocks were refused)."""
        if any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
            self._log(logging.WARNING, "slack_updater_client_retries_429 note=coalescing_degraded")

    async def update(self, blocks: list[dict[str, Any]], text: str) -> None:
        """Record the newest progress state; it is sent when the interval window opens. Never blocks."""
        if self._finishing or self._closed:
            return
        self._pending = _Content(list(blocks), text)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(
                self._drain(), name=f"slack-progress-{self._channel}-{self._ts}"
            )

    async def finish(self, blocks: list[dict[str, Any]], text: str) -> None:
        """Deliver the final state: waits out the interval, retries 429/5xx, falls back to plain text.

        Never raises Slack or network errors; failures are logged. Afterwards ``final_delivered``,
        ``used_fallback``, ``final_error`` and ``final_blocks``/``final_text`` tell what happened.
        """
        async with self._final_lock:
            if self._closed:
                return
            self._finishing = True
            self._pending = None
            await self._stop_worker()
            await self._deliver_final(_Content(list(blocks), text))

    async def close(self) -> None:
        """Cancel background work; later ``update``/``finish`` calls do nothing."""
        self._closed = True
        self._pending = None
        worker = self._worker
        if worker is not None and not worker.done():
            worker.cancel()
            await asyncio.wait({worker})

    # -- background coalescing ----------------------------------------------------------------------

    async def _drain(self) -> None:
        while self._pending is not None and not self._finishing and not self._closed:
            await self._wait_until(self._not_before)
            content, self._pending = self._pending, None
            if content is None or self._finishing or self._closed:
                return
            if content == self._last_delivered:
                continue
            outcome = await self._send(content, final=False)
            if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
                # Retry this state unless a newer one arrived meanwhile (that one replaces it).
                self._requeues += 1
                if self._pending is None and self._requeues <= MAX_INTERMEDIATE_RETRIES:
                    self._pending = content
            else:
                self._requeues = 0

    async def _stop_worker(self) -> None:
        """Let a request already in flight finish (its timing counts); cancel a worker that only waits."""
        worker = self._worker
        if worker is None or worker.done():
            return
        if not self._in_flight:
            worker.cancel()
        await asyncio.wait({worker})

    # -- final delivery -----------------------------------------------------------------------------

    async def _deliver_final(self, content: _Content) -> None:
        deadline = self._clock() + self._max_final_wait
        attempts = 0
        fell_back = False
        while True:
            self.final_blocks, self.final_text = content.blocks, content.text
            if content == self._last_delivered:
                self.final_delivered = True
                self.final_error = None
                return
            if self._not_before > deadline or attempts >= self._max_final_attempts:
                self._log(logging.WARNING, f"slack_final_update_deferred attempts={attempts}")
                return
            await self._wait_until(self._not_before)
            attempts += 1
            outcome = await self._send(content, final=True)
            if outcome.kind is SendKind.SENT:
                self.final_delivered = True
                self.final_error = None
                return
            self.final_error = outcome.error
            if outcome.kind is SendKind.BAD_CONTENT and not fell_back:
                content = _plain_text(content)
                fell_back = self.used_fallback = True
                continue
            if outcome.kind not in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
                self._log(logging.ERROR, f"slack_final_update_failed error={outcome.error}")
                return

    # -- one attempt --------------------------------------------------------------------------------

    async def _send(self, content: _Content, *, final: bool) -> SendOutcome:
        self._in_flight = True
        try:
            await self._client.chat_update(
                channel=self._channel, ts=self._ts, text=content.text, blocks=content.blocks
            )
            outcome = SendOutcome(SendKind.SENT)
        except SlackApiError as exc:
            outcome = classify_slack_error(exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            outcome = SendOutcome(SendKind.TRANSIENT, error=type(exc).__name__)
        finally:
            self._in_flight = False
        now = self._clock()
        self._not_before = max(self._not_before, now + self._interval)
        if outcome.kind is SendKind.SENT:
            self._last_delivered = content
            self._failures = 0
            return outcome
        if outcome.kind is SendKind.RATE_LIMITED:
            self._not_before = max(self._not_before, now + outcome.retry_after)
        elif outcome.kind is SendKind.TRANSIENT:
            self._failures += 1
            backoff = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
            self._not_before = max(self._not_before, now + backoff)
        level = (
            logging.WARNING if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT) else logging.ERROR
        )
        self._log(
            level,
            f"slack_update_failed kind={outcome.kind.value} error={outcome.error} "
            f"retry_after={outcome.retry_after:g} final={final}",
        )
        return outcome

    async def _wait_until(self, when: float) -> None:
        delay = when - self._clock()
        if delay > 0:
            await self._sleep(delay)

    def _log(self, level: int, message: str) -> None:
        logger.log(level, "%s channel=%s ts=%s %s", message, self._channel, self._ts, self._log_suffix)


def classify_slack_error(exc: SlackApiError) -> SendOutcome:
    response = exc.response
    status = getattr(response, "status_code", 0)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        return SendOutcome(SendKind.RATE_LIMITED, error="ratelimited", retry_after=_retry_after(response))
    if status >= 500 or error in TRANSIENT_ERRORS:
        return SendOutcome(SendKind.TRANSIENT, error=error or f"http_{status}")
    if error in CONTENT_ERRORS:
        return SendOutcome(SendKind.BAD_CONTENT, error=error)
    return SendOutcome(SendKind.FAILED, error=error or f"http_{status}")


def _retry_after(response: Any) -> float:
    """Seconds from the ``Retry-After`` header (any case, str or list value); 1 s when absent."""
    headers = getattr(response, "headers", None) or {}
    for key in headers:
        if str(key).lower() == "retry-after":
            value = headers[key]
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0


def plain_text_fallback(message: dict[str, Any]) -> dict[str, Any]:
    """The text-only form of a stored message (``blocks``, ``text``), for content Slack refused."""
    fallback = _plain_text(_Content(list(message.get("blocks") or []), str(message.get("text") or "")))
    return {"blocks": fallback.blocks, "text": fallback.text}


def _plain_text(content: _Content) -> _Content:
    """The text-only fallback; ``blocks=[]`` clears the old progress blocks, which would hide the text."""
    text = content.text or EMPTY_FALLBACK_TEXT
    if len(text) > FALLBACK_TEXT_LIMIT:
        text = text[: FALLBACK_TEXT_LIMIT - 1] + "…"
    return _Content(blocks=[], text=text)
