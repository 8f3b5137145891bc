"""The default PagerDuty account of the emulator, and the ids tests refer to.

``seed_checkout``: ``checkout-api`` pages now for its 5xx rate (two alerts and a note), after two
earlier pages with the same title this week and one three weeks ago, a low-urgency latency page and a
disk-usage incident still acknowledged from yesterday; ``payments-api`` had one incident two days ago.
Alice is primary on call for checkout, Carol secondary, and Bob takes over primary in five days;
Carol is named directly in the payments policy (always on call there). Checkout's deploy pipeline
sent PagerDuty a change event for the deploy 14 minutes ago and for the previous day's. Times are
relative to the world's ``now``.
"""

from __future__ import annotations

from datetime import timedelta

from incidentfox.emulators.pagerduty_world import PagerDutyWorld

CHECKOUT_SERVICE_ID = "PCHKOUT"
PAYMENTS_SERVICE_ID = "PPAYMNT"
CHECKOUT_POLICY_ID = "PEPCHK1"
PAYMENTS_POLICY_ID = "PEPPAY1"
CHECKOUT_PRIMARY_SCHEDULE_ID = "PSCHKP1"
CHECKOUT_SECONDARY_SCHEDULE_ID = "PSCHKS1"
CHECKOUT_TEAM_ID = "PTCHKOU"
ALICE_ID, BOB_ID, CAROL_ID, BOT_ID = "PUALICE", "PUBOB01", "PUCAROL", "PUBOT01"
BOT_EMAIL = "incidentfox@acme.example"
FIRING_INCIDENT_ID = "Q3CHKOUT5XXNOW"
FIRING_TITLE = "checkout-api 5xx error rate above 5%"
P1_ID = "PPRIO01"
CHECKOUT_ALERTS_ID, CHECKOUT_CHANGES_ID = "PIALERT", "PICHNGE"
DEPLOY_SUMMARY = "Deploy checkout-api 2.14.0 to prod"


