"""A real moto server (``ThreadedMotoServer``: AWS' APIs over HTTP on a free loopback port) seeded with
a small production account for the aws toolset's tests.

The account (``eu-west-1``) has a checkout service in trouble: the ``checkout-5xx`` alarm in ALARM with
its reason, an hour of ``HTTPCode_Target_5XX_Count`` rising on the checkout load balancer, a
``/ecs/checkout`` log group with errors, an ECS service running 0 of 3 tasks, two EC2 instances
behind the ``checkout-tg`` target group of which one is stopped (so unhealthy), an RDS instance, an EKS
cluster with a node group and a Lambda function. Two checkout tasks stopped (an exit and a failed health
check) beside a migration task; ``/aws/lambda/checkout-webhook`` keeps its logs 14 days; the
``checkout-jobs`` queue has a backlog (3 visible, 2 in flight, its oldest message 840 s old) and a
dead-letter queue; the on-demand ``orders`` DynamoDB table throttled 42 writes; the ``checkout-asg``
Auto Scaling group has 3 instances, one unhealthy (moto records no scaling activities: those come from
the aiohttp endpoint). One instance carries a tag whose value is the team's
secret key (``LEAKED_TAG``): a secret that leaked into a tag must never reach the model.

moto does not implement CloudTrail's LookupEvents nor record scaling activities; those tests use a tiny
aiohttp endpoint instead.
Without moto the tests are skipped, or fail with ``INCIDENTFOX_REQUIRE_MOTO=1`` (CI).
"""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

REGION = "eu-west-1"
ACCOUNT = "123456789012"
KEY_ID = "AKIAMOTOTEST00000001"
SECRET = "moto-team-secret-Qz7Lw9Hn2Xc4Vb6N"
"""The team's secret access key (moto accepts any), also planted in an instance tag."""
LEAKED_TAG = "bootstrap-password"
LOG_GROUP = "/ecs/checkout"
LB_DIMENSION = "app/checkout-alb/50dc6c495c0c9188"


