"""What every emulator's server shares: an aiohttp app served on loopback for the emulator's
lifetime, and ``async with`` as start/stop."""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web


class ServedApp:
    """One aiohttp app served on ``host:port`` (port 0 picks a free one)."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None

    async def serve(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        shutdown_timeout: float = 0.5,
    ) -> int:
        """Start serving ``app``; the port it listens on."""
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=ssl_context).start()
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None


class Emulator(ABC):
    """``async with emulator:`` starts it and stops it, whatever happens in between."""

    @abstractmethod
    async def start(self) -> Self:
        """Serve the emulator; ``self`` once it answers."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop serving and release what ``start`` took (ports, temporary files)."""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class LoopbackEmulator(Emulator):
    """An emulator whose one app is served over plain HTTP on ``host`` at a free port: subclasses build
    the app (routes and middlewares) and name themselves for the not-started error."""

    display_name: ClassVar[str]
    """As in messages: ``Loki``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server = ServedApp()
        self._port: int | None = None

    @abstractmethod
    def build_app(self) -> web.Application:
        """The app to serve, with its routes."""

    async def start(self) -> Self:
        self._port = await self._server.serve(self.build_app(), self.host, 0)
        return self

    async def stop(self) -> None:
        await self._server.close()

    @property
    def url(self) -> str:
        """``http://host:port``; raises ``RuntimeError`` before ``start``."""
        if self._port is None:
            raise RuntimeError(f"the {self.display_name} emulator is not started")
        return f"http://{self.host}:{self._port}"
