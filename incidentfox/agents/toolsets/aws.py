"""The aws toolset: CloudWatch alarms, metrics and logs, EC2, ECS, EKS, RDS, load balancer target
health, Auto Scaling, Lambda, SQS, DynamoDB and CloudTrail (who changed what), read-only, with boto3.

Every tool takes the run's ``AwsClient`` (``aws_api.connect``: the team's explicit credentials, never
the host's) and returns a compact ``ToolResult`` (rows from ``aws_views``) with the equivalent ``aws``
CLI command as ``invocation`` and the console page as ``url``. Failures are one plain sentence
(``aws_api.describe_error``): which IAM permission is missing, that AWS throttled, that the credentials
were rejected, that a resource does not exist. An empty answer is ``no_data``. The tools live in
``aws_cloudwatch``, ``aws_resources``, ``aws_stores`` and ``aws_autoscaling``, their parameters in
``aws_params``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from incidentfox.agents.toolsets import aws_autoscaling as scaling
from incidentfox.agents.toolsets import aws_cloudwatch as cw
from incidentfox.agents.toolsets import aws_resources as res
from incidentfox.agents.toolsets import aws_stores as stores
from incidentfox.agents.toolsets.aws_api import AwsClient, check_health, connect
from incidentfox.agents.toolsets.aws_params import (
    AlarmsParams,
    DynamoTableParams,
    EcsParams,
    EksParams,
    InsightsParams,
    InstancesParams,
    LambdaParams,
    LogGroupsParams,
    LogsFilterParams,
    MetricParams,
    QueueDepthParams,
    RdsEventsParams,
    RdsParams,
    ScalingParams,
    StoppedTasksParams,
    TargetHealthParams,
    TrailParams,
)
from incidentfox.agents.toolsets.base import Tool, ToolFunction, ToolResult, Toolset, ToolsetHealth

P = TypeVar("P", bound=BaseModel)
HEALTH_TIMEOUT_S = 5.0


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


def _tool(
    name: str, description: str, params: type[P], run: Callable[[AwsClient, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


INSTRUCTIONS = """You read the team's AWS account (one region) with read-only calls. Start with
cloudwatch_alarms (what is in ALARM, since when and why) and cloudtrail_events (who changed what in the
last hours: deployments, security group or IAM changes, scaling). Then look at the resource the alarm
names: ecs_services (running vs desired, failing deployments and the service's own events),
elb_target_health (which targets are unhealthy and why), rds_instances, ec2_instances, eks_cluster,
lambda_functions. When an ECS service runs fewer tasks than desired or keeps restarting them,
ecs_stopped_tasks says why its tasks stopped (stop reason, container exit codes: 137 is killed, often out
of memory). When an Auto Scaling group has fewer instances than desired or keeps replacing them,
autoscaling_activities gives its recent activities with AWS' cause and status message (no capacity in a
zone, a failing launch template, instances replaced after failed health checks). For a database,
rds_events lists the instance's own events (failover, reboot, storage full, maintenance) over a window.
For a backlog of work, sqs_queue_depth gives visible and in-flight messages and the age of the oldest
one; dynamodb_table gives a table's capacity mode and its throttled reads and writes. Use
cloudwatch_metric for a metric's shape over a window (give every dimension the metric has: CloudWatch
matches them exactly). For log lines, find the log group with cloudwatch_log_groups (by prefix or a
word of its name, never guess it), then use cloudwatch_logs_insights or cloudwatch_logs_filter. Times
are RFC3339, unix seconds, now, or relative like -2h; keep windows short (1-3 hours around the
incident). As evidence, quote the alarm, event or log line exactly, with its time and the url. An error
naming a missing permission means the question could not be answered, not that all is well: say so."""

AWS = Toolset(
    name="aws",
    description="AWS (one account and region): CloudWatch alarms, metrics and logs, CloudTrail changes, "
    "ECS, EKS, EC2, Auto Scaling, RDS, load balancer targets, Lambda, SQS queues and DynamoDB tables.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.aws.region", "integrations.aws.access_key_id"),
    health_check=health,
    tools=(
        _tool(
            "cloudwatch_alarms",
            "CloudWatch metric alarms (default: those in ALARM) with the state reason, metric, threshold "
            "and when the state last changed.",
            AlarmsParams,
            cw.cloudwatch_alarms,
        ),
        _tool(
            "cloudwatch_metric",
            f"One CloudWatch metric over a window (default the last hour): min/max/avg/last and at most "
            f"{cw.MAX_POINTS} points.",
            MetricParams,
            cw.cloudwatch_metric,
        ),
        _tool(
            "cloudwatch_logs_insights",
            "Run a CloudWatch Logs Insights query on one log group over a window and return its rows.",
            InsightsParams,
            cw.cloudwatch_logs_insights,
        ),
        _tool(
            "cloudwatch_logs_filter",
            "Log events of one log group matching a CloudWatch Logs filter pattern (e.g. ERROR).",
            LogsFilterParams,
            cw.cloudwatch_logs_filter,
        ),
        _tool(
            "cloudtrail_events",
            "Recent CloudTrail management events: who called what on which resource, and any error "
            "(default: changes only, the last 3 hours).",
            TrailParams,
            res.cloudtrail_events,
        ),
        _tool(
            "ecs_services",
            "An ECS cluster's services: running vs desired tasks, deployments and rollout state, recent "
            "service events.",
            EcsParams,
            res.ecs_services,
        ),
        _tool(
            "elb_target_health",
            "Health of the targets behind a load balancer or in a target group, unhealthy ones first with "
            "the reason.",
            TargetHealthParams,
            res.elb_target_health,
        ),
        _tool(
            "rds_instances",
            "RDS DB instances with status, engine, class, Multi-AZ and endpoint.",
            RdsParams,
            res.rds_instances,
        ),
        _tool(
            "ec2_instances",
            "EC2 instances with state, type, zone, private IP, launch time and tags; filter by tag or state.",
            InstancesParams,
            res.ec2_instances,
        ),
        _tool(
            "eks_cluster",
            "An EKS cluster's status, version, endpoint access, health issues and node groups.",
            EksParams,
            res.eks_cluster,
        ),
        _tool(
            "lambda_functions",
            "Lambda functions with runtime, last modified, state and their errors in the last hour.",
            LambdaParams,
            res.lambda_functions,
        ),
        _tool(
            "cloudwatch_log_groups",
            "CloudWatch log groups by name prefix or a word of the name, with retention and stored size: "
            "find the group to query before using Logs Insights.",
            LogGroupsParams,
            cw.cloudwatch_log_groups,
        ),
        _tool(
            "ecs_stopped_tasks",
            "Recently stopped tasks of an ECS cluster or service, newest first: stop code and reason, and "
            "each container's exit code and reason.",
            StoppedTasksParams,
            res.ecs_stopped_tasks,
        ),
        _tool(
            "rds_events",
            "An RDS instance's events over a window (default the last 24 hours): failovers, reboots, "
            "storage full, maintenance, backups.",
            RdsEventsParams,
            stores.rds_events,
        ),
        _tool(
            "sqs_queue_depth",
            "SQS queues' approximate visible and in-flight messages, the age of the oldest message (from "
            "CloudWatch) and the dead-letter queue; deepest first.",
            QueueDepthParams,
            stores.sqs_queue_depth,
        ),
        _tool(
            "dynamodb_table",
            "A DynamoDB table's status, capacity mode, size and indexes, with its read and write throttle "
            "events and consumed capacity over a window (default the last hour).",
            DynamoTableParams,
            stores.dynamodb_table,
        ),
        _tool(
            "autoscaling_activities",
            "An Auto Scaling group's min/desired/max and instance health, and its recent scaling activities "
            "newest first with cause, status and AWS' status message.",
            ScalingParams,
            scaling.autoscaling_activities,
        ),
    ),
)
