"""A process that is started as an MCP stdio server but never answers: it reads its stdin and says
nothing, as a server stuck before its handshake would. ``MCP_PID_FILE`` makes it add its pid to that file."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    path = os.environ.get("MCP_PID_FILE")
    if path:
        with open(path, "a") as out:
            out.write(f"{os.getpid()}\n")
    for _line in sys.stdin:
        pass
