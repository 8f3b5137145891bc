"""How a scripted model emulator picks the step that answers a request, whatever its wire format.

The OpenAI and Anthropic emulators share these rules:

* a ``Responder`` (any callable, e.g. a ``RoutedScript``) is asked first; it returns a step, or
  ``None`` to fall through to the default script, whose next step is popped;
* a delay step is a prefix: the step after it is bound to the same request before the server sleeps,
  so a concurrent request cannot take it;
* no step left raises ``ScriptExhausted``, which each emulator turns into its own HTTP 500 answer.

Each emulator keeps its own request and step types, mixes in ``ScriptedAnswers`` for the rules above
and subclasses ``RoutedScript`` to add its own ``when_*`` routes.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Self, TypeVar

RequestT = TypeVar("RequestT")
StepT = TypeVar("StepT")

Responder = Callable[[RequestT], StepT | None]
"""Picks the step for a request, or returns ``None`` to use the default script. May raise
``ScriptExhausted`` to report that the script meant for this request has run out."""


class ScriptExhausted(Exception):
    """No step is left for a request; the server turns this into a 500 answer and a ``failures`` entry."""


@dataclass(slots=True)
class _Route(Generic[RequestT, StepT]):
    name: str
    matches: Callable[[RequestT], bool]
    steps: deque[StepT]


@dataclass(slots=True)
class RoutedScript(Generic[RequestT, StepT]):
    """A responder with one ordered script per caller, routed by a predicate on the request.

    Routes are tried in the order they were added; the first whose predicate matches owns the request.
    A request that no route matches falls through to the emulator's default script.
    """

    _routes: list[_Route[RequestT, StepT]] = field(default_factory=list)

    def when(self, name: str, matches: Callable[[RequestT], bool], steps: Sequence[StepT]) -> Self:
        self._routes.append(_Route(name, matches, deque(steps)))
        return self

    def remaining(self) -> dict[str, int]:
        return {route.name: len(route.steps) for route in self._routes}

    def __call__(self, request: RequestT) -> StepT | None:
        for route in self._routes:
            if route.matches(request):
                if not route.steps:
                    raise ScriptExhausted(f"route {route.name!r} has no step left")
                return route.steps.popleft()
        return None


class ScriptedAnswers(ABC, Generic[RequestT, StepT]):
    """The scripting half of a model emulator: a responder, a default script and the delay-prefix rule.

    The emulator sets ``responder``, ``_script`` and ``_stopping`` in its ``__init__``, says which steps
    are delays in ``_delay_seconds`` and answers each request with ``await self._next_answer(request)``.
    """

    responder: Responder[RequestT, StepT] | None
    _script: deque[StepT]
    _stopping: asyncio.Event

    def enqueue(self, *steps: StepT) -> None:
        """Append steps to the default script."""
        self._script.extend(steps)

    @property
    def remaining(self) -> int:
        """Steps left in the default script."""
        return len(self._script)

    @abstractmethod
    def _delay_seconds(self, step: StepT) -> float | None:
        """How long a delay step sleeps; ``None`` for a step that answers."""

    async def _next_answer(self, request: RequestT) -> StepT | None:
        """The step answering this request, after sleeping through its delay prefix.

        The step after a delay is bound to this request before sleeping, so a concurrent request cannot
        take it; a script exhausted after a delay raises after the sleep. Returns ``None`` when the
        emulator stops during the delay.
        """
        delay = 0.0
        exhausted: ScriptExhausted | None = None
        step: StepT | None = None
        while True:
            try:
                step = self._pick(request)
            except ScriptExhausted as exc:
                if not delay:
                    raise
                exhausted = exc
                break
            seconds = self._delay_seconds(step)
            if seconds is None:
                break
            delay += seconds
        if delay and await self._stopped_within(delay):
            return None
        if exhausted is not None:
            raise exhausted
        return step

    def _pick(self, request: RequestT) -> StepT:
        step = self.responder(request) if self.responder is not None else None
        if step is not None:
            return step
        if not self._script:
            raise ScriptExhausted("default script has no step left")
        return self._script.popleft()

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds``; ``True`` when the emulator stopped meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
