"""Pure functions for the aws toolset: AWS' answers as the compact rows the tools return, the CLI
command a question equals (``invocation``) and the console page that shows the same (``url``).

Times are ISO 8601 UTC to the second; tags are kept (they name owners and services) but never whole
API responses: a row holds what an on-call engineer looks at first.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from incidentfox.agents.toolsets.prometheus_views import iso, number, short

Row = dict[str, Any]


def when(value: Any) -> str | None:
    """A boto3 datetime (or epoch milliseconds) as ISO 8601 UTC."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso(value / 1000)
    return None


def cli(service: str, command: str, region: str, **options: Any) -> str:
    """``aws cloudwatch describe-alarms --state-value ALARM --region eu-west-1``; ``None`` options are
    left out, lists and mappings are given as JSON."""
    parts = ["aws", service, command]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, str | int | float):
            parts += [flag, shlex.quote(str(value))]
        else:
            parts += [flag, shlex.quote(json.dumps(value, separators=(",", ":")))]
    return " ".join([*parts, "--region", region])


def console(region: str, path: str, fragment: str = "") -> str:
    """A page of the AWS console in ``region``: ``console(r, "ec2/home", "Instances:")``."""
    url = f"https://{region}.console.aws.amazon.com/{path}?region={region}"
    return f"{url}#{fragment}" if fragment else url


