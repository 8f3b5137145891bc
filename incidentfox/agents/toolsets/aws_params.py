"""The parameters of the aws toolset's tools, as the model fills them in (strict JSON schemas: every
field is present, optional ones as null)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

QUERY_MAX = 4000
_TIME = "RFC3339 (2026-01-31T14:05:00Z), unix seconds, `now` or relative like -30m"


def _check_text(text: str) -> str:
    """Lengths are checked here, not in the JSON schema: strict tool schemas reject length keywords."""
    text = text.strip()
    if not text:
        raise ValueError("it is empty")
    if len(text) > QUERY_MAX:
        raise ValueError(f"keep it under {QUERY_MAX} characters")
    return text


Text = Annotated[str, AfterValidator(_check_text)]


def _start(default: str = "1 hour") -> Any:
    return Field(default=None, description=f"Window start: {_TIME}. Null for {default} before end.")


def _end() -> Any:
    return Field(default=None, description=f"Window end: {_TIME}. Null for now.")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dimension(_Params):
    name: str = Field(description="Dimension name, e.g. LoadBalancer, DBInstanceIdentifier, FunctionName.")
    value: str


class Filter(_Params):
    name: str = Field(description="An EC2 filter name, e.g. tag:service, instance-state-name, vpc-id.")
    values: list[str]


class AlarmsParams(_Params):
    state: Literal["ALARM", "OK", "INSUFFICIENT_DATA"] | None = Field(
        default="ALARM", description="Alarm state to list; null for every state."
    )
    prefix: str | None = Field(default=None, description="Only alarms whose name starts with this.")


class MetricParams(_Params):
    namespace: Text = Field(description="e.g. AWS/ApplicationELB, AWS/RDS, AWS/Lambda, AWS/EC2, AWS/ECS.")
    metric: Text = Field(description="e.g. HTTPCode_Target_5XX_Count, CPUUtilization, Errors.")
    dimensions: list[Dimension] = Field(description="The metric's dimensions; exactly those it has.")
    start: str | None = _start()
    end: str | None = _end()
    stat: str = Field(
        default="Average",
        pattern=r"^(Average|Sum|Minimum|Maximum|SampleCount|[pP]\d{1,2}(\.\d{1,3})?)$",
        description="Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99.",
    )
    period: int | None = Field(
        default=None, description="Seconds per point (a multiple of 60); null to choose. Raised when needed."
    )


class InsightsParams(_Params):
    log_group: Text = Field(description="Log group name, e.g. /aws/lambda/checkout or /ecs/api.")
    query: Text = Field(
        description="Logs Insights query, e.g. fields @timestamp, @message | filter @message like /ERROR/ "
        "| sort @timestamp desc"
    )
    start: str | None = _start()
    end: str | None = _end()
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many rows.")


class LogsFilterParams(_Params):
    log_group: Text = Field(description="Log group name, e.g. /aws/lambda/checkout.")
    pattern: str | None = Field(
        default=None,
        description='CloudWatch Logs filter pattern, e.g. ERROR, "connection refused", or '
        '{ $.level = "error" }; null for every event.',
    )
    start: str | None = _start()
    end: str | None = _end()
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many events (newest kept).")


class InstancesParams(_Params):
    filters: list[Filter] | None = Field(
        default=None, description="EC2 filters (all must match); null for every instance."
    )
    instance_ids: list[str] | None = Field(default=None, description="Only these instance ids.")


class EcsParams(_Params):
    cluster: Text = Field(description="ECS cluster name or ARN.")
    services: list[str] | None = Field(default=None, description="Only these services; null for all.")


class EksParams(_Params):
    name: Text = Field(description="EKS cluster name.")


class RdsParams(_Params):
    identifier: str | None = Field(default=None, description="One DB instance identifier; null for all.")


class TargetHealthParams(_Params):
    target_group: str | None = Field(default=None, description="Target group ARN or name.")
    load_balancer: str | None = Field(
        default=None, description="Load balancer name: every target group behind it."
    )


class LambdaParams(_Params):
    prefix: str | None = Field(default=None, description="Only functions whose name starts with this.")


class TrailParams(_Params):
    start: str | None = _start("3 hours")
    end: str | None = _end()
    event_name: str | None = Field(
        default=None, description="Only this API call, e.g. UpdateService, ModifyDBInstance, PutRolePolicy."
    )
    resource_name: str | None = Field(
        default=None, description="Only events about this resource (name, id or ARN)."
    )
    include_read_only: bool = Field(
        default=False, description="Also Describe*/List*/Get* calls; off to see only changes."
    )


class LogGroupsParams(_Params):
    prefix: str | None = Field(
        default=None, description="Only log groups whose name starts with this, e.g. /ecs/ or /aws/lambda/."
    )
    contains: str | None = Field(
        default=None, description="Only log groups whose name contains this (any case), e.g. checkout."
    )


class StoppedTasksParams(_Params):
    cluster: Text = Field(description="ECS cluster name or ARN.")
    service: str | None = Field(
        default=None, description="Only tasks of this service; null for every stopped task in the cluster."
    )


class RdsEventsParams(_Params):
    identifier: Text = Field(description="DB instance identifier, e.g. orders-db.")
    start: str | None = _start("24 hours")
    end: str | None = _end()


class QueueDepthParams(_Params):
    queues: list[str] | None = Field(
        default=None, description="Queue names or URLs; null to list queues by prefix."
    )
    prefix: str | None = Field(
        default=None, description="With queues null: only queues whose name starts with this."
    )


class DynamoTableParams(_Params):
    table: Text = Field(description="DynamoDB table name.")
    start: str | None = _start()
    end: str | None = _end()


class ScalingParams(_Params):
    group: Text = Field(description="Auto Scaling group name, e.g. checkout-asg.")
