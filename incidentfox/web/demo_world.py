"""The demo's sample data outside the cluster: the PagerDuty account and the GitHub repositories.

They tell the same story as the cluster (``emulators/scenarios/demo.yaml``): pull request #482 of
``demo-shop/payments-api`` ("Load PSP credentials from the payments-psp-v2 secret") was merged 22
minutes ago and deployed as 2.8.0. It switched the deployment to ``envFrom: payments-psp-v2``, whose
key is ``api_key``, so ``PSP_API_KEY`` is gone and every payments-api pod exits on its first charge.
The Deploy workflow's "Wait for rollout" step failed on it; PagerDuty pages the payments on-call
because checkout's order success rate dropped. Every name says it is a demo.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.github_actions import JobSpec, StepSpec
from incidentfox.emulators.github_models import ChangedFile, WorkflowRun
from incidentfox.emulators.pagerduty_world import Obj, PagerDutyWorld

PAGERDUTY_SERVICE_ID = "PDEMOPA"
PAGERDUTY_POLICY_ID = "PDEMOEP"
PAGERDUTY_FROM_EMAIL = "incidentfox@demo-shop.example"
PAGERDUTY_WEB_URL = "https://demo-shop.pagerduty.example"
PAGE_TITLE = "checkout order success rate below 95% (payments step failing)"
PAYMENTS_REPO = "demo-shop/payments-api"
CHECKOUT_REPO = "demo-shop/checkout"
GITHUB_WEB_URL = "https://github.demo-shop.example"
DEPLOY_WORKFLOW = "Deploy"
DEPLOY_ERROR = 'error: deployment "payments-api" exceeded its progress deadline'

_PRIYA, _JONAS, _DANA, _BOT = "PDEMOU1", "PDEMOU2", "PDEMOU3", "PDEMOU9"
_PRIMARY, _SECONDARY = "PDEMOS1", "PDEMOS2"
_P1 = "PDEMOP1"

_DEPLOYMENT_BEFORE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments-api
  namespace: payments
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: payments-api
          image: registry.demo-shop.example/payments/payments-api:2.7.3
          env:
            - name: LEDGER_HOST
              value: ledger.payments:5432
            - name: PSP_API_KEY
              valueFrom:
                secretKeyRef:
                  name: payments-psp
                  key: api-key
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
"""
_DEPLOYMENT_AFTER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments-api
  namespace: payments
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: payments-api
          image: registry.demo-shop.example/payments/payments-api:2.8.0
          env:
            - name: LEDGER_HOST
              value: ledger.payments:5432
          envFrom:
            - secretRef:
                name: payments-psp-v2
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
"""
_PSP_CLIENT = """\
package psp

// NewFromEnv builds the PSP client on the first charge; the key is read lazily.
func NewFromEnv() (*Client, error) {
\tkey := os.Getenv("PSP_API_KEY")
\tif key == "" {
\t\treturn nil, errors.New("environment variable PSP_API_KEY is missing")
\t}
\treturn &Client{key: key, baseURL: os.Getenv("PSP_BASE_URL")}, nil
}
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def pagerduty_world() -> PagerDutyWorld:
    """The demo PagerDuty account: the payments on-call, the ``payments-api (demo)`` service and its
    recent history (the same page three weeks ago, a PSP outage, a latency blip)."""
    world = PagerDutyWorld()
    now = world.now
    world.add_user("Priya Raman (demo)", "priya@demo-shop.example", user_id=_PRIYA)
    world.add_user("Jonas Weber (demo)", "jonas@demo-shop.example", user_id=_JONAS)
    world.add_user("Dana Okafor (demo)", "dana@demo-shop.example", user_id=_DANA)
    world.add_user("IncidentFox", PAGERDUTY_FROM_EMAIL, user_id=_BOT)
    world.add_team("Payments (demo)", team_id="PDEMOT1")
    world.add_priority("P1", priority_id=_P1)
    world.add_priority("P3", priority_id="PDEMOP3")
    world.add_schedule("Payments primary (demo)", schedule_id=_PRIMARY)
    world.add_schedule("Payments secondary (demo)", schedule_id=_SECONDARY)
    world.add_escalation_policy(
        "Payments on-call (demo)",
        policy_id=PAGERDUTY_POLICY_ID,
        levels=[[_PRIMARY], [_SECONDARY]],
        team_ids=["PDEMOT1"],
    )
    world.add_service(
        "payments-api (demo)",
        PAGERDUTY_POLICY_ID,
        service_id=PAGERDUTY_SERVICE_ID,
        description="Demo service (sample data): card payments behind checkout, namespace payments.",
        team_ids=["PDEMOT1"],
    )
    start, end = now - timedelta(days=3), now + timedelta(days=4)
    world.add_oncall(_PRIYA, PAGERDUTY_POLICY_ID, schedule_id=_PRIMARY, start=start, end=end)
    world.add_oncall(_JONAS, PAGERDUTY_POLICY_ID, level=2, schedule_id=_SECONDARY, start=start, end=end)
    world.add_oncall(
        _JONAS, PAGERDUTY_POLICY_ID, schedule_id=_PRIMARY, start=end, end=end + timedelta(days=7)
    )
    history: list[tuple[str, timedelta, timedelta, str, str | None]] = [
        (PAGE_TITLE, timedelta(days=23), timedelta(minutes=41), "high", "Rolled back payments-api 2.6.0."),
        ("ledger-0 replication lag above 30s", timedelta(days=16), timedelta(minutes=50), "low", None),
        (
            "payments-api 5xx rate above 2%",
            timedelta(days=9),
            timedelta(minutes=26),
            "high",
            "PSP sandbox outage upstream; nothing to do on our side.",
        ),
        ("payments-api p99 latency above 800ms", timedelta(days=4), timedelta(minutes=12), "low", None),
    ]
    for title, ago, lasted, urgency, note in history:
        incident = world.add_incident(
            PAGERDUTY_SERVICE_ID,
            title,
            status="resolved",
            urgency=urgency,
            created_at=ago,
            resolved_after=lasted,
        )
        if note:
            world.add_note(incident["id"], note, user_id=_PRIYA, at=ago - lasted / 2)
    return world


