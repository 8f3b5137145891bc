"""The connection half of the aws toolset: a boto3 session built only from the team's config, its
clients, AWS' failures in plain words, and the health check.

``connect`` reads the team's ``integrations.aws``: ``region`` (required), ``access_key_id`` and
``secret_access_key`` (plus ``session_token`` for temporary keys), optionally ``role_arn`` to assume
with them through STS (``external_id`` if the role asks for one), ``endpoint_url`` (a VPC endpoint, or
a test server) and ``timeout_s`` (default 20).

The host's own AWS identity is never used: no environment variables, no ``~/.aws`` files, no instance
metadata. The botocore session gets every setting as a constant (``_isolated_core_session``) and the
keys explicitly, so a key missing from config is a configuration error, never a silent fallback to
whatever the machine IncidentFox runs on can do. ``endpoint_url`` passes the egress policy when
connecting and again whenever a connection is opened, like every URL that comes from config.

boto3 is synchronous: every call runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    ChainProvider,
    ConstantProvider,
    InstanceVarProvider,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ParamValidationError,
    ReadTimeoutError,
)

from incidentfox.agents.toolsets.base import ToolsetHealth, lookup_dotted
from incidentfox.egress import EgressRefused, checked_pool_classes, current_policy

ENDPOINT_SETTING = "integrations.aws.endpoint_url"
DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 120.0
_MAX_MESSAGE = 300
NOT_CONFIGURED = (
    "AWS is not configured for this team: set integrations.aws.region and either "
    "access_key_id + secret_access_key, or those plus role_arn to assume."
)
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "logs": "logs", "lambda": "lambda"}
"""The IAM action prefix of a boto3 service name, where the two differ."""
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedException",
    "AuthorizationErrorException",
}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


class AwsNotConfigured(Exception):
    """No usable AWS configuration; the message says what to set."""


class AwsError(Exception):
    """A call that failed; ``str(exc)`` is one plain sentence. ``not_found`` marks an unknown resource."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


def aws_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.aws")
    return settings if isinstance(settings, Mapping) else {}


def _isolated_core_session() -> botocore.session.Session:
    """A botocore session that reads nothing from the host: every setting is its built-in default
    (config and credentials files point at the null device), so ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``,
    ``AWS_CONFIG_FILE`` and the like are ignored."""
    core = botocore.session.Session()
    store = core.get_component("config_store")
    fixed = {
        "config_file": os.devnull,
        "credentials_file": os.devnull,
        "ignore_configured_endpoint_urls": True,
    }
    for name, (_, _, default, _) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items():
        value = ConstantProvider(fixed.get(name, default))
        store.set_config_provider(name, ChainProvider([InstanceVarProvider(name, core), value]))
    return core


def _session(region: str, key_id: str, secret: str, token: str | None) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=region,
        botocore_session=_isolated_core_session(),
    )