def seed_checkout(world: PagerDutyWorld) -> PagerDutyWorld:
    """Fill ``world`` with the default account (see the module docstring) and return it."""
    now = world.now
    world.add_user("Alice Nguyen", "alice@acme.example", user_id=ALICE_ID)
    world.add_user("Bob Martinez", "bob@acme.example", user_id=BOB_ID)
    world.add_user("Carol Smith", "carol@acme.example", user_id=CAROL_ID)
    world.add_user("IncidentFox", BOT_EMAIL, user_id=BOT_ID)
    world.add_team("Checkout", team_id=CHECKOUT_TEAM_ID)
    world.add_priority("P1", priority_id=P1_ID)
    world.add_priority("P3", priority_id="PPRIO03")
    world.add_schedule("Checkout Primary", schedule_id=CHECKOUT_PRIMARY_SCHEDULE_ID)
    world.add_schedule("Checkout Secondary", schedule_id=CHECKOUT_SECONDARY_SCHEDULE_ID)
    world.add_escalation_policy(
        "Checkout Escalation",
        policy_id=CHECKOUT_POLICY_ID,
        levels=[[CHECKOUT_PRIMARY_SCHEDULE_ID], [CHECKOUT_SECONDARY_SCHEDULE_ID]],
        team_ids=[CHECKOUT_TEAM_ID],
    )
    world.add_escalation_policy("Payments Escalation", policy_id=PAYMENTS_POLICY_ID, levels=[[CAROL_ID]])
    world.add_service(
        "checkout-api",
        CHECKOUT_POLICY_ID,
        service_id=CHECKOUT_SERVICE_ID,
        description="Checkout HTTP API (prod/checkout)",
        team_ids=[CHECKOUT_TEAM_ID],
    )
    world.add_service(
        "payments-api", PAYMENTS_POLICY_ID, service_id=PAYMENTS_SERVICE_ID, description="Card payments"
    )
    shift_start, shift_end = now - timedelta(days=2), now + timedelta(days=5)
    world.add_oncall(
        ALICE_ID,
        CHECKOUT_POLICY_ID,
        schedule_id=CHECKOUT_PRIMARY_SCHEDULE_ID,
        start=shift_start,
        end=shift_end,
    )
    world.add_oncall(
        BOB_ID,
        CHECKOUT_POLICY_ID,
        schedule_id=CHECKOUT_PRIMARY_SCHEDULE_ID,
        start=shift_end,
        end=shift_end + timedelta(days=7),
    )
    world.add_oncall(
        CAROL_ID,
        CHECKOUT_POLICY_ID,
        level=2,
        schedule_id=CHECKOUT_SECONDARY_SCHEDULE_ID,
        start=shift_start,
        end=shift_end,
    )
    world.add_oncall(CAROL_ID, PAYMENTS_POLICY_ID)
    details = {"namespace": "prod", "deployment": "checkout", "error_rate": "7.2%", "threshold": "5%"}
    past: list[tuple[str, str, timedelta, timedelta, str]] = [
        (CHECKOUT_SERVICE_ID, FIRING_TITLE, timedelta(days=21), timedelta(minutes=45), "high"),
        (CHECKOUT_SERVICE_ID, FIRING_TITLE, timedelta(days=5), timedelta(minutes=22), "high"),
        (
            CHECKOUT_SERVICE_ID,
            "checkout-api p99 latency above 2s",
            timedelta(days=3, hours=4),
            timedelta(minutes=15),
            "low",
        ),
        (
            PAYMENTS_SERVICE_ID,
            "payments-api card authorisation failures above 2%",
            timedelta(days=2, hours=1),
            timedelta(minutes=30),
            "high",
        ),
        (CHECKOUT_SERVICE_ID, FIRING_TITLE, timedelta(days=2), timedelta(minutes=38), "high"),
    ]
    for service_id, title, ago, lasted, urgency in past:
        world.add_incident(
            service_id,
            title,
            status="resolved",
            urgency=urgency,
            created_at=ago,
            resolved_after=lasted,
            alert_details=details if title == FIRING_TITLE else None,
        )
    world.add_incident(
        CHECKOUT_SERVICE_ID,
        "checkout-db-0 disk usage above 85%",
        status="acknowledged",
        urgency="low",
        created_at=timedelta(hours=20),
    )
    firing = world.add_incident(
        CHECKOUT_SERVICE_ID,
        FIRING_TITLE,
        incident_id=FIRING_INCIDENT_ID,
        created_at=timedelta(minutes=12),
        priority_id=P1_ID,
        alert_details=details,
    )
    firing["conference_bridge"] = {
        "conference_number": "+1 555-0100,,4242#",
        "conference_url": "https://meet.acme.example/checkout-war-room",
    }
    world.add_alert(
        FIRING_INCIDENT_ID,
        "KubePodCrashLooping checkout-7d9f8b6c5-x2k4q",
        severity="error",
        details={"namespace": "prod", "pod": "checkout-7d9f8b6c5-x2k4q", "reason": "CrashLoopBackOff"},
        created_at=timedelta(minutes=10),
        alert_key="KubePodCrashLooping/prod/checkout-7d9f8b6c5-x2k4q",
    )
    world.add_note(
        FIRING_INCIDENT_ID,
        "Error rate jumped right after the 14:05 checkout deploy.",
        user_id=BOB_ID,
        at=timedelta(minutes=6),
    )
    _seed_changes(world)
    return world


def _seed_changes(world: PagerDutyWorld) -> None:
    """The integrations of both services and the checkout deploys PagerDuty was told about: the one
    at 14:05 the responders suspect, and the previous day's. Seeded last, so that every id drawn
    before keeps its value."""
    world.add_integration(CHECKOUT_SERVICE_ID, "Prometheus Alertmanager", integration_id=CHECKOUT_ALERTS_ID)
    world.add_integration(
        CHECKOUT_SERVICE_ID,
        "GitHub Actions deploys",
        kind="events_api_v2_inbound_integration",
        integration_id=CHECKOUT_CHANGES_ID,
    )
    world.add_integration(PAYMENTS_SERVICE_ID, "Prometheus Alertmanager")
    world.add_change_event(
        CHECKOUT_SERVICE_ID,
        "Deploy checkout-api 2.13.4 to prod",
        at=timedelta(days=1, hours=3),
        integration_id=CHECKOUT_CHANGES_ID,
        custom_details={"version": "2.13.4", "sha": "5e1d0c9a7b3f", "actor": "dana"},
    )
    world.add_change_event(
        CHECKOUT_SERVICE_ID,
        DEPLOY_SUMMARY,
        at=timedelta(minutes=14),
        integration_id=CHECKOUT_CHANGES_ID,
        custom_details={"version": "2.14.0", "sha": "a41f9e2c0d77", "actor": "erin"},
        links=[{"href": "https://github.com/acme/shop/actions/runs/9100000042", "text": "Deploy run"}],
    )
