"""The aws toolset against what moto cannot play (an aiohttp fake speaking AWS's wire formats):
CloudTrail events, Auto Scaling activities with their cause, and how each failure reads: access denied
naming the permission, throttling retried then reported, rejected keys, an unreachable or slow endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from incidentfox.agents.toolsets import aws
from incidentfox.agents.toolsets.aws_api import connect
from incidentfox.agents.toolsets.base import ToolResult
from tests.moto_server import KEY_ID, REGION, SECRET
from tests.prometheus_server import free_port
from tests.toolset_calls import run_tool


class FakeAws:
    """What AWS answers that moto cannot: CloudTrail events (``/trail``), scaling activities (``/asg``, in
    the query protocol's XML), access denied (``/denied``),
    throttling (``/throttled``), rejected keys (``/badkeys``) and a slow endpoint (``/slow``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = request.match_info["mode"]
        target = request.headers.get("X-Amz-Target", "")
        body = await request.text()
        self.requests.append((mode, target or body.split("&", 1)[0]))
        if mode == "slow":
            await asyncio.sleep(1)
        errors = {
            "denied": (
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/incidentfox is not authorized to perform this",
            ),
            "throttled": ("ThrottlingException", "Rate exceeded"),
            "badkeys": (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
        }
        if mode in errors and target:
            code, message = errors[mode]
            return web.json_response({"__type": code, "message": message}, status=400)
        if mode == "asg":
            action = dict(parse_qsl(body)).get("Action", "")
            return web.Response(text=_scaling_xml(action), content_type="text/xml")
        if mode == "badkeys":
            xml = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
                "<Message>The security token included in the request is invalid.</Message></Error>"
                "<RequestId>1</RequestId></ErrorResponse>"
            )
            return web.Response(status=403, text=xml, content_type="text/xml")
        return web.json_response({"Events": _trail_events()}, content_type="application/x-amz-json-1.1")


SCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
NO_CAPACITY = (
    "We currently do not have sufficient t3.medium capacity in the Availability Zone you requested "
    "(eu-west-1a). Launching EC2 instance failed."
)


def _scaling_xml(action: str) -> str:
    """DescribeAutoScalingGroups and DescribeScalingActivities as AWS answers them (newest first)."""
    if action == "DescribeAutoScalingGroups":
        instances = "".join(
            f"<member><InstanceId>i-0{n}</InstanceId><HealthStatus>{health}</HealthStatus>"
            "<LifecycleState>InService</LifecycleState><AvailabilityZone>eu-west-1b</AvailabilityZone></member>"
            for n, health in ((1, "Healthy"), (2, "Healthy"))
        )
        result = (
            "<AutoScalingGroups><member><AutoScalingGroupName>checkout-asg</AutoScalingGroupName>"
            "<MinSize>2</MinSize><MaxSize>6</MaxSize><DesiredCapacity>3</DesiredCapacity>"
            "<HealthCheckType>ELB</HealthCheckType><AvailabilityZones><member>eu-west-1a</member>"
            f"<member>eu-west-1b</member></AvailabilityZones><Instances>{instances}</Instances>"
            "</member></AutoScalingGroups>"
        )
    else:
        failed = (
            "<member><ActivityId>a-2</ActivityId><AutoScalingGroupName>checkout-asg</AutoScalingGroupName>"
            "<Description>Launching a new EC2 instance.  Status Reason: capacity</Description>"
            "<Cause>At 2026-12-04T20:10:00Z an instance was started in response to a difference between "
            "desired and actual capacity, increasing the capacity from 2 to 3.</Cause>"
            "<StartTime>2026-12-04T20:10:05.123Z</StartTime><EndTime>2026-12-04T20:10:06Z</EndTime>"
            f"<StatusCode>Failed</StatusCode><StatusMessage>{NO_CAPACITY}</StatusMessage>"
            "<Progress>100</Progress></member>"
        )
        done = (
            "<member><ActivityId>a-1</ActivityId><AutoScalingGroupName>checkout-asg</AutoScalingGroupName>"
            "<Description>Terminating EC2 instance: i-03</Description><Cause>At 2026-12-04T20:05:00Z an "
            "instance was taken out of service in response to an ELB system health check failure.</Cause>"
            "<StartTime>2026-12-04T20:05:01Z</StartTime><EndTime>2026-12-04T20:06:00Z</EndTime>"
            "<StatusCode>Successful</StatusCode><Progress>100</Progress></member>"
        )
        result = f"<Activities>{failed}{done}</Activities>"
    return (
        f'<{action}Response xmlns="{SCALING_NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{action}Response>"
    )


def _trail_events() -> list[dict[str, Any]]:
    record = {
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
        "sourceIPAddress": "203.0.113.7",
        "errorCode": None,
    }
    return [
        {
            "EventId": "1",
            "EventName": "UpdateService",
            "ReadOnly": "false",
            "EventTime": 1796410000.0,
            "EventSource": "ecs.amazonaws.com",
            "Username": "alice",
            "Resources": [{"ResourceType": "AWS::ECS::Service", "ResourceName": "checkout"}],
            "CloudTrailEvent": json.dumps(record),
        },
        {"EventId": "2", "EventName": "DescribeServices", "ReadOnly": "true", "EventTime": 1796410100.0},
    ]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeAws]]:
    handler = FakeAws()
    app = web.Application()
    app.router.add_post("/{mode}{tail:.*}", handler.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", handler
    await runner.cleanup()


def _fake_config(url: str, **settings: Any) -> dict[str, Any]:
    aws_settings = {
        "region": REGION,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "endpoint_url": url,
    }
    return {"integrations": {"aws": {**aws_settings, **settings}}}


async def _fake_call(url: str, tool_name: str, /, **args: Any) -> ToolResult:
    connected = await connect(_fake_config(url))
    try:
        return await run_tool(aws.AWS, connected, tool_name, **args)
    finally:
        connected.close()


async def test_cloudtrail_shows_who_changed_what(fake: tuple[str, FakeAws]) -> None:
    url, handler = fake
    result = await _fake_call(f"{url}/trail", "cloudtrail_events", start="-6h")
    assert result.status == "ok", result
    [event] = result.data["events"]
    assert (event["event"], event["by"], event["resources"]) == (
        "UpdateService",
        "alice",
        ["AWS::ECS::Service checkout"],
    )
    assert (event["actor_arn"], event["source_ip"]) == ("arn:aws:iam::123456789012:user/alice", "203.0.113.7")
    assert "--lookup-attributes" in result.invocation and '"ReadOnly"' in result.invocation
    assert handler.requests[0][1].endswith("LookupEvents")


async def test_scaling_activities_give_aws_cause_and_status_message(fake: tuple[str, FakeAws]) -> None:
    url, handler = fake
    result = await _fake_call(f"{url}/asg", "autoscaling_activities", group="checkout-asg")
    assert result.status == "ok", result
    failed, done = result.data["activities"]
    assert (failed["status"], failed["status_message"]) == ("Failed", NO_CAPACITY)
    assert failed["at"] == "2026-12-04T20:10:05Z" and "from 2 to 3" in failed["cause"]
    assert done["status"] == "Successful" and "ELB system health check failure" in done["cause"]
    assert result.data["by_status"] == {"Failed": 1, "Successful": 1} and result.data["not_successful"] == 1
    assert result.data["group"]["zones"] == ["eu-west-1a", "eu-west-1b"]
    assert [action for _, action in handler.requests] == [
        "Action=DescribeAutoScalingGroups",
        "Action=DescribeScalingActivities",
    ]
    rejected = await _fake_call(f"{url}/badkeys", "autoscaling_activities", group="checkout-asg")
    assert rejected.error is not None and rejected.error.startswith("AWS rejected the credentials")


async def test_access_denied_names_the_missing_permission(fake: tuple[str, FakeAws]) -> None:
    url, _ = fake
    result = await _fake_call(f"{url}/denied", "cloudtrail_events")
    assert result.status == "error"
    assert result.error == (
        "AWS denied the request to look up CloudTrail events (AccessDeniedException): the credentials lack "
        "the cloudtrail:LookupEvents permission; add it to the IAM policy of IncidentFox's user or role."
    )


async def test_throttling_is_retried_twice_then_reported(fake: tuple[str, FakeAws]) -> None:
    url, handler = fake
    result = await _fake_call(f"{url}/throttled", "cloudtrail_events")
    assert result.error is not None and "AWS throttled the request" in result.error
    assert "try again" in result.error
    assert len(handler.requests) == 3, "retries max_attempts=2 counts retries: three requests in all"


async def test_the_new_tools_fail_in_plain_words_when_denied_or_throttled(fake: tuple[str, FakeAws]) -> None:
    url, _ = fake
    denied = await _fake_call(f"{url}/denied", "dynamodb_table", table="orders")
    assert denied.error is not None and "lack the dynamodb:DescribeTable permission" in denied.error
    stopped = await _fake_call(f"{url}/denied", "ecs_stopped_tasks", cluster="prod", service="checkout")
    assert stopped.error is not None and "ecs:ListTasks permission" in stopped.error
    queues = await _fake_call(f"{url}/throttled", "sqs_queue_depth", queues=["checkout-jobs"])
    assert queues.error is not None and queues.error.startswith("AWS throttled the request to find the queue")
    groups = await _fake_call(f"{url}/badkeys", "cloudwatch_log_groups")
    assert groups.error is not None and groups.error.startswith("AWS rejected the credentials")


async def test_rejected_keys_and_unreachable_endpoints_fail_health_in_plain_words(
    fake: tuple[str, FakeAws],
) -> None:
    url, _ = fake
    rejected = await aws.health(_fake_config(f"{url}/badkeys"))
    assert not rejected.healthy
    assert rejected.reason.startswith("AWS rejected the credentials (InvalidClientTokenId)")
    assert SECRET not in rejected.reason and KEY_ID not in rejected.reason
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = await aws.health(_fake_config(dead))
    assert unreachable.reason == (
        f"AWS ({REGION} at {dead}) is unreachable, could not confirm who IncidentFox is: check the region "
        "and endpoint_url."
    )
    slow = await connect(_fake_config(f"{url}/slow", timeout_s=0.3))
    try:
        timed_out = await run_tool(aws.AWS, slow, "cloudtrail_events")
    finally:
        slow.close()
    assert timed_out.error is not None and "did not answer in time" in timed_out.error