@dataclass(slots=True)
class AwsClient:
    """The per-run connection: a boto3 session with explicit credentials and its clients."""

    session: boto3.Session
    region: str
    endpoint_url: str | None
    timeout_s: float
    private_allowed: bool = False
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        """The boto3 client for ``service``; made once. With ``endpoint_url`` its connections pass the
        egress policy when they are opened."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make(service)
            return self._clients[service]

    def _make(self, service: str) -> Any:
        """boto3 sessions are not thread-safe; clients are (``_lock`` guards the making)."""
        made = self.session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            verify=True,
            config=botocore_config(self.timeout_s),
        )
        if self.endpoint_url:
            # botocore offers no public hook for its urllib3 pools; the kubernetes toolset does the same.
            manager = made._endpoint.http_session._manager
            manager.pool_classes_by_scheme = checked_pool_classes(
                private_allowed=self.private_allowed, setting=ENDPOINT_SETTING
            )
        return made

    async def call(self, service: str, operation: str, *, doing: str, **kwargs: Any) -> Any:
        """``client(service).<operation>(**kwargs)`` in a worker thread; raises ``AwsError``."""
        return await self.run(service, lambda client: getattr(client, operation)(**kwargs), doing=doing)

    async def pages(
        self, service: str, operation: str, key: str, *, doing: str, limit: int, **kwargs: Any
    ) -> list[Any]:
        """Up to ``limit`` items under ``key`` across the pages of a paginated operation."""

        def collect(client: Any) -> list[Any]:
            found: list[Any] = []
            for page in client.get_paginator(operation).paginate(**kwargs):
                found.extend(page.get(key) or [])
                if len(found) >= limit:
                    break
            return found

        return await self.run(service, collect, doing=doing)

    async def run(self, service: str, work: Callable[[Any], Any], *, doing: str) -> Any:
        try:
            return await asyncio.to_thread(lambda: work(self.client(service)))
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)[0] if isinstance(exc, ClientError) else ""
            message = describe_error(exc, service, doing, self.where)
            raise AwsError(message, not_found=is_not_found(code)) from exc

    @property
    def where(self) -> str:
        return f"{self.region} at {self.endpoint_url}" if self.endpoint_url else self.region

    def close(self) -> None:
        for made in self._clients.values():
            made.close()
        self._clients.clear()


def botocore_config(timeout_s: float) -> Config:
    return Config(
        connect_timeout=min(timeout_s, 5.0),
        read_timeout=timeout_s,
        retries={"max_attempts": 2, "mode": "standard"},
        proxies={},
        user_agent_extra="IncidentFox",
    )


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


def _error_code(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error") or {}
    message = " ".join(str(error.get("Message") or "").split())
    return str(error.get("Code") or "Unknown"), message[:_MAX_MESSAGE]


_NOT_FOUND = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}
"""Not-found codes that do not end in NotFound (SQS, in its JSON and its query protocol)."""


def is_not_found(code: str) -> bool:
    return (
        code.endswith(("NotFound", "NotFoundException", "NotFoundFault"))
        or ".NotFound" in code
        or code in _NOT_FOUND
    )


def describe_error(exc: Exception, service: str, doing: str, where: str) -> str:
    """One plain sentence for a failed call: which permission is missing, that AWS throttled, that the
    credentials are wrong, that the endpoint is unreachable. Never the credentials themselves."""
    if isinstance(exc, ClientError):
        code, message = _error_code(exc)
        operation = exc.operation_name
        if code in _DENIED:
            return (
                f"AWS denied the request to {doing} ({code}): the credentials lack the "
                f"{iam_action(service, operation)} permission; add it to the IAM policy of IncidentFox's "
                "user or role."
            )
        if code in _THROTTLED:
            return f"AWS throttled the request to {doing} ({code}), try again in a moment."
        if code in _BAD_CREDENTIALS:
            return (
                f"AWS rejected the credentials ({code}) when asked to {doing}: check "
                "integrations.aws.access_key_id and secret_access_key (and session_token for temporary keys)."
            )
        if code in _EXPIRED:
            return (
                f"The AWS credentials have expired ({code}): set new keys in integrations.aws, or use a "
                "role_arn so that IncidentFox assumes the role for each run."
            )
        if code.isdigit() or message.startswith("<"):
            return (
                f"AWS ({where}) answered {code} when asked to {doing}, not an AWS error; it may be having "
                "trouble, try again in a minute (or check endpoint_url)."
            )
        detail = f": {message}" if message else ""
        if is_not_found(code):
            return f"Not found in {where} when asked to {doing}{detail} ({code})."
        return f"AWS refused to {doing}{detail} ({code})."
    if isinstance(exc, HTTPClientError) and isinstance(exc.kwargs.get("error"), EgressRefused):
        return f"Refused to {doing}: {exc.kwargs['error']}"
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return (
            f"AWS ({where}) did not answer in time when asked to {doing}; narrow the request or raise "
            "integrations.aws.timeout_s."
        )
    if isinstance(exc, EndpointConnectionError | HTTPClientError):
        return f"AWS ({where}) is unreachable, could not {doing}: check the region and endpoint_url."
    if isinstance(exc, ParamValidationError):
        reason = " ".join(str(exc).split())[:_MAX_MESSAGE]
        return f"Could not {doing}, the request is not valid: {reason} Correct it and try again."
    return f"Could not {doing}: {type(exc).__name__}."


def _timeout(settings: Mapping[str, Any]) -> float:
    raw = settings.get("timeout_s")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise AwsNotConfigured("integrations.aws.timeout_s must be a positive number of seconds.")
    return min(float(raw), MAX_TIMEOUT_S)


def _text(settings: Mapping[str, Any], key: str) -> str | None:
    value = settings.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AwsNotConfigured(f"integrations.aws.{key} must be text.")
    return value.strip()


async def _endpoint(settings: Mapping[str, Any]) -> tuple[str | None, bool]:
    raw = _text(settings, "endpoint_url")
    policy = current_policy()
    allowed = await policy.private_allowed()
    if raw is None:
        return None, allowed
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AwsNotConfigured(f"{ENDPOINT_SETTING} must be an http:// or https:// URL.")
    if parts.username or parts.password or parts.query:
        raise AwsNotConfigured(f"{ENDPOINT_SETTING} must not carry user info or a query.")
    try:
        await policy.check_url(raw, setting=ENDPOINT_SETTING)
    except EgressRefused as exc:
        raise AwsNotConfigured(f"Refused to connect: {exc}") from exc
    return raw.rstrip("/"), allowed


async def connect(config: Mapping[str, Any], *, timeout_s: float | None = None) -> AwsClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``AwsNotConfigured`` in plain words when nothing usable is configured, the egress policy
    refuses ``endpoint_url`` or the role cannot be assumed. Without ``role_arn`` no request is made.
    """
    settings = aws_settings(config)
    if settings.get("enabled") is False:
        raise AwsNotConfigured("AWS is turned off for this team (integrations.aws.enabled is false).")
    region = _text(settings, "region")
    key_id, secret = _text(settings, "access_key_id"), _text(settings, "secret_access_key")
    if not region or not key_id or not secret:
        raise AwsNotConfigured(NOT_CONFIGURED)
    endpoint_url, private_allowed = await _endpoint(settings)
    total = timeout_s if timeout_s is not None else _timeout(settings)
    session = _session(region, key_id, secret, _text(settings, "session_token"))
    client = AwsClient(session, region, endpoint_url, total, private_allowed)
    role_arn = _text(settings, "role_arn")
    if role_arn:
        client = await _assume_role(client, role_arn, _text(settings, "external_id"))
    return client


