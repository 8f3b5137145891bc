"""Which orgs may use the installation's own infrastructure credentials (``KUBECONFIG``,
``PAGERDUTY_API_KEY``, ``GITHUB_TOKEN``).

The installation's kubeconfig reaches whatever cluster the host can reach, so it is never a silent
fallback for every tenant: the global admin names the orgs that may use it in
``INSTALLATION_CREDENTIALS_ORGS`` (e.g. ``acme,beta``). A team of such an org that configures no
cluster of its own gets the installation's kubeconfig in its run-time config; every other team is told
which key to set. ``PAGERDUTY_API_KEY`` and ``GITHUB_TOKEN`` (with their URLs) are filled the same
way. The installation's model key (``OPENAI_API_KEY``) is not covered: it grants no
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
class Fallback:
    """One integration's installation-wide settings, filled into a team that sets none of ``own``.

    ``own`` lists every key that decides where the credential goes (the API URL, its CA) as well as
    the credential itself: a team that sets any of them brings its own, so the installation's
    credential can never be sent to an endpoint a team chose."""

    integration: str
    own: tuple[str, ...]
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class InstallationCredentials:
    """The installation's credentials and the orgs allowed to use them."""

    orgs: frozenset[str] = frozenset()
    kubeconfig: str | None = None
    fallbacks: tuple[Fallback, ...] = ()
    """``PAGERDUTY_API_KEY`` and ``GITHUB_TOKEN`` (with their URLs), when set."""

    def allows(self, org_id: str) -> bool:
        return org_id in self.orgs

    def fill(self, org_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the installation's credentials added where the org is allowed and the team
        configures none of its own for that integration (otherwise ``config`` itself, unchanged)."""
        if not self.allows(org_id):
            return config
        filled = config
        if self.kubeconfig:
            filled = _filled(
                filled, Fallback("kubernetes", _OWN_CLUSTER_KEYS, {"kubeconfig": self.kubeconfig})
            )
        for fallback in self.fallbacks:
            filled = _filled(filled, fallback)
        return filled


def installation_fallbacks(
    *,
    pagerduty_api_key: str | None,
    pagerduty_api_url: str | None,
    pagerduty_from_email: str | None,
    github_token: str | None,
    github_api_url: str | None,
    slack_bot_token: str | None = None,
    slack_api_url: str | None = None,
) -> tuple[Fallback, ...]:
    """The PagerDuty, GitHub and Slack fallbacks from the installation settings (only those with a
    credential). The Slack bot token lets the slack toolset read the team's claimed channels; a team
    that lists extra ``channels`` (or brings any token of its own) must read them with its own token."""
    found = []
    if pagerduty_api_key:
        values = {
            "api_key": pagerduty_api_key,
            "api_url": pagerduty_api_url,
            "from_email": pagerduty_from_email,
        }
        own = ("api_key", "api_url", "ca_cert_content")
        found.append(Fallback("pagerduty", own, {k: v for k, v in values.items() if v}))
    if github_token:
        values = {"token": github_token, "api_url": github_api_url}
        found.append(Fallback("github", ("token", "api_url"), {k: v for k, v in values.items() if v}))
    if slack_bot_token:
        values = {"bot_token": slack_bot_token, "api_url": slack_api_url}
        team_owned = ("bot_token", "user_token", "api_url", "channels")
        found.append(Fallback("slack", team_owned, {k: v for k, v in values.items() if v}))
    return tuple(found)


def _filled(config: dict[str, Any], fallback: Fallback) -> dict[str, Any]:
    integrations = config.get("integrations")
    integrations = integrations if isinstance(integrations, Mapping) else {}
    section = integrations.get(fallback.integration)
    section = section if isinstance(section, Mapping) else {}
    if section.get("enabled") is False or any(section.get(key) for key in fallback.own):
        return config
    merged = {**fallback.values, **{k: v for k, v in section.items() if v not in (None, "")}}
    return {**config, "integrations": {**integrations, fallback.integration: merged}}
