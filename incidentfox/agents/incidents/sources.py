"""The write-back of every webhook source, by kind: the one list ``IncidentThreads`` asks what is owed
and ``IncidentNotifier`` delivers through. Adding a source is one ``WriteBackSource`` here."""

from __future__ import annotations

from collections.abc import Mapping

from incidentfox.agents.incidents.github_comment import GitHubComment
from incidentfox.agents.incidents.pagerduty_note import PagerDutyNote
from incidentfox.agents.incidents.writeback import WriteBackSource

WRITE_BACK_SOURCES: Mapping[str, WriteBackSource] = {
    source.kind: source for source in (PagerDutyNote(), GitHubComment())
}
