"""``autoscaling_activities`` of the aws toolset: an Auto Scaling group's size and instance health, and
its recent scaling activities with their cause and status, so that "why are there fewer instances" is
answered by AWS' own words (no capacity in a zone, a launch template that fails, a health check that
replaced instances)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from incidentfox.agents.toolsets import aws_views as views
from incidentfox.agents.toolsets.aws_api import AwsClient, AwsError
from incidentfox.agents.toolsets.aws_cloudwatch import aws_failure
from incidentfox.agents.toolsets.aws_params import ScalingParams
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.prometheus_views import short

MAX_ACTIVITIES = 20
NOT_DONE = ("Successful", "Cancelled")


def group_row(group: Mapping[str, Any]) -> dict[str, Any]:
    instances = [i for i in group.get("Instances") or [] if isinstance(i, Mapping)]
    row = {
        "name": group.get("AutoScalingGroupName"),
        "min": group.get("MinSize"),
        "desired": group.get("DesiredCapacity"),
        "max": group.get("MaxSize"),
        "instances": len(instances),
        "by_health": dict(Counter(str(i.get("HealthStatus")) for i in instances)),
        "by_lifecycle": dict(Counter(str(i.get("LifecycleState")) for i in instances)),
        "health_check": group.get("HealthCheckType"),
        "zones": group.get("AvailabilityZones"),
        "suspended_processes": [p.get("ProcessName") for p in group.get("SuspendedProcesses") or []],
        "status": group.get("Status"),
    }
    return {k: v for k, v in row.items() if v not in (None, [], {})}


def activity_row(activity: Mapping[str, Any]) -> dict[str, Any]:
    row = {
        "at": views.when(activity.get("StartTime")),
        "ended": views.when(activity.get("EndTime")),
        "status": activity.get("StatusCode"),
        "status_message": short(activity.get("StatusMessage")) or None,
        "description": short(activity.get("Description")) or None,
        "cause": short(activity.get("Cause")) or None,
        "progress": activity.get("Progress"),
    }
    return {k: v for k, v in row.items() if v is not None}


async def autoscaling_activities(client: AwsClient, params: ScalingParams) -> ToolResult:
    invocation = views.cli(
        "autoscaling", "describe-scaling-activities", client.region, auto_scaling_group_name=params.group
    )
    try:
        groups = await client.call(
            "autoscaling",
            "describe_auto_scaling_groups",
            doing="describe the Auto Scaling group",
            AutoScalingGroupNames=[params.group],
        )
        found = groups.get("AutoScalingGroups") or []
        activities = (
            await client.pages(
                "autoscaling",
                "describe_scaling_activities",
                "Activities",
                doing="read the scaling activities",
                limit=MAX_ACTIVITIES,
                AutoScalingGroupName=params.group,
            )
            if found
            else []
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The Auto Scaling group {params.group}")
    if not found:
        return ToolResult.failed(
            f"There is no Auto Scaling group named {params.group} in {client.region}; ec2_instances with the "
            "tag:aws:autoscaling:groupName filter shows which groups instances belong to.",
            invocation=invocation,
        )
    rows = [activity_row(a) for a in activities[:MAX_ACTIVITIES]]
    data: dict[str, Any] = {
        "group": group_row(found[0]),
        "by_status": dict(Counter(str(r.get("status")) for r in rows)),
        "not_successful": sum(1 for r in rows if r.get("status") not in NOT_DONE),
        "activities": rows,
    }
    if not rows:
        data["note"] = "No scaling activities are recorded for this group (AWS keeps them for 6 weeks)."
    url = views.console(client.region, "ec2/home", f"AutoScalingGroupDetails:id={params.group};view=activity")
    return ToolResult.ok(data, invocation=invocation, url=url)
