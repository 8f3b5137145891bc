"""The resource tools of the aws toolset: EC2 instances, ECS services and their stopped tasks, an EKS
cluster, RDS instances,
load balancer target health, Lambda functions and CloudTrail's record of who changed what.

Rows that need attention come first (a service running fewer tasks than desired, a target that is not
healthy); long lists are capped with a count of what was left out.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentfox.agents.toolsets import aws_views as views
from incidentfox.agents.toolsets.aws_api import AwsClient, AwsError
from incidentfox.agents.toolsets.aws_cloudwatch import aws_failure, invalid_arguments, time_window
from incidentfox.agents.toolsets.aws_params import (
    EcsParams,
    EksParams,
    InstancesParams,
    LambdaParams,
    RdsParams,
    StoppedTasksParams,
    TargetHealthParams,
    TrailParams,
)
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.prometheus_views import capped, iso

MAX_ROWS = 50
MAX_ECS_SERVICES = 100
MAX_ECS_EVENTS = 5
MAX_STOPPED_TASKS = 100
MAX_NODEGROUPS = 10
MAX_LAMBDA_ERRORS = 50
TRAIL_WINDOW = timedelta(hours=3)


async def ec2_instances(client: AwsClient, params: InstancesParams) -> ToolResult:
    filters = [{"Name": f.name, "Values": f.values} for f in params.filters or []]
    invocation = views.cli(
        "ec2", "describe-instances", client.region, filters=filters or None, instance_ids=params.instance_ids
    )
    query: dict[str, Any] = {"Filters": filters}
    if params.instance_ids:
        query["InstanceIds"] = params.instance_ids
    try:
        found = await client.pages(
            "ec2", "describe_instances", "Reservations", doing="list EC2 instances", limit=500, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, "The instance")
    rows = [views.instance_row(i) for r in found for i in r.get("Instances") or []]
    if not rows:
        return ToolResult.no_data(f"No EC2 instances match in {client.region}.", invocation=invocation)
    rows.sort(key=lambda r: (r["state"] == "running", str(r["name"] or r["id"])))
    data = {"by_state": dict(Counter(str(r["state"]) for r in rows))}
    data = capped(data, "instances", rows, MAX_ROWS, "pass filters such as tag:service to narrow")
    return ToolResult.ok(
        data, invocation=invocation, url=views.console(client.region, "ec2/home", "Instances:")
    )


async def ecs_services(client: AwsClient, params: EcsParams) -> ToolResult:
    invocation = views.cli(
        "ecs", "describe-services", client.region, cluster=params.cluster, services=params.services
    )
    missing = f"The ECS cluster {params.cluster}"
    try:
        names = params.services or await client.pages(
            "ecs",
            "list_services",
            "serviceArns",
            doing="list ECS services",
            limit=MAX_ECS_SERVICES,
            cluster=params.cluster,
        )
        found: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for first in range(0, min(len(names), MAX_ECS_SERVICES), 10):
            answer = await client.call(
                "ecs",
                "describe_services",
                doing="describe ECS services",
                cluster=params.cluster,
                services=names[first : first + 10],
            )
            found.extend(answer.get("services") or [])
            failures.extend(answer.get("failures") or [])
    except AwsError as exc:
        return aws_failure(exc, invocation, missing)
    if not found:
        reason = f"No ECS services in cluster {params.cluster}" if not params.services else "Not found"
        return ToolResult.no_data(f"{reason} ({client.region}).", invocation=invocation)
    rows = [views.ecs_service_row(s, MAX_ECS_EVENTS) for s in found]
    rows.sort(key=lambda r: ((r["running"] or 0) >= (r["desired"] or 0), str(r["name"])))
    degraded = sum(1 for r in rows if (r["running"] or 0) < (r["desired"] or 0))
    data: dict[str, Any] = {"cluster": params.cluster, "services_below_desired": degraded, "services": rows}
    if params.services and failures:
        data["not_found"] = [f.get("arn") for f in failures]
    url = views.console(client.region, f"ecs/v2/clusters/{params.cluster}/services")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def ecs_stopped_tasks(client: AwsClient, params: StoppedTasksParams) -> ToolResult:
    """Why tasks stopped (ECS keeps stopped tasks visible for about an hour): the stop code and reason,
    and each container's exit code and reason, newest first."""
    invocation = views.cli(
        "ecs",
        "list-tasks",
        client.region,
        cluster=params.cluster,
        service_name=params.service,
        desired_status="STOPPED",
    )
    query: dict[str, Any] = {"cluster": params.cluster, "desiredStatus": "STOPPED"}
    if params.service:
        query["serviceName"] = params.service
    try:
        arns = await client.pages(
            "ecs", "list_tasks", "taskArns", doing="list stopped tasks", limit=MAX_STOPPED_TASKS, **query
        )
        found: list[dict[str, Any]] = []
        for first in range(0, min(len(arns), MAX_STOPPED_TASKS), 100):
            answer = await client.call(
                "ecs",
                "describe_tasks",
                doing="describe stopped tasks",
                cluster=params.cluster,
                tasks=arns[first : first + 100],
            )
            found.extend(answer.get("tasks") or [])
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The ECS cluster {params.cluster}")
    if params.service:
        found = [t for t in found if t.get("group") == f"service:{params.service}"]
    if not found:
        of = f" of service {params.service}" if params.service else ""
        return ToolResult.no_data(
            f"No stopped tasks{of} in cluster {params.cluster} ({client.region}); ECS shows stopped tasks "
            "for about an hour after they stop.",
            invocation=invocation,
        )
    rows = sorted(
        (views.stopped_task_row(t) for t in found), key=lambda r: str(r.get("stopped_at") or ""), reverse=True
    )
    exits = Counter(str(c["exit_code"]) for r in rows for c in r.get("containers") or [] if "exit_code" in c)
    data: dict[str, Any] = {
        "cluster": params.cluster,
        "stopped": len(rows),
        "by_reason": dict(Counter(str(r.get("stopped_reason")) for r in rows).most_common(10)),
        "by_exit_code": dict(exits.most_common(10)),
    }
    data = capped(data, "tasks", rows, MAX_ROWS, "newest first; pass service to narrow")
    url = views.console(client.region, f"ecs/v2/clusters/{params.cluster}/tasks")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def eks_cluster(client: AwsClient, params: EksParams) -> ToolResult:
    invocation = views.cli("eks", "describe-cluster", client.region, name=params.name)
    try:
        answer = await client.call(
            "eks", "describe_cluster", doing="describe the EKS cluster", name=params.name
        )
        groups = await client.pages(
            "eks",
            "list_nodegroups",
            "nodegroups",
            doing="list node groups",
            limit=MAX_NODEGROUPS,
            clusterName=params.name,
        )
        described = [
            await client.call(
                "eks",
                "describe_nodegroup",
                doing="describe a node group",
                clusterName=params.name,
                nodegroupName=group,
            )
            for group in groups[:MAX_NODEGROUPS]
        ]
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The EKS cluster {params.name}")
    data = views.eks_cluster_row(answer.get("cluster") or {})
    data["nodegroups"] = [views.nodegroup_row(d.get("nodegroup") or {}) for d in described]
    url = views.console(client.region, "eks/home", f"/clusters/{params.name}")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def rds_instances(client: AwsClient, params: RdsParams) -> ToolResult:
    invocation = views.cli(
        "rds", "describe-db-instances", client.region, db_instance_identifier=params.identifier
    )
    query = {"DBInstanceIdentifier": params.identifier} if params.identifier else {}
    try:
        found = await client.pages(
            "rds", "describe_db_instances", "DBInstances", doing="list RDS instances", limit=200, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The RDS instance {params.identifier}")
    if not found:
        return ToolResult.no_data(f"No RDS instances in {client.region}.", invocation=invocation)
    rows = sorted((views.rds_row(d) for d in found), key=lambda r: (r["status"] == "available", r["id"]))
    data = {"by_status": dict(Counter(str(r["status"]) for r in rows))}
    data = capped(data, "instances", rows, MAX_ROWS, "pass identifier for one")
    return ToolResult.ok(
        data, invocation=invocation, url=views.console(client.region, "rds/home", "databases:")
    )


async def _target_groups(client: AwsClient, params: TargetHealthParams) -> list[dict[str, Any]]:
    if params.load_balancer:
        balancers = await client.call(
            "elbv2", "describe_load_balancers", doing="find the load balancer", Names=[params.load_balancer]
        )
        arn = balancers["LoadBalancers"][0]["LoadBalancerArn"]
        answer = await client.call(
            "elbv2", "describe_target_groups", doing="list its target groups", LoadBalancerArn=arn
        )
    else:
        group = str(params.target_group)
        key = "TargetGroupArns" if group.startswith("arn:") else "Names"
        answer = await client.call(
            "elbv2", "describe_target_groups", doing="find the target group", **{key: [group]}
        )
    groups: list[dict[str, Any]] = answer.get("TargetGroups") or []
    return groups


async def elb_target_health(client: AwsClient, params: TargetHealthParams) -> ToolResult:
    if not params.target_group and not params.load_balancer:
        return ToolResult.failed("Give target_group (ARN or name) or load_balancer (name).")
    invocation = views.cli(
        "elbv2",
        "describe-target-health",
        client.region,
        target_group_arn=params.target_group,
        load_balancer=params.load_balancer,
    )
    try:
        groups = await _target_groups(client, params)
        results = []
        for group in groups[:10]:
            answer = await client.call(
                "elbv2",
                "describe_target_health",
                doing="read target health",
                TargetGroupArn=group["TargetGroupArn"],
            )
            rows, states = views.target_rows(answer.get("TargetHealthDescriptions") or [])
            results.append(
                {"target_group": group.get("TargetGroupName"), "by_state": states, "targets": rows}
            )
    except AwsError as exc:
        return aws_failure(
            exc, invocation, f"The {'load balancer' if params.load_balancer else 'target group'}"
        )
    if not any(r["targets"] for r in results):
        return ToolResult.no_data("No targets are registered.", invocation=invocation)
    url = views.console(client.region, "ec2/home", "TargetGroups:")
    return ToolResult.ok({"target_groups": results}, invocation=invocation, url=url)


async def lambda_functions(client: AwsClient, params: LambdaParams) -> ToolResult:
    invocation = views.cli("lambda", "list-functions", client.region)
    try:
        found = await client.pages(
            "lambda", "list_functions", "Functions", doing="list functions", limit=2000
        )
    except AwsError as exc:
        return aws_failure(exc, invocation)
    rows = [views.lambda_row(f) for f in found if str(f.get("FunctionName")).startswith(params.prefix or "")]
    if not rows:
        which = f" starting with {params.prefix}" if params.prefix else ""
        return ToolResult.no_data(f"No Lambda functions{which} in {client.region}.", invocation=invocation)
    rows.sort(key=lambda r: str(r["last_modified"]), reverse=True)
    data = capped({"count": len(rows)}, "functions", rows, MAX_ROWS, "most recently changed first")
    data["errors_note"] = await _add_errors(client, data["functions"][:MAX_LAMBDA_ERRORS])
    url = views.console(client.region, "lambda/home", "/functions")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def _add_errors(client: AwsClient, rows: list[dict[str, Any]]) -> str:
    """Each function's ``Errors`` in the last hour, in one GetMetricData call; if that is not allowed the
    rows are returned without them and the note says why."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    queries = [
        {
            "Id": f"e{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "FunctionName", "Value": row["name"]}],
                },
                "Period": 3600,
                "Stat": "Sum",
            },
        }
        for i, row in enumerate(rows)
    ]
    try:
        answer = await client.call(
            "cloudwatch",
            "get_metric_data",
            doing="read the functions' errors",
            MetricDataQueries=queries,
            StartTime=end - timedelta(hours=1),
            EndTime=end,
        )
    except AwsError as exc:
        return f"Errors in the last hour are not shown: {exc}"
    sums = {r["Id"]: sum(r.get("Values") or []) for r in answer.get("MetricDataResults") or []}
    for i, row in enumerate(rows):
        row["errors_last_hour"] = int(sums.get(f"e{i}", 0))
    return "errors_last_hour is the Sum of AWS/Lambda Errors over the hour before now."


async def cloudtrail_events(client: AwsClient, params: TrailParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end, TRAIL_WINDOW)
    except ValueError as exc:
        return invalid_arguments(exc)
    attribute: dict[str, str] | None = None
    if params.event_name:
        attribute = {"AttributeKey": "EventName", "AttributeValue": params.event_name}
    elif params.resource_name:
        attribute = {"AttributeKey": "ResourceName", "AttributeValue": params.resource_name}
    elif not params.include_read_only:
        attribute = {"AttributeKey": "ReadOnly", "AttributeValue": "false"}
    invocation = views.cli(
        "cloudtrail",
        "lookup-events",
        client.region,
        lookup_attributes=[attribute] if attribute else None,
        start_time=iso(start),
        end_time=iso(end),
    )
    query: dict[str, Any] = {"StartTime": start, "EndTime": end}
    if attribute:
        query["LookupAttributes"] = [attribute]
    try:
        found = await client.pages(
            "cloudtrail", "lookup_events", "Events", doing="look up CloudTrail events", limit=200, **query
        )
    except AwsError as exc:
        return aws_failure(exc, invocation)
    rows = [views.trail_row(e) for e in found]
    if params.resource_name and params.event_name:
        rows = [r for r in rows if any(params.resource_name in res for res in r["resources"])]
    if not params.include_read_only and not params.event_name:
        rows = [r for r in rows if str(r.get("read_only")).lower() != "true"]
    if not rows:
        return ToolResult.no_data(
            f"CloudTrail has no matching management events between {iso(start)} and {iso(end)}.",
            invocation=invocation,
        )
    data = {"by_event": dict(Counter(str(r["event"]) for r in rows).most_common(20))}
    data = capped(data, "events", rows, MAX_ROWS, "newest first; pass event_name or resource_name")
    url = views.console(client.region, "cloudtrailv2/home", "/events")
    return ToolResult.ok(data, invocation=invocation, url=url)
