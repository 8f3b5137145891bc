"""Where to look in the cluster for a question, and what was found there.

1. A namespace the question names ("in namespace shop", "-n shop") is scanned, over the configured
   or kubeconfig default, once it is a valid name that the credentials' namespace list holds (or the
   list cannot be read, in which case the scan itself answers).
2. Otherwise the configured namespace is scanned first. When it shows nothing wrong, when none is
   configured, or when the question names a workload, pod, node or service that no finding is
   about, every namespace the credentials can list is scanned too (as k8sgpt does).
3. What could not be checked (namespaces RBAC does not let us list) is said, not skipped.

Each scan is shared between the team's runs (``SharedScans``) and reused only while fresh or while
the cluster's ``resourceVersion`` shows nothing changed. The report says when the cluster was read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from incidentfox.agents.analyzers.cluster_scan import (
    ClusterScan,
    NamespaceListing,
    cluster_revision,
    list_namespaces,
    scan_namespace,
)
from incidentfox.agents.analyzers.findings import Finding, about_question, rank_findings
from incidentfox.agents.analyzers.question_scope import QuestionScope, parse_question
from incidentfox.agents.analyzers.shared_scan import SharedScans
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

OpenClient = Callable[[], Awaitable[KubernetesClient]]
ScanOrError = ClusterScan | str
"""A scan, or one plain sentence saying why the cluster could not be reached at all."""


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """Ranked findings for one question, where they were looked for, and what could not be checked."""

    findings: list[Finding]
    notes: tuple[str, ...]
    """Where the scan looked and when it read the cluster, in plain words."""
    unchecked: tuple[str, ...] = ()
    """What could not be read (other namespaces under RBAC, a scan that failed)."""


@dataclass(slots=True)
class _Looked:
    scans: list[ClusterScan]
    notes: list[str]
    unchecked: list[str]


class ScopedScanner:
    """Scans for one run: opens clients through ``open_client`` and shares scans under ``key_prefix``."""

    def __init__(self, open_client: OpenClient, scans: SharedScans, key_prefix: tuple[str, str, str]) -> None:
        self._open_client = open_client
        self._scans = scans
        self._prefix = key_prefix

    async def _scan(self, namespace: str | None) -> ScanOrError:
        try:
            client = await self._open_client()
        except Exception as exc:
            return f"The Kubernetes integration is not available: {exc}"
        try:
            return await scan_namespace(client, namespace)
        finally:
            client.close()

    async def shared(self, client: KubernetesClient, namespace: str | None) -> ScanOrError:
        """The scan of ``namespace`` (``None``: all), shared with the team's other runs."""

        async def unchanged(previous: ScanOrError) -> bool:
            if isinstance(previous, str) or previous.revision is None:
                return False
            return await cluster_revision(client, namespace) == previous.revision

        org, team, cluster = self._prefix
        key = (org, team, f"{cluster}|{namespace or '*'}")
        return await self._scans.get(key, lambda: self._scan(namespace), unchanged=unchanged)

    async def report(self, question: str) -> ClusterReport | str:
        """Scan where the question points; a plain-words error when the cluster cannot be reached."""
        scope = parse_question(question)
        try:
            client = await self._open_client()
        except Exception as exc:
            return f"The Kubernetes integration is not available: {exc}"
        try:
            looked = await self._look(client, scope, question)
        finally:
            client.close()
        if isinstance(looked, str):
            return looked
        return ClusterReport(
            findings=_merged(looked.scans, question),
            notes=(*looked.notes, _read_at(looked.scans)),
            unchecked=tuple(looked.unchecked),
        )

    async def _look(self, client: KubernetesClient, scope: QuestionScope, question: str) -> _Looked | str:
        looked = _Looked(scans=[], notes=[], unchecked=[])
        listing: NamespaceListing | None = None
        named = scope.namespace
        if named:
            listing = await list_namespaces(client)
            if listing.names is not None and named not in listing.names:
                looked.notes.append(
                    f"There is no namespace named {named}; the namespaces are: {', '.join(listing.names)}."
                )
                named = None
        if named:
            first = await self.shared(client, named)
            if isinstance(first, str):
                return first
            looked.scans.append(first)
            looked.notes.append(f"Looked in namespace {named}, as the question asks.")
            return looked
        configured = client.default_namespace
        if configured:
            first = await self.shared(client, configured)
            if isinstance(first, str):
                return first
            looked.scans.append(first)
            if first.failed or not _should_widen(first, scope, question):
                looked.notes.append(f"Looked in namespace {configured}, the team's default.")
                return looked
        listing = listing or await list_namespaces(client)
        if listing.names is None and configured:
            looked.unchecked.append(f"Other namespaces were not checked: {listing.error}")
            looked.notes.append(f"Looked in namespace {configured}, the team's default.")
            return looked
        everywhere = await self.shared(client, None)
        failure = everywhere if isinstance(everywhere, str) else everywhere.failed
        if failure is None or not looked.scans:
            if isinstance(everywhere, str):
                return everywhere
            looked.scans.append(everywhere)
        else:
            why = failure if isinstance(failure, str) else failure.root_cause
            looked.unchecked.append(f"Other namespaces were not checked: {why}")
        looked.notes.append(_widened_note(configured, scope, listing.names))
        return looked


def _should_widen(scan: ClusterScan, scope: QuestionScope, question: str) -> bool:
    if not scan.problems:
        return True
    return scope.names_an_object and not any(about_question(question, f, scope) for f in scan.problems)


def _widened_note(configured: str | None, scope: QuestionScope, namespaces: tuple[str, ...] | None) -> str:
    every = f"all {len(namespaces)} namespaces" if namespaces else "all namespaces"
    if not configured:
        return f"No namespace is configured for the team, so {every} were checked."
    why = (
        "nothing there is about what the question names"
        if scope.names_an_object
        else "nothing was wrong there"
    )
    return f"Looked in namespace {configured}, the team's default, then in {every} because {why}."


def _read_at(scans: list[ClusterScan]) -> str:
    if not scans:
        return "The cluster could not be read."
    oldest = min(s.read_at for s in scans)
    return f"Cluster state read at {oldest:%H:%M:%S} UTC."


def _merged(scans: list[ClusterScan], question: str) -> list[Finding]:
    """Every problem found, each object once (as the widest scan saw it), best first; or the widest
    scan's all-clear or failure when there is none."""
    problems: dict[str, Finding] = {}
    for scan in reversed(scans):
        for finding in scan.problems:
            problems.setdefault(finding.key or finding.resource, finding)
    if problems:
        return rank_findings(problems.values(), question)
    if scans and scans[-1].failed:
        return [scans[-1].failed]
    return list(scans[-1].findings) if scans else []
