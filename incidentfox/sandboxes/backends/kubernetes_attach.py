"""Run a command in a sandbox pod with this process's stdin, stdout and stderr: ``wrap``'s host half.

    INCIDENTFOX_SANDBOX_KUBECONFIG=/path python -m incidentfox.sandboxes.backends.kubernetes_attach \\
        --namespace NS --pod POD --container C -- claude --output-format stream-json ...

It opens ``pods/exec`` with stdin over the client's WebSocket stream (``v5.channel.k8s.io``, so the
end of stdin reaches the command as end of file), copies its stdin there from a thread, writes what
the command prints to its own stdout and stderr as it arrives, and exits with the command's exit
code (1 when the connection failed, with the reason on stderr). The kubeconfig path comes from the
environment so that no credential shows on a command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

KUBECONFIG_ENV = "INCIDENTFOX_SANDBOX_KUBECONFIG"


def _copy_stdin(ws: Any) -> None:
    # Any failure here means the connection is gone; the main loop reports how the command ended.
    with contextlib.suppress(Exception):
        while chunk := os.read(0, 65536):
            ws.write_stdin(chunk)
        ws.close_channel(0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _exit_code(ws: Any) -> int:
    try:
        return int(ws.returncode)
    except (TypeError, KeyError, ValueError, IndexError):
        print(
            "sandbox attach: the connection to the sandbox pod ended without an exit status", file=sys.stderr
        )
        return 1


def attach(namespace: str, pod: str, container: str, command: list[str]) -> int:
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if not kubeconfig:
        print(f"sandbox attach: {KUBECONFIG_ENV} is not set", file=sys.stderr)
        return 1
    api = k8s_config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    try:
        ws: Any = stream(
            k8s.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            container=container,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            binary=True,
            _preload_content=False,
        )
    except ApiException as exc:
        print(
            f"sandbox attach: cannot reach the sandbox pod {namespace}/{pod}: {exc.reason}", file=sys.stderr
        )
        return 1
    threading.Thread(target=_copy_stdin, args=(ws,), daemon=True).start()
    try:
        while ws.is_open():
            ws.update(timeout=1.0)
            for channel, fd in ((1, 1), (2, 2)):
                data = ws.read_channel(channel)
                if data:
                    _write_all(fd, data)
        return _exit_code(ws)
    finally:
        ws.close()
        api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pod", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command is required after --")
    return attach(args.namespace, args.pod, args.container, command)


if __name__ == "__main__":
    sys.exit(main())
