"""Host-side byte relays to the model proxy, for when the proxy does not listen where a sandbox needs it.

The bubblewrap sandbox reaches the proxy only through a Unix socket bound into it: when the proxy
is a TCP address, the backend listens on a socket in the sandbox's state directory and relays to it.
The unconfined ``unsafe-local`` sandbox reaches it over TCP: when the proxy is a Unix socket, the
backend listens on a loopback port and relays to the socket. Either way the relay only ever connects
to the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from incidentfox.sandboxes.backends.base import ProxyEndpoint

Connector = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def proxy_connector(proxy: ProxyEndpoint) -> Connector:
    """Opens a fresh connection to the proxy, over its Unix socket when it has one."""
    if proxy.unix_socket is not None:
        socket_path = str(proxy.unix_socket)
        return lambda: asyncio.open_unix_connection(socket_path)
    if proxy.host is None or proxy.port is None:
        raise ValueError("the model proxy endpoint needs a unix_socket or a host and a port")
    host, port = proxy.host, proxy.port
    return lambda: asyncio.open_connection(host, port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class ProxyRelay:
    """Listens on one socket and relays each connection to the proxy."""

    def __init__(self, connect: Connector) -> None:
        self._connect = connect
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen_unix(self, path: Path) -> Path:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, str(path))
        return path

    async def listen_loopback(self) -> int:
        """Listen on ``127.0.0.1`` at a free port; that port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.close()
            return
        for task in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            running = asyncio.ensure_future(task)
            self._tasks.add(running)
            running.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        for task in list(self._tasks):
            task.cancel()
        self._server = None
