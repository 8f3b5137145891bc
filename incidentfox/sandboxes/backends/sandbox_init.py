"""The first program of every bubblewrap sandbox: set limits, start the proxy forwarder, run the command.

Bubblewrap runs it with the system's own Python (``python3 -I -S``, read-only ``/usr``), so it uses
the standard library only and imports nothing from IncidentFox. Arguments::

    sandbox_init.py '<json settings>' -- command args...

Settings: ``rlimits`` (``{"NPROC": 256, "CPU": 30, ...}``, each set as soft and hard limit, so the
command cannot raise them), ``listen_port`` and ``proxy_socket``. With the last two, it listens on
``127.0.0.1:listen_port`` in the sandbox's own network namespace, where loopback is the only
interface, and relays every connection to the Unix socket bind-mounted from the host: the model
proxy. Nothing else is reachable because there is nothing else.

The listener is bound before the command starts, so the proxy is there from the command's first
instruction. The forwarder is double-forked away from the command (it is not the command's child)
and dies with the sandbox's PID namespace when the command ends. Limits are set inside the
sandbox's user namespace, after bubblewrap created it: ``RLIMIT_NPROC`` then counts only this
sandbox's processes (Linux counts it per user namespace since 5.14), not every process of the host
user.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
from typing import Any

_CHUNK = 65536


def _apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))


def _relay(listener: socket.socket, target: str) -> None:
    """Shuttle bytes between accepted TCP clients and fresh connections to ``target``, forever."""
    peers: dict[socket.socket, socket.socket] = {}
    while True:
        readable, _, _ = select.select([listener, *peers], [], [])
        for ready in readable:
            if ready is listener:
                client, _ = listener.accept()
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    upstream.connect(target)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                peers[client], peers[upstream] = upstream, client
                continue
            other = peers.get(ready)
            if other is None:
                continue
            try:
                data = ready.recv(_CHUNK)
                if data:
                    other.sendall(data)
            except OSError:
                data = b""
            if not data:
                for end in (ready, other):
                    peers.pop(end, None)
                    end.close()


def _start_forwarder(port: int, target: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            _relay(listener, target)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    listener.close()


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: sandbox_init.py SETTINGS -- COMMAND...", file=sys.stderr)
        return 2
    settings: dict[str, Any] = json.loads(argv[1])
    command = argv[3:]
    _apply_limits({str(k): int(v) for k, v in (settings.get("rlimits") or {}).items()})
    if settings.get("proxy_socket"):
        _start_forwarder(int(settings["listen_port"]), str(settings["proxy_socket"]))
    os.closerange(3, 65536)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"sandbox: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 126 if isinstance(exc, PermissionError) else 127
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
