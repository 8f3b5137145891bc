"""Offline Slack: Web API + Socket Mode over real HTTP/WebSocket on 127.0.0.1 (see ``emulator.py``)."""

from incidentfox.emulators.slack.emulator import SlackEmulator
from incidentfox.emulators.slack.limits import Rejection
from incidentfox.emulators.slack.socket_mode import SocketAck
from incidentfox.emulators.slack.store import (
    RecordedCall,
    StoredEphemeral,
    StoredFile,
    StoredMessage,
    StoredView,
)

__all__ = [
    "RecordedCall",
    "Rejection",
    "SlackEmulator",
    "SocketAck",
    "StoredEphemeral",
    "StoredFile",
    "StoredMessage",
    "StoredView",
]
