"""What the benches read off the Slack emulator: each mention's progress post and the edits of it.

The emulator's call log only grows, so ``refresh`` reads just the calls since the last one. A
subclass says what one bench keeps of a post (``posted``) and of an edit (``edited``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from incidentfox.emulators.slack import RecordedCall, SlackEmulator


class HasThread(Protocol):
    @property
    def thread_ts(self) -> str: ...


M = TypeVar("M", bound=HasThread)
T = TypeVar("T")


class ThreadWatch(ABC, Generic[M, T]):
    """Matches recorded ``chat.postMessage`` calls to mentions by thread, and ``chat.update`` calls to
    the posted message, keeping one ``T`` per mention."""

    def __init__(self, slack: SlackEmulator, make: Callable[[M], T]) -> None:
        self._slack = slack
        self._make = make
        self._seen = 0
        self._by_thread: dict[str, T] = {}
        self._by_message: dict[str, T] = {}

    def watch(self, mentions: Sequence[M]) -> list[T]:
        watched = [self._make(m) for m in mentions]
        self._by_thread.update({m.thread_ts: w for m, w in zip(mentions, watched, strict=True)})
        return watched

    def refresh(self) -> None:
        calls = self._slack.calls()
        for call in calls[self._seen :]:
            if call.method == "chat.postMessage" and call.ok:
                found = self._by_thread.get(str(call.args.get("thread_ts")))
                if found is not None and self.posted(found, call):
                    self._by_message[str(call.response.get("ts"))] = found
            elif call.method == "chat.update":
                found = self._by_message.get(str(call.args.get("ts")))
                if found is not None:
                    self.edited(found, call)
        self._seen = len(calls)

    @abstractmethod
    def posted(self, watched: T, call: RecordedCall) -> bool:
        """Keep what matters of the mention's first post; ``False`` if it was posted already."""

    @abstractmethod
    def edited(self, watched: T, call: RecordedCall) -> None:
        """Keep what matters of one edit (``call.ok`` may be false: a refused edit)."""
