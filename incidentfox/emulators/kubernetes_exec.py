"""``pods/exec`` for the Kubernetes emulator: the WebSocket channel protocol, with scripted commands.

The real ``kubernetes`` client's ``stream`` opens a WebSocket offering ``v5.channel.k8s.io`` and
``v4.channel.k8s.io``. Every message is one channel byte and its payload: 0 stdin (client to server),
1 stdout, 2 stderr, 3 the final ``Status`` (``Success``, or ``Failure`` with reason
``NonZeroExitCode`` and the exit code as the first cause's message), and with v5 a 255 ``[255, n]``
message closing channel ``n`` (the client's end of stdin). This module speaks that protocol.

There is no container to run anything in, so commands are scripted: ``ExecHandler`` coroutines get an
``ExecCall`` (the pod, container, command, the container's env, stdin) and return the exit code.
``scripted_command`` is the default, a handful of coreutils: ``echo``, ``cat``, ``env``, ``sleep``,
``true``, ``false`` and ``timeout``. Anything else answers 127 with "not scripted" on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from incidentfox.emulators.kubernetes_fields import Obj
from incidentfox.emulators.kubernetes_writes import status_response

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255


@dataclass(slots=True)
class ExecCall:
    """One exec request as a scripted handler sees it."""

    namespace: str
    pod: str
    container: str
    command: list[str]
    env: dict[str, str]
    _ws: web.WebSocketResponse
    _stdin: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    async def read_stdin(self) -> bytes | None:
        """The next chunk the client sent on stdin; ``None`` once it closed stdin or went away."""
        return await self._stdin.get()

    async def write(self, channel: int, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        if payload and not self._ws.closed:
            await self._ws.send_bytes(bytes([channel]) + payload)

    async def stdout(self, data: bytes | str) -> None:
        await self.write(STDOUT, data)

    async def stderr(self, data: bytes | str) -> None:
        await self.write(STDERR, data)


ExecHandler = Callable[[ExecCall], Awaitable[int]]


def _status(code: int) -> Obj:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def _run(call: ExecCall, argv: list[str]) -> int:
    program, args = (argv[0], argv[1:]) if argv else ("", [])
    if program == "echo":
        await call.stdout(" ".join(args) + "\n")
        return 0
    if program in ("true", "false"):
        return 0 if program == "true" else 1
    if program == "cat" and not args:
        while (chunk := await call.read_stdin()) is not None:
            await call.stdout(chunk)
        return 0
    if program == "sleep" and len(args) == 1:
        await asyncio.sleep(float(args[0]))
        return 0
    if program == "env":
        return await _env(call, args)
    if program == "timeout":
        return await _timeout(call, args)
    await call.stderr(f"emulator: {program}: not scripted\n")
    return 127


async def _env(call: ExecCall, args: list[str]) -> int:
    env = dict(call.env)
    while args and "=" in args[0]:
        name, _, value = args.pop(0).partition("=")
        env[name] = value
    if args:
        saved, call.env = call.env, env
        try:
            return await _run(call, args)
        finally:
            call.env = saved
    await call.stdout("".join(f"{k}={v}\n" for k, v in env.items()))
    return 0


async def _timeout(call: ExecCall, args: list[str]) -> int:
    killed = False
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("-s", "--signal"):
            option += "=" + args.pop(0)
        killed = killed or option.split("=", 1)[-1] in ("KILL", "9", "SIGKILL")
    seconds, inner = float(args[0]), args[1:]
    try:
        return await asyncio.wait_for(_run(call, inner), seconds)
    except TimeoutError:
        return 137 if killed else 124


async def scripted_command(call: ExecCall) -> int:
    """The default handler: run ``call.command`` with the scripted coreutils."""
    return await _run(call, list(call.command))


async def _pump_stdin(ws: web.WebSocketResponse, call: ExecCall, protocol: str | None) -> None:
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = message.data.encode()
            elif message.type == WSMsgType.BINARY:
                data = message.data
            else:
                break
            if not data:
                continue
            if data[0] == CLOSE and protocol == V5:
                if data[1:2] == bytes([STDIN]):
                    break
            elif data[0] == STDIN and len(data) > 1:
                await call._stdin.put(data[1:])
    finally:
        await call._stdin.put(None)


async def serve_exec(request: web.Request, pod: Obj, handler: ExecHandler) -> web.StreamResponse:
    """Answer one ``GET .../pods/{name}/exec`` as the API server and kubelet would."""
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in pod["spec"]["containers"]]
    container = request.query.get("container") or (containers[0] if len(containers) == 1 else "")
    command = request.query.getall("command", [])
    if not command:
        return status_response(400, "BadRequest", "you must specify at least 1 command")
    if not pod["spec"].get("nodeName") or pod["status"].get("phase") != "Running":
        return status_response(400, "BadRequest", f"pod {name} does not have a host assigned")
    if container not in containers:
        return status_response(400, "BadRequest", f"container {container} is not valid for pod {name}")
    ws = web.WebSocketResponse(protocols=(V5, V4))
    await ws.prepare(request)
    spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    env = {e["name"]: str(e.get("value", "")) for e in spec.get("env") or []}
    call = ExecCall(pod["metadata"]["namespace"], name, container, command, env, ws)
    pump = asyncio.ensure_future(_pump_stdin(ws, call, ws.ws_protocol))
    try:
        code = await handler(call)
    except Exception as exc:
        await call.stderr(f"emulator: the exec handler failed: {exc}\n")
        code = 1
    with contextlib.suppress(ConnectionError, RuntimeError):
        await call.write(ERROR, json.dumps(_status(code)))
        await ws.close()
    pump.cancel()
    return ws
