"""The aws toolset against a real moto server seeded with a checkout incident (``tests/moto_server.py``):
what each tool reports, that a metric never has more than 100 points, that only the team's explicit
credentials are used (never the host's environment), and how it fails in plain words. CloudTrail and
scaling activities (which moto lacks) and AWS' error answers (access denied, throttling, rejected keys,
a slow endpoint) come from a tiny aiohttp endpoint."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ToolEnd
from incidentfox.agents.toolsets import aws
from incidentfox.agents.toolsets.aws_api import AwsClient, AwsNotConfigured, connect
from incidentfox.agents.toolsets.aws_cloudwatch import MAX_POINTS, choose_period
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.egress import EgressPolicy, install_policy
from tests import moto_server
from tests.moto_server import KEY_ID, LB_DIMENSION, LOG_GROUP, REGION, SECRET, MotoAccount, running_moto
from tests.toolset_calls import run_tool


@pytest.fixture(scope="module")
def account() -> Iterator[MotoAccount]:
    with running_moto() as seeded:
        yield seeded


@pytest.fixture
async def client(account: MotoAccount) -> AsyncIterator[AwsClient]:
    connected = await connect(account.config())
    yield connected
    connected.close()


async def _run(client: AwsClient, tool_name: str, /, **args: Any) -> ToolResult:
    return await run_tool(aws.AWS, client, tool_name, **args)


async def test_alarms_in_alarm_come_with_their_reason_metric_and_threshold(client: AwsClient) -> None:
    result = await _run(client, "cloudwatch_alarms")
    assert result.status == "ok", result
    [alarm] = result.data["alarms"]
    assert alarm["name"] == "checkout-5xx" and alarm["state"] == "ALARM"
    assert alarm["reason"].startswith("Threshold Crossed: 3 datapoints [212.0")
    assert alarm["metric"] == "HTTPCode_Target_5XX_Count" and alarm["threshold"] == 50.0
    assert alarm["dimensions"] == {"LoadBalancer": LB_DIMENSION}
    assert alarm["since"].endswith("Z")
    assert result.invocation == f"aws cloudwatch describe-alarms --state-value ALARM --region {REGION}"
    assert result.url == f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#alarmsV2:"
    every = await _run(client, "cloudwatch_alarms", state=None)
    assert every.data["by_state"] == {"ALARM": 1, "OK": 1}
    none = await _run(client, "cloudwatch_alarms", state="INSUFFICIENT_DATA")
    assert none.status == "no_data" and "No CloudWatch alarms in state INSUFFICIENT_DATA" in none.data


async def test_a_metric_is_summarised_with_at_most_100_points(client: AwsClient) -> None:
    dimensions = [{"name": "LoadBalancer", "value": LB_DIMENSION}]
    args = {
        "namespace": "AWS/ApplicationELB",
        "metric": "HTTPCode_Target_5XX_Count",
        "dimensions": dimensions,
    }
    result = await _run(client, "cloudwatch_metric", **args, stat="Sum")
    assert result.status == "ok", result
    assert (result.data["min"], result.data["max"], result.data["last"]) == (2.0, 200.0, 200.0)
    assert result.data["points"] == 12 and result.data["period"] == "1m"
    assert "--statistics Sum" in result.invocation and "Name=LoadBalancer" in result.invocation
    day = await _run(client, "cloudwatch_metric", **args, stat="Sum", start="-24h", period=60)
    assert day.data["period"] == "15m" and "Period raised from 60s to 900s" in day.data["period_note"]
    assert day.data["points"] <= MAX_POINTS
    for span_s in (3600, 6 * 3600, 86400, 14 * 86400):
        period = choose_period(span_s, None)
        assert period % 60 == 0 and span_s / period + 1 <= MAX_POINTS, (span_s, period)
    wrong = await _run(client, "cloudwatch_metric", **{**args, "metric": "HTTPCode_Target_4XX_Count"})
    assert wrong.status == "no_data" and "matches dimensions exactly" in wrong.data


async def test_logs_insights_runs_the_query_until_complete(client: AwsClient) -> None:
    query = "fields @timestamp, @message | sort @timestamp desc | limit 3"
    result = await _run(client, "cloudwatch_logs_insights", log_group=LOG_GROUP, query=query)
    assert result.status == "ok", result
    assert [row["@message"] for row in result.data["rows"]] == [
        "POST /checkout 502 5003ms",
        "ERROR payment gateway timeout after 5000ms order=8813",
        "GET /cart 200 14ms",
    ]
    assert result.invocation.startswith("aws logs start-query --log-group-name /ecs/checkout")
    assert result.url is not None and "log-group/$252Fecs$252Fcheckout" in result.url
    missing = await _run(client, "cloudwatch_logs_insights", log_group="/ecs/gone", query=query)
    assert missing.error is not None and missing.error.startswith("The log group /ecs/gone was not found in")


async def test_logs_filter_returns_matching_lines_oldest_first(client: AwsClient) -> None:
    result = await _run(client, "cloudwatch_logs_filter", log_group=LOG_GROUP, pattern="ERROR")
    assert result.status == "ok", result
    assert result.data["lines"] == 2
    assert [e["message"] for e in result.data["events"]] == [
        "ERROR payment gateway timeout after 5000ms order=8812",
        "ERROR payment gateway timeout after 5000ms order=8813",
    ]
    assert result.data["events"][0]["stream"] == "checkout/app/1"
    quiet = await _run(client, "cloudwatch_logs_filter", log_group=LOG_GROUP, pattern="OOMKilled")
    assert quiet.status == "no_data" and "No events matching 'OOMKilled'" in quiet.data


async def test_ecs_service_below_desired_shows_its_deployment(client: AwsClient) -> None:
    result = await _run(client, "ecs_services", cluster="prod")
    assert result.status == "ok", result
    assert result.data["services_below_desired"] == 1
    [service] = result.data["services"]
    assert (service["name"], service["desired"], service["running"]) == ("checkout", 3, 0)
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["task_definition"] == "checkout:1"
    missing = await _run(client, "ecs_services", cluster="staging")
    assert missing.error is not None
    assert missing.error.startswith(f"The ECS cluster staging was not found in {REGION}")
    assert "ClusterNotFoundException" in missing.error


async def test_target_health_puts_the_stopped_instance_first(account: MotoAccount, client: AwsClient) -> None:
    result = await _run(client, "elb_target_health", load_balancer="checkout-alb")
    assert result.status == "ok", result
    [group] = result.data["target_groups"]
    assert group["by_state"] == {"unused": 1, "healthy": 1}
    first, second = group["targets"]
    assert first["target"] == account.stopped_instance
    assert (first["reason"], first["description"]) == (
        "Target.InvalidState",
        "Target is in the stopped state",
    )
    assert second == {"target": account.running_instance, "port": 8080, "state": "healthy"}
    by_arn = await _run(client, "elb_target_health", target_group=account.target_group_arn)
    assert by_arn.data == result.data
    neither = await _run(client, "elb_target_health")
    assert neither.error == "Give target_group (ARN or name) or load_balancer (name)."
    gone = await _run(client, "elb_target_health", load_balancer="old-alb")
    assert gone.error is not None and gone.error.startswith("The load balancer was not found")


async def test_ec2_rds_eks_and_lambda_describe_what_exists(account: MotoAccount, client: AwsClient) -> None:
    filters = [{"name": "tag:service", "values": ["checkout"]}]
    instances = await _run(client, "ec2_instances", filters=filters)
    assert instances.data["by_state"] == {"stopped": 1, "running": 1}
    assert instances.data["instances"][0]["name"] == "checkout-2", "instances not running come first"
    assert instances.data["instances"][0]["state_reason"].startswith("Client.UserInitiatedShutdown")
    assert '--filters \'[{"Name":"tag:service","Values":["checkout"]}]\'' in instances.invocation
    [db] = (await _run(client, "rds_instances")).data["instances"]
    assert (db["id"], db["status"], db["engine"].split()[0]) == ("orders-db", "available", "postgres")
    cluster = await _run(client, "eks_cluster", name="prod-eks")
    assert (cluster.data["status"], cluster.data["version"]) == ("ACTIVE", "1.31")
    assert cluster.data["nodegroups"][0]["name"] == "general"
    assert (await _run(client, "eks_cluster", name="dev")).error is not None
    functions = await _run(client, "lambda_functions", prefix="checkout")
    [function] = functions.data["functions"]
    assert (function["name"], function["runtime"], function["errors_last_hour"]) == (
        "checkout-webhook",
        "python3.12",
        0,
    )
    assert (await _run(client, "lambda_functions", prefix="billing")).status == "no_data"


async def test_log_groups_are_found_by_prefix_or_a_word_with_their_retention(client: AwsClient) -> None:
    result = await _run(client, "cloudwatch_log_groups", prefix=None, contains="CHECKOUT")
    assert result.status == "ok", result
    assert [g["name"] for g in result.data["log_groups"]] == ["/aws/lambda/checkout-webhook", LOG_GROUP]
    lambda_group, ecs_group = result.data["log_groups"]
    assert lambda_group["retention"] == "14 days" and ecs_group["retention"] == "never expires"
    assert ecs_group["created"].endswith("Z") and "stored_mb" in ecs_group
    assert result.invocation == f"aws logs describe-log-groups --region {REGION}"
    rds = await _run(client, "cloudwatch_log_groups", prefix="/aws/rds/")
    assert [g["name"] for g in rds.data["log_groups"]] == ["/aws/rds/instance/orders-db/postgresql"]
    assert "--log-group-name-prefix /aws/rds/" in rds.invocation
    none = await _run(client, "cloudwatch_log_groups", prefix="/ecs/", contains="billing")
    assert none.status == "no_data"
    assert none.data == f"No log groups starting with /ecs/ containing 'billing' in {REGION}."


async def test_stopped_tasks_say_why_the_service_lost_them(client: AwsClient) -> None:
    result = await _run(client, "ecs_stopped_tasks", cluster="prod", service="checkout")
    assert result.status == "ok", result
    assert result.data["stopped"] == 2
    assert result.data["by_reason"] == {
        "Essential container in task exited": 1,
        "Task failed ELB health checks in (target-group checkout-tg)": 1,
    }
    assert result.data["by_exit_code"] == {"0": 2}
    task = result.data["tasks"][0]
    assert task["group"] == "service:checkout" and task["task_definition"] == "checkout:1"
    assert task["containers"][0]["name"] == "app" and task["containers"][0]["exit_code"] == 0
    assert result.invocation == (
        "aws ecs list-tasks --cluster prod --service-name checkout --desired-status STOPPED "
        f"--region {REGION}"
    )
    cluster = await _run(client, "ecs_stopped_tasks", cluster="prod", service=None)
    assert cluster.data["stopped"] == 3 and "Scheduled migration finished" in cluster.data["by_reason"]
    quiet = await _run(client, "ecs_stopped_tasks", cluster="prod", service="cart")
    assert quiet.status == "no_data" and "No stopped tasks of service cart in cluster prod" in quiet.data
    missing = await _run(client, "ecs_stopped_tasks", cluster="staging", service=None)
    assert missing.error is not None and missing.error.startswith("The ECS cluster staging was not found")


async def test_rds_events_of_an_instance_over_a_window(client: AwsClient) -> None:
    result = await _run(client, "rds_events", identifier="orders-db")
    assert result.status == "ok", result
    created, *backups = reversed(result.data["events"])
    assert (created["message"], created["categories"], created["source"]) == (
        "DB instance created",
        ["creation"],
        "orders-db",
    )
    assert [e["message"] for e in backups] == ["Backing up DB instance", "Finished DB instance backup"]
    assert all(e["at"].endswith("Z") for e in result.data["events"])
    assert result.data["by_category"] == {"backup": 2, "creation": 1} and result.data["needs_attention"] == 0
    assert "--source-type db-instance --source-identifier orders-db" in result.invocation
    before = await _run(client, "rds_events", identifier="orders-db", start="-72h", end="-48h")
    assert before.status == "no_data" and "No RDS events for orders-db between" in before.data
    unknown = await _run(client, "rds_events", identifier="ghost-db")
    assert unknown.status == "no_data" and "check the identifier with rds_instances" in unknown.data
    backwards = await _run(client, "rds_events", identifier="orders-db", start="-1h", end="-2h")
    assert backwards.error is not None and backwards.error.startswith("Start (")


async def test_queue_depth_shows_the_backlog_and_the_age_of_its_oldest_message(client: AwsClient) -> None:
    result = await _run(client, "sqs_queue_depth", queues=None, prefix="checkout")
    assert result.status == "ok", result
    jobs, dead = result.data["queues"]
    assert (jobs["queue"], jobs["visible"], jobs["in_flight"]) == ("checkout-jobs", 3, 2)
    assert (jobs["dead_letter_queue"], jobs["max_receive_count"]) == ("checkout-jobs-dlq", 5)
    assert jobs["visibility_timeout_s"] == 300 and jobs["oldest_message_age_s"] == 840.0
    assert (dead["queue"], dead["visible"]) == ("checkout-jobs-dlq", 0) and "oldest_message_age_s" not in dead
    assert "ApproximateAgeOfOldestMessage" in result.data["metrics_note"]
    assert result.invocation == f"aws sqs list-queues --queue-name-prefix checkout --region {REGION}"
    named = await _run(client, "sqs_queue_depth", queues=["billing-events", "gone-queue"])
    assert [q["queue"] for q in named.data["queues"]] == ["billing-events"]
    assert named.data["not_found"] == ["gone-queue"]
    assert "--queue-url billing-events,gone-queue" in named.invocation
    missing = await _run(client, "sqs_queue_depth", queues=["gone-queue"])
    assert missing.error == (
        f"No queue named gone-queue in {REGION}; call sqs_queue_depth with a prefix to see which queues "
        "exist."
    )
    nothing = await _run(client, "sqs_queue_depth", queues=None, prefix="payments")
    assert (
        nothing.status == "no_data" and nothing.data == f"No SQS queues starting with payments in {REGION}."
    )


async def test_dynamodb_table_shows_capacity_mode_and_throttled_writes(client: AwsClient) -> None:
    result = await _run(client, "dynamodb_table", table="orders")
    assert result.status == "ok", result
    assert (result.data["name"], result.data["status"], result.data["billing_mode"]) == (
        "orders",
        "ACTIVE",
        "PAY_PER_REQUEST",
    )
    assert "read_capacity" not in result.data, "on-demand tables have no provisioned capacity"
    metrics = result.data["metrics"]
    assert metrics["write_throttle_events"] == {"sum": 42.0, "peak_per_period": 30.0}
    assert "read_throttle_events" not in metrics and metrics["period"] == "1m"
    assert result.invocation == f"aws dynamodb describe-table --table-name orders --region {REGION}"
    earlier = await _run(client, "dynamodb_table", table="orders", start="-6h", end="-2h")
    assert earlier.status == "ok" and set(earlier.data["metrics"]) == {"start", "end", "period"}
    missing = await _run(client, "dynamodb_table", table="ghost")
    assert missing.error is not None and missing.error.startswith("The DynamoDB table ghost was not found")
    assert "ResourceNotFoundException" in missing.error


async def test_an_auto_scaling_group_shows_its_size_and_instance_health(client: AwsClient) -> None:
    result = await _run(client, "autoscaling_activities", group="checkout-asg")
    assert result.status == "ok", result
    group = result.data["group"]
    assert (group["min"], group["desired"], group["max"], group["instances"]) == (2, 3, 6, 3)
    assert group["by_health"] == {"Unhealthy": 1, "Healthy": 2}
    assert result.data["activities"] == [] and "No scaling activities are recorded" in result.data["note"]
    assert result.invocation == (
        "aws autoscaling describe-scaling-activities --auto-scaling-group-name checkout-asg "
        f"--region {REGION}"
    )
    missing = await _run(client, "autoscaling_activities", group="billing-asg")
    assert missing.error is not None
    assert missing.error.startswith(f"There is no Auto Scaling group named billing-asg in {REGION};")


async def test_health_names_the_account_and_assuming_a_role_works(account: MotoAccount) -> None:
    healthy = await aws.health(account.config())
    assert healthy.healthy and healthy.reason == "account 123456789012"
    role = "arn:aws:iam::123456789012:role/incidentfox-readonly"
    assumed = await connect(account.config(role_arn=role))
    try:
        keys = assumed.session.get_credentials()
        assert keys is not None and keys.access_key != KEY_ID and keys.token
        identity = await assumed.call("sts", "get_caller_identity", doing="check")
    finally:
        assumed.close()
    assert identity["Arn"].endswith(":assumed-role/incidentfox-readonly/incidentfox")
    assert (await aws.health({})).configured is False


async def test_the_hosts_own_aws_identity_is_never_used(
    account: MotoAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\nendpoint_url = http://169.254.169.254\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTKEY000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    monkeypatch.setenv("AWS_PROFILE", "ghost")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://169.254.169.254")
    with pytest.raises(AwsNotConfigured, match="access_key_id \\+ secret_access_key"):
        await connect({"integrations": {"aws": {"region": REGION}}})
    connected = await connect(account.config())
    try:
        keys = connected.session.get_credentials()
        assert keys is not None and keys.access_key == KEY_ID
        identity = await connected.call("sts", "get_caller_identity", doing="check")
    finally:
        connected.close()
    assert identity["Account"] == "123456789012"


async def test_endpoint_url_passes_the_egress_policy(account: MotoAccount) -> None:
    with pytest.raises(AwsNotConfigured, match="cloud metadata"):
        await connect(account.config(endpoint_url="http://169.254.169.254"))
    with pytest.raises(AwsNotConfigured, match="turned off"):
        await connect(account.config(enabled=False))
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(AwsNotConfigured, match="private or loopback"):
        await connect(account.config())
    install_policy(EgressPolicy(allow_private=True))
    connected = await connect(account.config())
    connected.private_allowed = False
    try:
        refused = await _run(connected, "rds_instances")
    finally:
        connected.close()
    assert refused.error is not None and refused.error.startswith("Refused to list RDS instances:")


async def test_through_the_adapter_a_secret_in_a_tag_never_reaches_the_model(account: MotoAccount) -> None:
    events: list[Any] = []
    ctx = InvestigationContext(
        run_id="r", org_id="o", team_node_id="t", config=account.config(), emit=events.append
    )
    tools = {t.name: t for t in toolset_function_tools(aws.AWS, agent="cloud")}
    raw = json.dumps({"filters": None, "instance_ids": None})
    context = ToolContext(ctx, tool_name="ec2_instances", tool_call_id="c1", tool_arguments=raw)
    out = await tools["ec2_instances"].on_invoke_tool(context, raw)
    assert SECRET not in out
    answer = json.loads(out)
    assert answer["status"] == "ok"
    leaked = next(i for i in answer["data"]["instances"] if "DB_PASSWORD" in i["tags"])
    assert leaked["tags"]["DB_PASSWORD"] == "[REDACTED]"
    [end] = [e for e in events if isinstance(e, ToolEnd)]
    assert "1 secret scrubbed" in end.summary
    client = ctx.clients["aws"]
    await close_clients(ctx)
    assert client._clients == {}


def test_every_tool_has_a_strict_schema_for_the_model() -> None:
    tools = toolset_function_tools(aws.AWS, agent="cloud")
    assert [t.name for t in tools] == [
        "cloudwatch_alarms",
        "cloudwatch_metric",
        "cloudwatch_logs_insights",
        "cloudwatch_logs_filter",
        "cloudtrail_events",
        "ecs_services",
        "elb_target_health",
        "rds_instances",
        "ec2_instances",
        "eks_cluster",
        "lambda_functions",
        "cloudwatch_log_groups",
        "ecs_stopped_tasks",
        "rds_events",
        "sqs_queue_depth",
        "dynamodb_table",
        "autoscaling_activities",
    ]
    assert all(t.strict_json_schema for t in tools)
    assert aws.AWS.missing_prerequisites({}) == ["integrations.aws.region", "integrations.aws.access_key_id"]


def test_without_moto_the_tests_skip_unless_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)
    monkeypatch.delenv("INCIDENTFOX_REQUIRE_MOTO", raising=False)
    with pytest.raises(pytest.skip.Exception, match="moto\\[server\\] is not installed"):
        moto_server.require_moto()
    monkeypatch.setenv("INCIDENTFOX_REQUIRE_MOTO", "1")
    with pytest.raises(pytest.fail.Exception, match="INCIDENTFOX_REQUIRE_MOTO=1"):
        moto_server.require_moto()