def require_moto() -> None:
    """Skip when moto is missing, unless CI says it must be there (``pip install -e .[dev]``)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        reason = "moto[server] is not installed (pip install 'moto[server]')"
        if os.environ.get("INCIDENTFOX_REQUIRE_MOTO") == "1":
            pytest.fail(reason + " (INCIDENTFOX_REQUIRE_MOTO=1)")
        pytest.skip(reason)


@dataclass
class MotoAccount:
    url: str
    running_instance: str
    stopped_instance: str
    target_group_arn: str

    def config(self, **settings: Any) -> dict[str, Any]:
        aws = {
            "region": REGION,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "endpoint_url": self.url,
            **settings,
        }
        return {"integrations": {"aws": aws}}


def _client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def _seed_cloudwatch(url: str, now: datetime) -> None:
    cloudwatch = _client(url, "cloudwatch")
    dimensions = [{"Name": "LoadBalancer", "Value": LB_DIMENSION}]
    for name, metric in (
        ("checkout-5xx", "HTTPCode_Target_5XX_Count"),
        ("checkout-latency", "TargetResponseTime"),
    ):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"{metric} on the checkout ALB",
            Namespace="AWS/ApplicationELB",
            MetricName=metric,
            Dimensions=dimensions,
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=3,
            Threshold=50.0,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(
        AlarmName="checkout-5xx",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 3 datapoints [212.0, 190.0, 175.0] were greater than the "
        "threshold (50.0).",
    )
    cloudwatch.set_alarm_state(AlarmName="checkout-latency", StateValue="OK", StateReason="back to normal")
    points = [
        {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": dimensions,
            "Timestamp": now - timedelta(minutes=minutes),
            "Value": 2.0 if minutes > 20 else 200.0,
        }
        for minutes in range(55, -1, -5)
    ]
    cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=points)


def _seed_logs(url: str, now: datetime) -> None:
    logs = _client(url, "logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="checkout/app/1")
    start = now - timedelta(minutes=30)
    messages = [
        "GET /cart 200 12ms",
        "ERROR payment gateway timeout after 5000ms order=8812",
        "GET /cart 200 14ms",
        "ERROR payment gateway timeout after 5000ms order=8813",
        "POST /checkout 502 5003ms",
    ]
    events = [
        {"timestamp": int((start + timedelta(minutes=i)).timestamp() * 1000), "message": message}
        for i, message in enumerate(messages)
    ]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="checkout/app/1", logEvents=events)
    logs.create_log_group(logGroupName="/aws/lambda/checkout-webhook")
    logs.put_retention_policy(logGroupName="/aws/lambda/checkout-webhook", retentionInDays=14)
    logs.create_log_group(logGroupName="/aws/rds/instance/orders-db/postgresql")


def _seed_compute(url: str) -> tuple[str, str, str]:
    ec2 = _client(url, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    ids = []
    for index, extra in enumerate(({"Key": "DB_PASSWORD", "Value": SECRET}, {"Key": "role", "Value": "web"})):
        tags = [
            {"Key": "Name", "Value": f"checkout-{index + 1}"},
            {"Key": "service", "Value": "checkout"},
            extra,
        ]
        made = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.medium",
            SubnetId=subnets[index],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        ids.append(made["Instances"][0]["InstanceId"])
    elb = _client(url, "elbv2")
    balancer = elb.create_load_balancer(Name="checkout-alb", Subnets=subnets)["LoadBalancers"][0]
    group = elb.create_target_group(Name="checkout-tg", Protocol="HTTP", Port=8080, VpcId=vpc)[
        "TargetGroups"
    ][0]
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    elb.register_targets(
        TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": i, "Port": 8080} for i in ids]
    )
    ec2.stop_instances(InstanceIds=[ids[1]])
    scaling = _client(url, "autoscaling")
    scaling.create_launch_configuration(
        LaunchConfigurationName="checkout-lc", ImageId=image, InstanceType="t3.medium"
    )
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="checkout-asg",
        LaunchConfigurationName="checkout-lc",
        MinSize=2,
        MaxSize=6,
        DesiredCapacity=3,
        VPCZoneIdentifier=",".join(subnets),
    )
    members = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=["checkout-asg"])
    sick = members["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    scaling.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    eks = _client(url, "eks")
    role = f"arn:aws:iam::{ACCOUNT}:role/eks"
    eks.create_cluster(
        name="prod-eks", version="1.31", roleArn=role, resourcesVpcConfig={"subnetIds": subnets}
    )
    eks.create_nodegroup(clusterName="prod-eks", nodegroupName="general", subnets=subnets, nodeRole=role)
    return ids[0], ids[1], group["TargetGroupArn"]


def _seed_services(url: str) -> None:
    ecs = _client(url, "ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="checkout", containerDefinitions=[{"name": "app", "image": "checkout:1.4.2", "memory": 512}]
    )
    ecs.create_service(cluster="prod", serviceName="checkout", taskDefinition="checkout", desiredCount=3)
    stops = (
        ("service:checkout", "Essential container in task exited"),
        ("service:checkout", "Task failed ELB health checks in (target-group checkout-tg)"),
        ("family:migrate", "Scheduled migration finished"),
    )
    for group, reason in stops:
        [task] = ecs.run_task(
            cluster="prod",
            taskDefinition="checkout",
            launchType="FARGATE",
            group=group,
            startedBy="ecs-svc/1",
        )["tasks"]
        ecs.stop_task(cluster="prod", task=task["taskArn"], reason=reason)
    _client(url, "rds").create_db_instance(
        DBInstanceIdentifier="orders-db",
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        MasterUsername="orders",
        MasterUserPassword="not-used-here-1",
        AllocatedStorage=20,
    )
    iam = _client(url, "iam")
    role = iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handle(event, context):\n    return 'ok'\n")
    _client(url, "lambda").create_function(
        FunctionName="checkout-webhook",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
    )


def _seed_queues_and_tables(url: str, now: datetime) -> None:
    sqs = _client(url, "sqs")
    dead = sqs.create_queue(QueueName="checkout-jobs-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"})
    jobs = sqs.create_queue(
        QueueName="checkout-jobs", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "300"}
    )["QueueUrl"]
    for number in range(5):
        sqs.send_message(QueueUrl=jobs, MessageBody=f"charge order={8810 + number}")
    sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=2)
    sqs.create_queue(QueueName="billing-events")
    _client(url, "dynamodb").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cloudwatch = _client(url, "cloudwatch")
    age = {
        "MetricName": "ApproximateAgeOfOldestMessage",
        "Dimensions": [{"Name": "QueueName", "Value": "checkout-jobs"}],
    }
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {**age, "Timestamp": now - timedelta(minutes=minutes), "Value": value}
            for minutes, value in ((10, 300.0), (5, 840.0))
        ],
    )
    throttles = [
        {
            "MetricName": "WriteThrottleEvents",
            "Dimensions": [{"Name": "TableName", "Value": "orders"}],
            "Timestamp": now - timedelta(minutes=minutes),
            "Value": value,
        }
        for minutes, value in ((30, 0.0), (20, 12.0), (10, 30.0))
    ]
    cloudwatch.put_metric_data(Namespace="AWS/DynamoDB", MetricData=throttles)


def _reset(url: str) -> None:
    """Empty every moto backend: they are process-wide, so an earlier test module's account (another
    server in the same pytest process) would otherwise still be there, and seeding would collide."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@contextmanager
def running_moto() -> Iterator[MotoAccount]:
    """Start moto on a free loopback port, seed the account, stop it afterwards."""
    require_moto()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        _reset(url)
        now = datetime.now(UTC).replace(microsecond=0)
        _seed_cloudwatch(url, now)
        _seed_logs(url, now)
        running, stopped, group = _seed_compute(url)
        _seed_services(url)
        _seed_queues_and_tables(url, now)
        yield MotoAccount(url=url, running_instance=running, stopped_instance=stopped, target_group_arn=group)
    finally:
        server.stop()
