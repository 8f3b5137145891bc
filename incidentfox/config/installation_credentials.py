"""Which orgs may use the installation's own infrastructure credentials (today: ``KUBECONFIG``).

The installation's kubeconfig reaches whatever cluster the host can reach, so it is never a silent
fallback for every tenant: the global admin names the orgs that may use it in
``INSTALLATION_CREDENTIALS_ORGS`` (e.g. ``acme,beta``). A team of such an org that configures no
cluster of its own gets the installation's kubeconfig in its run-time config; every other team is told
which key to set. The installation's model key (``OPENAI_API_KEY``) is not covered: it grants no
access to infrastructure, and a team's own ``model.*`` endpoint never receives it (see
``agents/model_provider.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INSTALLATION_CREDENTIALS_SETTING = "INSTALLATION_CREDENTIALS_ORGS"
_OWN_CLUSTER_KEYS = ("api_url", "kubeconfig", "kubeconfig_content")


def parse_org_list(value: str | None) -> frozenset[str]:
    """``"acme, beta"`` → ``{"acme", "beta"}``; unset or empty → no org."""
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class InstallationCredentials:
    """The installation's credentials and the orgs allowed to use them."""

    orgs: frozenset[str] = frozenset()
    kubeconfig: str | None = None

    def allows(self, org_id: str) -> bool:
        return org_id in self.orgs

    def fill(self, org_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the installation's kubeconfig added when the org is allowed and the team
        configures no cluster of its own (otherwise ``config`` itself, unchanged)."""
        if not self.kubeconfig or not self.allows(org_id):
            return config
        integrations = config.get("integrations")
        integrations = integrations if isinstance(integrations, Mapping) else {}
        kubernetes = integrations.get("kubernetes")
        kubernetes = kubernetes if isinstance(kubernetes, Mapping) else {}
        if kubernetes.get("enabled") is False or any(kubernetes.get(key) for key in _OWN_CLUSTER_KEYS):
            return config
        return {
            **config,
            "integrations": {**integrations, "kubernetes": {**kubernetes, "kubeconfig": self.kubeconfig}},
        }
