"""Secrets in config are encrypted at rest, redacted on every read, and decrypted only for the run engine."""

from __future__ import annotations

import json

from sqlalchemy import select

from incidentfox.bot.runtime import Runtime
from incidentfox.config.models import ConfigHistory, NodeConfig
from tests.conftest import Api

SLACK_TOKEN = "xoxb-1111-2222-abcdefghijklmnop"
K8S_TOKEN = "eyJhbGciOiJSUzI1NiJ9.k8s-service-account-token-9876"


async def _setup(api: Api) -> str:
    token = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", token)
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/acme/config",
        token=token,
        json={"integrations": {"slack": {"bot_token": SLACK_TOKEN, "channel_prefix": "inc-"}}},
    )
    await api.ok(
        "PUT",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={
            "integrations": {
                "kubernetes": {
                    "api_url": "https://k8s.internal",
                    "token": K8S_TOKEN,
                    "basic": {"password": "hunter2"},
                }
            },
            "model": {"name": "gpt-4.1", "max_tokens": 4000, "api_key": "sk-local-model-key-000000"},
        },
    )
    return token


async def test_secrets_are_encrypted_at_rest(api: Api, runtime: Runtime) -> None:
    await _setup(api)
    async with runtime.sessions() as session:
        stored = json.dumps([row.document for row in (await session.scalars(select(NodeConfig))).all()])
        history = json.dumps([row.diff for row in (await session.scalars(select(ConfigHistory))).all()])
    for secret in (SLACK_TOKEN, K8S_TOKEN, "hunter2", "sk-local-model-key-000000"):
        assert secret not in stored
        assert secret not in history
    assert "enc:v1:" in stored
    assert "https://k8s.internal" in stored


async def test_every_api_read_redacts_and_the_run_engine_sees_plaintext(api: Api, runtime: Runtime) -> None:
    token = await _setup(api)
    own = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config", token=token)
    kubernetes = own["config"]["integrations"]["kubernetes"]
    assert kubernetes["token"] == "••••9876"
    assert kubernetes["basic"]["password"] == "••••"
    assert own["config"]["model"]["max_tokens"] == 4000
    effective = (await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/effective-config", token=token))[
        "config"
    ]
    assert effective["integrations"]["slack"]["bot_token"] == "••••mnop"
    history = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config/history", token=token)
    assert K8S_TOKEN not in json.dumps(history)

    plain = await runtime.config.effective_config("acme", "checkout")
    assert plain["integrations"]["kubernetes"]["token"] == K8S_TOKEN
    assert plain["integrations"]["slack"]["bot_token"] == SLACK_TOKEN
    plain["integrations"]["kubernetes"]["token"] = "mutated by a caller"
    again = await runtime.config.effective_config("acme", "checkout")
    assert again["integrations"]["kubernetes"]["token"] == K8S_TOKEN


async def test_writing_back_a_redacted_read_keeps_the_secret(api: Api, runtime: Runtime) -> None:
    token = await _setup(api)
    own = await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config", token=token)
    own["config"]["integrations"]["kubernetes"]["api_url"] = "https://k8s2.internal"
    await api.ok("PUT", "/api/v1/orgs/acme/nodes/checkout/config", token=token, json=own["config"])
    plain = await runtime.config.effective_config("acme", "checkout")
    assert plain["integrations"]["kubernetes"]["token"] == K8S_TOKEN
    assert plain["integrations"]["kubernetes"]["basic"]["password"] == "hunter2"
    assert plain["integrations"]["kubernetes"]["api_url"] == "https://k8s2.internal"
    latest = (await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config/history", token=token))["history"][
        0
    ]
    assert latest["diff"] == [
        {"op": "replace", "path": "/integrations/kubernetes/api_url", "value": "https://k8s2.internal"}
    ]


async def test_rotating_a_secret_is_visible_in_history_without_the_value(api: Api, runtime: Runtime) -> None:
    token = await _setup(api)
    await api.ok(
        "PATCH",
        "/api/v1/orgs/acme/nodes/checkout/config",
        token=token,
        json={"integrations": {"kubernetes": {"token": "new-token-value-abcd-1234"}}},
    )
    latest = (await api.ok("GET", "/api/v1/orgs/acme/nodes/checkout/config/history", token=token))["history"][
        0
    ]
    assert latest["diff"] == [
        {"op": "replace", "path": "/integrations/kubernetes/token", "value": "••••1234"}
    ]
    assert (await runtime.config.effective_config("acme", "checkout"))["integrations"]["kubernetes"][
        "token"
    ] == "new-token-value-abcd-1234"


async def test_a_generated_secret_key_is_created_once_with_private_permissions(tmp_path: object) -> None:
    from pathlib import Path

    from incidentfox.config.secrets import load_or_create_key_material

    data_dir = Path(str(tmp_path)) / "data"
    first = load_or_create_key_material(None, data_dir)
    second = load_or_create_key_material(None, data_dir)
    assert first == second
    assert len(first) >= 43
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
