"""Failed-authentication audit rows are capped per org and window, and the gap is accounted for."""

from __future__ import annotations

from incidentfox.config.audit_limiter import FailureAuditLimiter
from tests.conftest import Api


def test_rows_are_capped_per_org_and_the_next_window_reports_the_gap() -> None:
    now = [0.0]
    limiter = FailureAuditLimiter(per_window=3, window_s=60, clock=lambda: now[0])
    assert [limiter.admit("acme") for _ in range(5)] == [0, 0, 0, None, None]
    assert limiter.admit("globex") == 0, "each org has its own budget"
    now[0] = 61.0
    assert limiter.admit("acme") == 2
    assert limiter.admit("acme") == 0


async def test_a_flood_of_bad_tokens_writes_a_bounded_number_of_audit_rows(api: Api) -> None:
    org_token = await api.create_org("acme")
    forged = "acme." + "A" * 43
    for _ in range(40):
        status, _ = await api.call("GET", "/api/v1/orgs/acme/audit", token=forged)
        assert status == 401
    events = (await api.ok("GET", "/api/v1/orgs/acme/audit?action=auth.failure", token=org_token))["events"]
    assert len(events) == 20
    assert all(e["detail"]["reason"] == "invalid token" for e in events)
