"""Golden files for the App Home, the Edit modals and the ``/incidentfox config`` summary.

Each case renders realistic data and compares it with ``tests/golden/home/<case>.json``; every view
must also pass the Slack emulator's Block Kit validation and have unique block ids. After an
intended rendering change, regenerate with ``UPDATE_GOLDENS=1 pytest tests/test_home_golden.py`` and
review the JSON diff before committing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from incidentfox.agents.toolsets.health import UNCHECKED_NO_TOOLSET, HealthLine
from incidentfox.blocks.command_replies import RunLine
from incidentfox.blocks.config_forms import SECTIONS
from incidentfox.blocks.config_summary import (
    ConfigLine,
    TeamClaims,
    TeamOverview,
    config_summary_text,
    render_config_summary,
)
from incidentfox.blocks.edit_modals import EditTarget, render_edit_modal, render_edit_notice
from incidentfox.blocks.home import TEAMS_PER_PAGE, HomePage, render_home, render_home_notice
from incidentfox.emulators.slack.validation import validate_message, validate_view
from tests.goldens import assert_matches_golden

AT = datetime(2024, 6, 3, 16, 0, tzinfo=UTC)
ALICE, ADMIN = "U0ALICE", "U0ADMIN"

CHECKOUT = TeamOverview(
    org_id="acme",
    team_id="checkout",
    name="Checkout",
    path=("acme", "payments", "checkout"),
    claims=TeamClaims(
        slack_channel_ids=("C0CHECKOUT",), github_repos=("acme/checkout",), pagerduty_service_ids=("PCHK001",)
    ),
    config=(
        ConfigLine(("approvals", "approver_user_ids"), [ALICE], "checkout", "team"),
        ConfigLine(("integrations", "github", "token"), "••••f00d", "acme", "org"),
        ConfigLine(
            ("integrations", "kubernetes", "api_url"), "https://k8s.acme.dev:6443", "payments", "unit"
        ),
        ConfigLine(("integrations", "kubernetes", "namespace"), "prod", "checkout", "team"),
        ConfigLine(("integrations", "kubernetes", "token"), "••••9c2e", "checkout", "team"),
        ConfigLine(("model", "name"), "gpt-4.1", "acme", "org"),
        ConfigLine(("routing", "slack_channel_ids"), ["C0CHECKOUT"], "checkout", "team"),
        ConfigLine(("slack", "member_user_ids"), [ALICE, "U0BOB"], "checkout", "team"),
        ConfigLine(("auto_investigate",), True, "acme", "org"),
    ),
    health=(
        HealthLine("github", "unchecked", UNCHECKED_NO_TOOLSET),
        HealthLine(
            "kubernetes",
            "failing",
            "Kubernetes API at https://k8s.acme.dev:6443 rejected the credentials (401 Unauthorized). "
            "Check the token or kubeconfig in the team's Kubernetes integration.",
        ),
        HealthLine("prometheus", "off", "turned off (`enabled: false`)"),
    ),
    recent_runs=(
        RunLine(
            "why is checkout 502ing?", "running", AT, None, "https://acme.slack.com/archives/C0CHECKOUT/p1"
        ),
        RunLine(
            "checkout pods crashlooping in prod",
            "succeeded",
            AT,
            184.0,
            "https://acme.slack.com/archives/C0CHECKOUT/p2",
        ),
        RunLine("<!channel> is the <db> down & why?", "failed", AT, 12.0, None),
    ),
    in_progress=1,
    editable=True,
)


def _team(index: int, *, member: bool) -> TeamOverview:
    name = f"team-{index:02d}"
    return TeamOverview(
        org_id="acme",
        team_id=name,
        name=name.title(),
        path=("acme", name),
        health=(HealthLine("kubernetes", "ok"),),
        member=member,
        editable=True,
    )


def case_home_unclaimed() -> dict[str, Any]:
    return {"view": render_home(HomePage(user_id=ALICE, org_id=None))}


def case_home_unclaimed_workspace_admin() -> dict[str, Any]:
    return {"view": render_home(HomePage(user_id=ADMIN, org_id=None, can_claim=True))}


def case_home_no_team() -> dict[str, Any]:
    page = HomePage(user_id="U0BOB", org_id="acme", org_name="Acme", org_admins=(ADMIN, "U0CAROL"))
    return {"view": render_home(page)}


def case_home_one_team() -> dict[str, Any]:
    page = HomePage(
        user_id=ALICE, org_id="acme", org_name="Acme", org_admins=(ADMIN,), teams=(CHECKOUT,), team_count=1
    )
    return {"view": render_home(page)}


def case_home_member_who_cannot_edit() -> dict[str, Any]:
    team = TeamOverview(
        org_id="acme",
        team_id="checkout",
        name="Checkout",
        path=("acme", "checkout"),
        edit_note="Only an IncidentFox admin of this org can change team *checkout*. Org admins: <@U0ADMIN>.",
    )
    page = HomePage(user_id=ALICE, org_id="acme", org_name="Acme", teams=(team,), team_count=1)
    return {"view": render_home(page)}


def case_home_admin_middle_page() -> dict[str, Any]:
    teams = (_team(6, member=True), *(_team(i, member=False) for i in range(7, 7 + TEAMS_PER_PAGE - 1)))
    page = HomePage(
        user_id=ADMIN,
        org_id="acme",
        org_name="Acme",
        org_admins=(ADMIN,),
        is_org_admin=True,
        teams=teams,
        page=1,
        page_count=6,
        team_count=30,
    )
    return {"view": render_home(page)}


def case_home_broken_team() -> dict[str, Any]:
    broken = TeamOverview(
        org_id="acme",
        team_id="ledger",
        name="Ledger",
        path=("acme", "ledger"),
        problem="Its config could not be loaded, so it isn't shown here.",
    )
    page = HomePage(
        user_id=ADMIN,
        org_id="acme",
        org_name="Acme",
        is_org_admin=True,
        teams=(CHECKOUT, broken),
        team_count=2,
        notice="Sorry, Slack didn't let me open the editor (expired_trigger_id). Press Edit again.",
    )
    return {"view": render_home(page)}


def case_home_apology() -> dict[str, Any]:
    return {"view": render_home_notice("Sorry, I couldn't load your teams just now.")}


def case_config_summary() -> dict[str, Any]:
    return {"blocks": render_config_summary(CHECKOUT), "text": config_summary_text(CHECKOUT)}


CURRENT = {
    "integrations": {
        "kubernetes": {"api_url": "https://k8s.acme.dev:6443", "token": "••••9c2e", "namespace": "prod"},
        "github": {"token": "••••f00d"},
    },
    "model": {"name": "gpt-4.1"},
    "routing": {"slack_channel_ids": ["C0CHECKOUT"], "github_repos": ["acme/checkout"]},
    "slack": {"member_user_ids": [ALICE]},
    "approvals": {"approver_user_ids": [ALICE], "timeout_s": 900, "allow_self_approval": True},
}


def _edit_case(section: str, *, org_admin: bool = True) -> Callable[[], dict[str, Any]]:
    def case() -> dict[str, Any]:
        target = EditTarget("acme", "checkout", section, page=2)
        view = render_edit_modal(target, team_name="Checkout", current=CURRENT, org_admin=org_admin)
        return {"view": view}

    return case


def case_edit_notice() -> dict[str, Any]:
    return {
        "view": render_edit_notice(
            "Can't edit",
            "Only an IncidentFox admin of this org can change team *checkout*. Org admins: <@U0ADMIN>.",
        )
    }


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "home_unclaimed": case_home_unclaimed,
    "home_unclaimed_workspace_admin": case_home_unclaimed_workspace_admin,
    "home_no_team": case_home_no_team,
    "home_one_team": case_home_one_team,
    "home_member_who_cannot_edit": case_home_member_who_cannot_edit,
    "home_admin_middle_page": case_home_admin_middle_page,
    "home_broken_team": case_home_broken_team,
    "home_apology": case_home_apology,
    "config_summary": case_config_summary,
    "edit_notice": case_edit_notice,
    "edit_kubernetes_member": _edit_case("kubernetes", org_admin=False),
    **{f"edit_{section}": _edit_case(section) for section in SECTIONS},
}


def _block_ids_are_unique(blocks: list[dict[str, Any]]) -> None:
    ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(ids) == len(set(ids)), ids


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden_and_slack_accepts_it(name: str) -> None:
    rendered = CASES[name]()
    if "view" in rendered:
        view = rendered["view"]
        assert validate_view(view, allowed_types={"home", "modal"}) is None
        _block_ids_are_unique(view["blocks"])
    else:
        assert validate_message(rendered["text"], rendered["blocks"]) is None
    assert_matches_golden("home", name, rendered)


def test_rendering_is_deterministic() -> None:
    for name, case in CASES.items():
        assert case() == case(), name


def test_one_team_home_shows_sources_redaction_health_and_runs() -> None:
    text = json.dumps(case_home_one_team()["view"], ensure_ascii=False)
    assert "`model.name`: `gpt-4.1`  _from org acme_" in text
    assert "`integrations.kubernetes.api_url`: `https://k8s.acme.dev:6443`  _from unit payments_" in text
    assert "`integrations.kubernetes.namespace`: `prod`\\n" in text, "a team's own value has no source mark"
    assert "••••9c2e" in text
    assert "rejected the credentials (401 Unauthorized)" in text
    assert UNCHECKED_NO_TOOLSET in text
    assert "<https://acme.slack.com/archives/C0CHECKOUT/p2|checkout pods crashlooping in prod>" in text
    assert "&lt;!channel&gt; is the &lt;db&gt; down &amp; why?" in text, "questions are escaped"
    assert "<#C0CHECKOUT>" in text
    assert "`routing.slack_channel_ids`" not in text, "claims are shown once, in their own line"
    edit_ids = [
        e["action_id"]
        for b in case_home_one_team()["view"]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert edit_ids == [f"team_edit_{section}" for section in SECTIONS]


def test_a_team_with_hundreds_of_settings_stays_within_the_view_limits() -> None:
    lines = tuple(
        ConfigLine(("mcp_servers", f"s{i:03d}", "url"), "x" * 180, "acme", "org") for i in range(400)
    )
    teams = tuple(
        TeamOverview("acme", f"t{i}", f"T{i}", path=("acme", f"t{i}"), config=lines, editable=True)
        for i in range(TEAMS_PER_PAGE)
    )
    view = render_home(HomePage(user_id=ADMIN, org_id="acme", teams=teams, team_count=30, page_count=6))
    assert validate_view(view, allowed_types={"home"}) is None
    assert len(view["blocks"]) <= 100
    assert "…and 375 more" in json.dumps(view, ensure_ascii=False)
    summary = render_config_summary(teams[0])
    assert validate_message("x", summary) is None
    assert len(summary) <= 50
