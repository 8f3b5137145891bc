"""The data store tools of the aws toolset: how deep SQS queues are and how old their oldest message is,
a DynamoDB table's capacity and throttling, and an RDS instance's own event log (failovers, reboots,
storage full).

CloudWatch figures (a queue's oldest message, a table's throttled requests) are read in one
GetMetricData call per tool; when that is not allowed the rest is still returned and ``metrics_note``
says why the figures are missing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentfox.agents.toolsets import aws_views as views
from incidentfox.agents.toolsets.aws_api import AwsClient, AwsError
from incidentfox.agents.toolsets.aws_cloudwatch import (
    aws_failure,
    choose_period,
    invalid_arguments,
    time_window,
)
from incidentfox.agents.toolsets.aws_params import DynamoTableParams, QueueDepthParams, RdsEventsParams
from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.prometheus_views import capped, format_duration, iso, number

MAX_QUEUES = 20
MAX_EVENTS = 50
EVENTS_WINDOW = timedelta(hours=24)
QUEUE_AGE_WINDOW = timedelta(minutes=15)
QUEUE_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "RedrivePolicy",
]
TABLE_METRICS = {
    "read_throttle_events": "ReadThrottleEvents",
    "write_throttle_events": "WriteThrottleEvents",
    "consumed_read_capacity": "ConsumedReadCapacityUnits",
    "consumed_write_capacity": "ConsumedWriteCapacityUnits",
}
RDS_ATTENTION = ("failover", "failure", "low storage", "availability", "restoration", "recovery")
"""RDS event categories that usually matter in an incident; such events are counted apart."""


async def _metric_series(
    client: AwsClient,
    queries: dict[str, dict[str, Any]],
    start: datetime,
    end: datetime,
    period: int,
    doing: str,
) -> dict[str, list[float]]:
    """Each query id's values (``queries``: id → ``{"Metric", "Stat"}``) in one GetMetricData call."""
    answer = await client.call(
        "cloudwatch",
        "get_metric_data",
        doing=doing,
        MetricDataQueries=[
            {"Id": key, "MetricStat": {"Metric": q["Metric"], "Period": period, "Stat": q["Stat"]}}
            for key, q in queries.items()
        ],
        StartTime=start,
        EndTime=end,
    )
    return {
        str(r.get("Id")): [float(v) for v in r.get("Values") or []]
        for r in answer.get("MetricDataResults") or []
    }


async def _queue_urls(client: AwsClient, params: QueueDepthParams) -> tuple[list[str], list[str]]:
    """The URLs of the queues asked about, and the names that do not exist."""
    if not params.queues:
        query = {"QueueNamePrefix": params.prefix} if params.prefix else {}
        urls = await client.pages("sqs", "list_queues", "QueueUrls", doing="list queues", limit=1000, **query)
        return list(urls), []
    urls, missing = [], []
    for queue in params.queues[:MAX_QUEUES]:
        if queue.startswith(("https://", "http://")):
            urls.append(queue)
            continue
        try:
            answer = await client.call("sqs", "get_queue_url", doing="find the queue", QueueName=queue)
        except AwsError as exc:
            if not exc.not_found:
                raise
            missing.append(queue)
        else:
            urls.append(answer["QueueUrl"])
    return urls, missing


async def sqs_queue_depth(client: AwsClient, params: QueueDepthParams) -> ToolResult:
    if params.queues:
        invocation = views.cli(
            "sqs",
            "get-queue-attributes",
            client.region,
            queue_url=",".join(params.queues),
            attribute_names=" ".join(QUEUE_ATTRIBUTES),
        )
    else:
        invocation = views.cli("sqs", "list-queues", client.region, queue_name_prefix=params.prefix)
    try:
        urls, missing = await _queue_urls(client, params)
        rows = []
        for url in urls[:MAX_QUEUES]:
            answer = await client.call(
                "sqs",
                "get_queue_attributes",
                doing="read the queue's attributes",
                QueueUrl=url,
                AttributeNames=QUEUE_ATTRIBUTES,
            )
            rows.append(views.queue_row(url, answer.get("Attributes") or {}))
    except AwsError as exc:
        return aws_failure(exc, invocation, "The queue")
    if not rows:
        if missing:
            return ToolResult.failed(
                f"No queue named {', '.join(missing)} in {client.region}; call sqs_queue_depth with a "
                "prefix to see which queues exist.",
                invocation=invocation,
            )
        which = f" starting with {params.prefix}" if params.prefix else ""
        return ToolResult.no_data(f"No SQS queues{which} in {client.region}.", invocation=invocation)
    rows.sort(key=lambda r: (-(r.get("visible") or 0), str(r["queue"])))
    data: dict[str, Any] = {"queues": rows}
    if len(urls) > MAX_QUEUES:
        data["queues_omitted"] = len(urls) - MAX_QUEUES
        data["note"] = f"Showing {MAX_QUEUES} of {len(urls)} queues; name them or pass a prefix."
    if missing:
        data["not_found"] = missing
    data["metrics_note"] = await _add_oldest_age(client, rows)
    url = views.console(client.region, "sqs/v3/home", "/queues")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def _add_oldest_age(client: AwsClient, rows: list[dict[str, Any]]) -> str:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    queries = {
        f"q{i}": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": row["queue"]}],
            },
            "Stat": "Maximum",
        }
        for i, row in enumerate(rows)
    }
    try:
        series = await _metric_series(
            client, queries, end - QUEUE_AGE_WINDOW, end, 60, "read the age of the oldest messages"
        )
    except AwsError as exc:
        return f"oldest_message_age_s is not shown: {exc}"
    for i, row in enumerate(rows):
        values = series.get(f"q{i}")
        if values:
            row["oldest_message_age_s"] = number(max(values))
    return (
        "oldest_message_age_s is the Maximum of AWS/SQS ApproximateAgeOfOldestMessage over the last "
        f"{format_duration(QUEUE_AGE_WINDOW.total_seconds())} (absent: no datapoints); visible and "
        "in_flight are SQS's approximate counts now."
    )