def tags(raw: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` (or ``{"key": k, "value": v}``, or a mapping) as one mapping."""
    if isinstance(raw, Mapping):
        return {str(k): short(v, 120) for k, v in raw.items()}
    found: dict[str, str] = {}
    for tag in raw or []:
        if isinstance(tag, Mapping):
            key = tag.get("Key", tag.get("key"))
            if key is not None:
                found[str(key)] = short(tag.get("Value", tag.get("value")), 120)
    return found


def alarm_row(alarm: Mapping[str, Any]) -> Row:
    dimensions = {d.get("Name"): d.get("Value") for d in alarm.get("Dimensions") or []}
    row: Row = {
        "name": alarm.get("AlarmName"),
        "state": alarm.get("StateValue"),
        "reason": short(alarm.get("StateReason")),
        "since": when(alarm.get("StateUpdatedTimestamp")),
        "metric": alarm.get("MetricName"),
        "namespace": alarm.get("Namespace"),
        "dimensions": dimensions,
        "statistic": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
        "comparison": alarm.get("ComparisonOperator"),
        "threshold": alarm.get("Threshold"),
        "period_s": alarm.get("Period"),
        "evaluation_periods": alarm.get("EvaluationPeriods"),
    }
    if alarm.get("AlarmDescription"):
        row["description"] = short(alarm["AlarmDescription"])
    return {k: v for k, v in row.items() if v not in (None, {}, "")}


def metric_summary(timestamps: Sequence[datetime], values: Sequence[float]) -> Row:
    """A GetMetricData series, oldest first: min/max/avg/last and its points."""
    points = sorted(zip(timestamps, values, strict=False), key=lambda p: p[0])
    numbers = [float(v) for _, v in points]
    if not numbers:
        return {"points": 0}
    return {
        "min": number(min(numbers)),
        "max": number(max(numbers)),
        "avg": number(sum(numbers) / len(numbers)),
        "last": number(numbers[-1]),
        "last_at": iso(points[-1][0]),
        "points": len(numbers),
        "values": [[iso(at), number(v, 4)] for at, v in points],
    }


def insights_rows(results: Sequence[Sequence[Mapping[str, Any]]]) -> list[Row]:
    """Logs Insights rows (lists of ``{"field", "value"}``) as mappings, ``@ptr`` dropped."""
    return [
        {
            str(cell.get("field")): short(cell.get("value"), 2000)
            for cell in row
            if cell.get("field") != "@ptr"
        }
        for row in results
    ]


def log_event_row(event: Mapping[str, Any]) -> Row:
    return {
        "at": when(event.get("timestamp")),
        "stream": event.get("logStreamName"),
        "message": short(event.get("message"), 2000),
    }


def instance_row(instance: Mapping[str, Any]) -> Row:
    labels = tags(instance.get("Tags"))
    return {
        "id": instance.get("InstanceId"),
        "name": labels.pop("Name", None),
        "state": (instance.get("State") or {}).get("Name"),
        "state_reason": (instance.get("StateReason") or {}).get("Message"),
        "type": instance.get("InstanceType"),
        "zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "private_ip": instance.get("PrivateIpAddress"),
        "launched": when(instance.get("LaunchTime")),
        "image": instance.get("ImageId"),
        "tags": labels,
    }


def ecs_service_row(service: Mapping[str, Any], max_events: int) -> Row:
    deployments = [
        {
            "status": d.get("status"),
            "rollout": d.get("rolloutState"),
            "rollout_reason": short(d.get("rolloutStateReason")) or None,
            "task_definition": str(d.get("taskDefinition") or "").rsplit("/", 1)[-1],
            "desired": d.get("desiredCount"),
            "running": d.get("runningCount"),
            "pending": d.get("pendingCount"),
            "failed_tasks": d.get("failedTasks"),
            "updated": when(d.get("updatedAt")),
        }
        for d in service.get("deployments") or []
    ]
    events = sorted(service.get("events") or [], key=lambda e: str(when(e.get("createdAt"))), reverse=True)
    return {
        "name": service.get("serviceName"),
        "status": service.get("status"),
        "desired": service.get("desiredCount"),
        "running": service.get("runningCount"),
        "pending": service.get("pendingCount"),
        "launch_type": service.get("launchType"),
        "task_definition": str(service.get("taskDefinition") or "").rsplit("/", 1)[-1],
        "deployments": [{k: v for k, v in d.items() if v is not None} for d in deployments],
        "recent_events": [
            {"at": when(e.get("createdAt")), "message": short(e.get("message"))} for e in events[:max_events]
        ],
    }


def eks_cluster_row(cluster: Mapping[str, Any]) -> Row:
    health = (cluster.get("health") or {}).get("issues") or []
    vpc = cluster.get("resourcesVpcConfig") or {}
    return {
        "name": cluster.get("name"),
        "status": cluster.get("status"),
        "version": cluster.get("version"),
        "platform_version": cluster.get("platformVersion"),
        "endpoint": cluster.get("endpoint"),
        "created": when(cluster.get("createdAt")),
        "public_access": vpc.get("endpointPublicAccess"),
        "private_access": vpc.get("endpointPrivateAccess"),
        "health_issues": [
            {"code": i.get("code"), "message": short(i.get("message"))}
            for i in health
            if isinstance(i, Mapping)
        ],
        "tags": tags(cluster.get("tags")),
    }


def nodegroup_row(group: Mapping[str, Any]) -> Row:
    scaling = group.get("scalingConfig") or {}
    issues = (group.get("health") or {}).get("issues") or []
    return {
        "name": group.get("nodegroupName"),
        "status": group.get("status"),
        "instance_types": group.get("instanceTypes"),
        "min": scaling.get("minSize"),
        "desired": scaling.get("desiredSize"),
        "max": scaling.get("maxSize"),
        "health_issues": [{"code": i.get("code"), "message": short(i.get("message"))} for i in issues],
    }


def rds_row(db: Mapping[str, Any]) -> Row:
    endpoint = db.get("Endpoint") or {}
    return {
        "id": db.get("DBInstanceIdentifier"),
        "status": db.get("DBInstanceStatus"),
        "engine": f"{db.get('Engine')} {db.get('EngineVersion') or ''}".strip(),
        "class": db.get("DBInstanceClass"),
        "multi_az": db.get("MultiAZ"),
        "zone": db.get("AvailabilityZone"),
        "endpoint": f"{endpoint.get('Address')}:{endpoint.get('Port')}" if endpoint else None,
        "storage_gb": db.get("AllocatedStorage"),
        "created": when(db.get("InstanceCreateTime")),
        "pending_changes": bool(db.get("PendingModifiedValues")),
        "tags": tags(db.get("TagList")),
    }


def target_rows(descriptions: Sequence[Mapping[str, Any]]) -> tuple[list[Row], dict[str, int]]:
    """Targets that are not healthy first, and how many there are in each state."""
    rows = [
        {
            "target": (d.get("Target") or {}).get("Id"),
            "port": (d.get("Target") or {}).get("Port"),
            "zone": (d.get("Target") or {}).get("AvailabilityZone"),
            "state": (d.get("TargetHealth") or {}).get("State"),
            "reason": (d.get("TargetHealth") or {}).get("Reason"),
            "description": (d.get("TargetHealth") or {}).get("Description"),
        }
        for d in descriptions
    ]
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    rows.sort(key=lambda r: (r.get("state") == "healthy", str(r.get("target"))))
    return rows, dict(Counter(str(r.get("state")) for r in rows))


def lambda_row(function: Mapping[str, Any]) -> Row:
    return {
        "name": function.get("FunctionName"),
        "runtime": function.get("Runtime") or function.get("PackageType"),
        "last_modified": function.get("LastModified"),
        "memory_mb": function.get("MemorySize"),
        "timeout_s": function.get("Timeout"),
        "state": function.get("State"),
        "last_update_status": function.get("LastUpdateStatus"),
        "handler": function.get("Handler"),
    }


def trail_row(event: Mapping[str, Any]) -> Row:
    resources = [
        f"{r.get('ResourceType') or ''} {r.get('ResourceName') or ''}".strip()
        for r in event.get("Resources") or []
    ]
    row: Row = {
        "at": when(event.get("EventTime")),
        "event": event.get("EventName"),
        "by": event.get("Username"),
        "source": event.get("EventSource"),
        "resources": resources,
        "read_only": event.get("ReadOnly"),
    }
    detail = _trail_detail(event.get("CloudTrailEvent"))
    if detail:
        row.update(detail)
    return row


def _trail_detail(raw: Any) -> Row:
    """The parts of the full CloudTrail record worth reading: who (ARN), from where, and any error."""
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    if not isinstance(record, Mapping):
        return {}
    identity = record.get("userIdentity") or {}
    detail: Row = {
        "actor_arn": identity.get("arn"),
        "source_ip": record.get("sourceIPAddress"),
        "error": record.get("errorCode"),
        "error_message": short(record.get("errorMessage")) or None,
    }
    return {k: v for k, v in detail.items() if v}


def log_group_url(region: str, group: str) -> str:
    encoded = quote(quote(group, safe=""), safe="").replace("%", "$")
    return console(region, "cloudwatch/home", f"logsV2:log-groups/log-group/{encoded}")


def _present(row: Row) -> Row:
    return {k: v for k, v in row.items() if v not in (None, [], {}, "")}


def _last_part(arn: Any, separator: str = "/") -> str | None:
    return str(arn).rsplit(separator, 1)[-1] if arn else None


def log_group_row(group: Mapping[str, Any]) -> Row:
    """A log group with how long it keeps events (AWS leaves ``retentionInDays`` out for never)."""
    stored = group.get("storedBytes")
    days = group.get("retentionInDays")
    return _present(
        {
            "name": group.get("logGroupName"),
            "retention": f"{days} days" if days else "never expires",
            "stored_mb": round(stored / 1_000_000, 1) if isinstance(stored, int | float) else None,
            "created": when(group.get("creationTime")),
            "class": group.get("logGroupClass"),
            "metric_filters": group.get("metricFilterCount"),
        }
    )


def stopped_task_row(task: Mapping[str, Any]) -> Row:
    """A stopped ECS task: why ECS stopped it and how each container ended."""
    containers = [
        _present(
            {
                "name": c.get("name"),
                "exit_code": c.get("exitCode"),
                "reason": short(c.get("reason")),
                "last_status": c.get("lastStatus"),
                "image": c.get("image"),
            }
        )
        for c in task.get("containers") or []
        if isinstance(c, Mapping)
    ]
    return _present(
        {
            "task": _last_part(task.get("taskArn")),
            "task_definition": _last_part(task.get("taskDefinitionArn")),
            "stopped_at": when(task.get("stoppedAt")),
            "started_at": when(task.get("startedAt")),
            "stop_code": task.get("stopCode"),
            "stopped_reason": short(task.get("stoppedReason")),
            "containers": containers,
            "group": task.get("group"),
        }
    )


def rds_event_row(event: Mapping[str, Any]) -> Row:
    return _present(
        {
            "at": when(event.get("Date")),
            "message": short(event.get("Message")),
            "categories": list(event.get("EventCategories") or []),
            "source": event.get("SourceIdentifier"),
        }
    )


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def queue_row(url: str, attributes: Mapping[str, Any]) -> Row:
    """An SQS queue's approximate depth (visible, in flight, delayed) and where failures go."""
    try:
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    except ValueError:
        redrive = {}
    return _present(
        {
            "queue": _last_part(url),
            "visible": _count(attributes.get("ApproximateNumberOfMessages")),
            "in_flight": _count(attributes.get("ApproximateNumberOfMessagesNotVisible")),
            "delayed": _count(attributes.get("ApproximateNumberOfMessagesDelayed")),
            "visibility_timeout_s": _count(attributes.get("VisibilityTimeout")),
            "retention_s": _count(attributes.get("MessageRetentionPeriod")),
            "dead_letter_queue": _last_part(redrive.get("deadLetterTargetArn"), ":"),
            "max_receive_count": _count(str(redrive.get("maxReceiveCount"))),
        }
    )


def dynamodb_table_row(table: Mapping[str, Any]) -> Row:
    """A DynamoDB table's status, capacity mode and size, with its global secondary indexes."""
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"

    def capacity(owner: Mapping[str, Any]) -> Row:
        if mode != "PROVISIONED":
            return {}
        throughput = owner.get("ProvisionedThroughput") or {}
        return {
            "read_capacity": throughput.get("ReadCapacityUnits"),
            "write_capacity": throughput.get("WriteCapacityUnits"),
        }

    size = table.get("TableSizeBytes")
    stream = table.get("StreamSpecification") or {}
    return _present(
        {
            "name": table.get("TableName"),
            "status": table.get("TableStatus"),
            "billing_mode": mode,
            **capacity(table),
            "items": table.get("ItemCount"),
            "size_mb": round(size / 1_000_000, 1) if isinstance(size, int | float) else None,
            "created": when(table.get("CreationDateTime")),
            "table_class": (table.get("TableClassSummary") or {}).get("TableClass"),
            "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            "indexes": [
                _present({"name": i.get("IndexName"), "status": i.get("IndexStatus"), **capacity(i)})
                for i in table.get("GlobalSecondaryIndexes") or []
            ],
        }
    )