async def _assume_role(client: AwsClient, role_arn: str, external_id: str | None) -> AwsClient:
    """The client with the role's temporary credentials (valid one hour, longer than any run)."""
    extra = {"ExternalId": external_id} if external_id else {}
    try:
        answer = await client.call(
            "sts",
            "assume_role",
            doing=f"assume the role {role_arn}",
            RoleArn=role_arn,
            RoleSessionName="incidentfox",
            DurationSeconds=3600,
            **extra,
        )
    except AwsError as exc:
        raise AwsNotConfigured(str(exc)) from exc
    finally:
        client.close()
    keys = answer["Credentials"]
    session = _session(client.region, keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
    return AwsClient(session, client.region, client.endpoint_url, client.timeout_s, client.private_allowed)


async def check_health(config: Mapping[str, Any], *, timeout_s: float) -> ToolsetHealth:
    """STS GetCallerIdentity: proves the keys (and the role) are accepted and AWS is reachable. A healthy
    result names the account in ``reason``."""
    settings = aws_settings(config)
    if not settings.get("region") and not settings.get("access_key_id"):
        return ToolsetHealth(configured=False, reason="no region or credentials are set")
    try:
        client = await connect(config, timeout_s=timeout_s)
    except AwsNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        identity = await client.call("sts", "get_caller_identity", doing="confirm who IncidentFox is")
    except AwsError as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        client.close()
    return ToolsetHealth(configured=True, healthy=True, reason=f"account {identity.get('Account')}")