async def dynamodb_table(client: AwsClient, params: DynamoTableParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end)
    except ValueError as exc:
        return invalid_arguments(exc)
    invocation = views.cli("dynamodb", "describe-table", client.region, table_name=params.table)
    try:
        answer = await client.call(
            "dynamodb", "describe_table", doing="describe the table", TableName=params.table
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The DynamoDB table {params.table}")
    data = views.dynamodb_table_row(answer.get("Table") or {})
    period = choose_period((end - start).total_seconds(), None)
    queries = {
        key: {
            "Metric": {
                "Namespace": "AWS/DynamoDB",
                "MetricName": metric,
                "Dimensions": [{"Name": "TableName", "Value": params.table}],
            },
            "Stat": "Sum",
        }
        for key, metric in TABLE_METRICS.items()
    }
    window = {"start": iso(start), "end": iso(end), "period": format_duration(period)}
    try:
        series = await _metric_series(client, queries, start, end, period, "read the table's metrics")
    except AwsError as exc:
        data["metrics_note"] = f"Throttling and consumed capacity are not shown: {exc}"
    else:
        data["metrics"] = {
            **window,
            **{
                key: {"sum": number(sum(values)), "peak_per_period": number(max(values))}
                for key, values in series.items()
                if values
            },
        }
        data["metrics_note"] = (
            "Sums of AWS/DynamoDB metrics over the window; a metric without datapoints is left out "
            "(no throttling is reported as no datapoints)."
        )
    url = views.console(client.region, "dynamodbv2/home", f"table?name={params.table}")
    return ToolResult.ok(data, invocation=invocation, url=url)


async def rds_events(client: AwsClient, params: RdsEventsParams) -> ToolResult:
    try:
        start, end = time_window(params.start, params.end, EVENTS_WINDOW)
    except ValueError as exc:
        return invalid_arguments(exc)
    invocation = views.cli(
        "rds",
        "describe-events",
        client.region,
        source_type="db-instance",
        source_identifier=params.identifier,
        start_time=iso(start),
        end_time=iso(end),
    )
    try:
        found = await client.pages(
            "rds",
            "describe_events",
            "Events",
            doing="read the RDS events",
            limit=500,
            SourceType="db-instance",
            SourceIdentifier=params.identifier,
            StartTime=start,
            EndTime=end,
        )
    except AwsError as exc:
        return aws_failure(exc, invocation, f"The RDS instance {params.identifier}")
    # Windows end on a whole second; an event in that second still belongs to the window.
    until = end + timedelta(seconds=1)
    in_window = [e for e in found if not isinstance(e.get("Date"), datetime) or start <= e["Date"] < until]
    if not in_window:
        return ToolResult.no_data(
            f"No RDS events for {params.identifier} between {iso(start)} and {iso(end)} (RDS keeps events "
            "for 14 days); check the identifier with rds_instances.",
            invocation=invocation,
        )
    # AWS lists events oldest first; newest first here, by their exact time.
    in_window.reverse()
    in_window.sort(key=lambda e: e["Date"] if isinstance(e.get("Date"), datetime) else end, reverse=True)
    rows = [views.rds_event_row(e) for e in in_window]
    categories = Counter(c for r in rows for c in r.get("categories") or [])
    data: dict[str, Any] = {
        "instance": params.identifier,
        "start": iso(start),
        "end": iso(end),
        "by_category": dict(categories.most_common()),
        "needs_attention": sum(1 for r in rows if any(c in RDS_ATTENTION for c in r.get("categories") or [])),
    }
    data = capped(data, "events", rows, MAX_EVENTS, "newest first; shorten the window")
    url = views.console(client.region, "rds/home", "events:")
    return ToolResult.ok(data, invocation=invocation, url=url)