def add_page(world: PagerDutyWorld) -> Obj:
    """A new triggered incident for the order-success alert, created now, with its two alerts."""
    now = _now()
    details = {"namespace": "shop", "service": "checkout", "success_rate": "71.4%", "threshold": "95%"}
    incident = world.add_incident(
        PAGERDUTY_SERVICE_ID,
        PAGE_TITLE,
        created_at=now,
        priority_id=_P1,
        alert_details=details,
    )
    world.add_alert(
        incident["id"],
        "KubeDeploymentReplicasMismatch payments/payments-api (0 of 3 available)",
        severity="error",
        details={"namespace": "payments", "deployment": "payments-api", "available": "0", "desired": "3"},
        created_at=now,
    )
    return incident


def seed_github(gh: GitHubEmulator) -> None:
    """The two demo repositories: checkout (quiet), and payments-api with the pull request that
    dropped ``PSP_API_KEY``, merged 22 minutes ago, and the Deploy run that failed on it. Both can be
    cloned too (git over HTTP), so the SRE agent gets a checkout."""
    now = _now()
    gh.add_repo(
        CHECKOUT_REPO,
        description="Demo repository (sample data): the checkout service.",
        files={"README.md": "# checkout (demo)\n\nOrders and the payment step.\n"},
    )
    gh.add_commit(
        CHECKOUT_REPO,
        "Retry the payment step once on connection errors",
        author="jonas-demo",
        date=now - timedelta(days=3, hours=2),
        files={"internal/payments/client.go": "// retries once on ECONNREFUSED\n"},
    )
    gh.add_repo(
        PAYMENTS_REPO,
        description="Demo repository (sample data): the payments API.",
        files={
            "README.md": "# payments-api (demo)\n\nCard payments for checkout.\n",
            "deploy/kubernetes/deployment.yaml": _DEPLOYMENT_BEFORE,
            "internal/psp/client.go": _PSP_CLIENT,
        },
    )
    gh.add_commit(
        PAYMENTS_REPO,
        "Bump the fraud-scorer client to 1.4.0",
        author="priya-demo",
        date=now - timedelta(days=2, hours=5),
        files={"go.sum": "demo-shop/fraud-client v1.4.0 h1:demo\n"},
    )
    gh.add_pull_request(
        PAYMENTS_REPO,
        "Load PSP credentials from the payments-psp-v2 secret",
        head="psp-secret-v2",
        author="dana-demo",
        body="The PSP key moved to the new secret `payments-psp-v2`; load it with `envFrom`.",
        files=[
            ChangedFile.between("deploy/kubernetes/deployment.yaml", _DEPLOYMENT_BEFORE, _DEPLOYMENT_AFTER)
        ],
        created_at=now - timedelta(hours=3),
        merged_at=now - timedelta(minutes=22),
        merged_by="priya-demo",
    )
    add_failed_deploy(gh, started_at=now - timedelta(minutes=20))
    for name in (CHECKOUT_REPO, PAYMENTS_REPO):
        repo = gh.repo(name)
        if repo is not None:
            gh.seed_git_repo(name, repo.tree(repo.resolve(repo.default_branch)))


def add_failed_deploy(gh: GitHubEmulator, *, started_at: datetime | None = None) -> WorkflowRun:
    """A run of the Deploy workflow on payments-api's main that fails waiting for the rollout."""
    waiting = 'Waiting for deployment "payments-api" rollout to finish:'
    rollout = [
        f"{waiting} 1 out of 3 new replicas have been updated...",
        f"{waiting} 2 out of 3 new replicas have been updated...",
        f"{waiting} 0 of 3 updated replicas are available...",
        "NAME                            READY   STATUS             RESTARTS      AGE",
        "payments-api-6d8f7b9c4-k2x7p    0/1     CrashLoopBackOff   5 (40s ago)   10m",
        DEPLOY_ERROR,
    ]
    steps = [
        StepSpec("Checkout", command="actions/checkout@v4"),
        StepSpec(
            "Render manifests",
            output=["rendered deploy/kubernetes for payments-api:2.8.0"],
            command="make render IMAGE_TAG=2.8.0",
        ),
        StepSpec(
            "Apply",
            output=["deployment.apps/payments-api configured", "service/payments-api unchanged"],
            command="kubectl apply -n payments -f build/",
        ),
        StepSpec(
            "Wait for rollout",
            "failure",
            output=rollout,
            command="kubectl -n payments rollout status deployment/payments-api --timeout=10m",
            seconds=600,
        ),
        StepSpec("Smoke test", command="make smoke"),
    ]
    return gh.add_workflow_run(
        PAYMENTS_REPO,
        jobs=[JobSpec("deploy (production)", steps)],
        name=DEPLOY_WORKFLOW,
        path=".github/workflows/deploy.yml",
        head_branch="main",
        event="push",
        actor="priya-demo",
        started_at=started_at or _now() - timedelta(minutes=11),
    )
