"""Writes that would choose credentials, weaken TLS or read host files are refused; secrets are
recognised by one definition and the encryption marker cannot be smuggled in as a plain value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from incidentfox.agents.investigation import config_problems
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.bot.server import create_app
from incidentfox.config.installation_credentials import InstallationCredentials, installation_fallbacks
from incidentfox.config.models import NodeConfig
from incidentfox.config.secret_names import is_secret_key
from tests.conftest import Api, make_settings

CONFIG = "/api/v1/orgs/acme/nodes/checkout/config"


@pytest.fixture
async def files_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "kubeconfigs"
    directory.mkdir()
    return directory


@pytest.fixture
async def hardened(sqlite_url: str, tmp_path: Path, files_dir: Path) -> AsyncIterator[Runtime]:
    settings = make_settings(
        sqlite_url,
        tmp_path,
        config_files_dir=files_dir,
        kubeconfig=str(files_dir / "installation"),
        installation_credentials_orgs="acme",
    )
    runtime = await build_runtime(settings, migrate=True)
    yield runtime
    await runtime.close()


@pytest.fixture
async def api(hardened: Runtime) -> AsyncIterator[Api]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(hardened), host="127.0.0.1"))
    await client.start_server()
    yield Api(client)
    await client.close()


async def _acme(api: Api, *, team_writes: bool = True) -> tuple[str, str]:
    admin = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", admin)
    if team_writes:
        await api.ok(
            "PATCH",
            "/api/v1/orgs/acme/nodes/acme/config",
            token=admin,
            json={"access": {"team_tokens_can_patch": True}},
        )
    return admin, await api.team_token("acme", "checkout", admin)


@pytest.mark.parametrize(
    "patch",
    [
        {"integrations": {"kubernetes": {"context": "prod-admin"}}},
        {"integrations": {"kubernetes": {"verify_ssl": False}}},
        {"integrations": {"kubernetes": {"ca_cert": "/etc/ssl/evil.pem"}}},
        {"integrations": {"kubernetes": {"ca_cert_content": "-----BEGIN CERTIFICATE-----"}}},
        {"integrations": {"kubernetes": {"kubeconfig_content": "apiVersion: v1"}}},
        {"integrations": {"prometheus": {"insecure_skip_verify": True}}},
        {"integrations": {"github": {"app_key_path": "/root/key.pem"}}},
    ],
)
async def test_team_tokens_cannot_change_credentials_or_transport_security(
    api: Api, patch: dict[str, Any]
) -> None:
    _, team = await _acme(api)
    status, body = await api.call("PATCH", CONFIG, token=team, json=patch)
    assert status == 403, body
    assert "ask an org admin" in body["message"]


async def test_org_admins_give_kubeconfig_contents_not_paths(api: Api, files_dir: Path) -> None:
    admin, _ = await _acme(api)
    path = str(files_dir / "acme")
    status, body = await api.call(
        "PATCH", CONFIG, token=admin, json={"integrations": {"kubernetes": {"kubeconfig": path}}}
    )
    assert status == 403
    assert "integrations.kubernetes.kubeconfig_content" in body["message"]
    written = await api.ok(
        "PATCH",
        CONFIG,
        token=admin,
        json={"integrations": {"kubernetes": {"kubeconfig_content": "apiVersion: v1\nclusters: []"}}},
    )
    assert written["config"]["integrations"]["kubernetes"]["kubeconfig_content"].startswith("••••")


async def test_the_global_admin_may_set_paths_only_under_the_configured_directory(
    api: Api, files_dir: Path
) -> None:
    await _acme(api)
    inside = {"integrations": {"kubernetes": {"kubeconfig": str(files_dir / "acme")}}}
    await api.ok("PATCH", CONFIG, json=inside)
    for outside in ("/etc/passwd", str(files_dir / ".." / "escape"), "relative/kubeconfig"):
        status, body = await api.call(
            "PATCH", CONFIG, json={"integrations": {"kubernetes": {"ca_cert": outside}}}
        )
        assert status == 400, outside
        assert "CONFIG_FILES_DIR" in body["message"]
    await api.ok("PATCH", CONFIG, json={"labels": {"tier": "1"}})


async def test_no_file_path_is_accepted_when_the_directory_is_unset(runtime: Runtime) -> None:
    from incidentfox.config.permissions import Principal
    from incidentfox.errors import BadRequest

    admin = Principal(kind="admin")
    async with runtime.config.sessions.begin() as session:
        await runtime.config.create_org(session, org_id="acme", name="Acme", actor="test")
    with pytest.raises(BadRequest, match="CONFIG_FILES_DIR is not set"):
        await runtime.config.write_config(
            admin, "acme", "acme", {"integrations": {"kubernetes": {"kubeconfig": "/k"}}}, operation="put"
        )


async def test_a_plain_value_with_the_encryption_marker_is_refused_not_a_500(api: Api) -> None:
    admin, _ = await _acme(api)
    for document in ({"labels": {"note": "enc:v1:hello"}}, {"integrations": {"x": {"token": "enc:v1:zz"}}}):
        status, body = await api.call("PUT", CONFIG, token=admin, json=document)
        assert status == 400, body
        assert "enc:v1:" in body["message"]
    await api.ok("GET", CONFIG, token=admin)


async def test_secret_keys_and_connection_strings_are_encrypted_at_rest(api: Api, hardened: Runtime) -> None:
    admin, _ = await _acme(api)
    document = {
        "integrations": {"datadog": {"app_key": "dd-app-key-0123456789"}},
        "warehouse": {"url": "postgres://report:Pa55-w0rd-xyz@db.internal:5432/dw"},
        "model": {"max_tokens": 4000},
    }
    read = (await api.ok("PUT", CONFIG, token=admin, json=document))["config"]
    assert read["integrations"]["datadog"]["app_key"].startswith("••••")
    assert read["model"]["max_tokens"] == 4000
    async with hardened.sessions() as session:
        row = await session.scalar(select(NodeConfig).where(NodeConfig.node_id == "checkout"))
        assert row is not None
        stored = repr(row.document)
    assert "dd-app-key-0123456789" not in stored
    assert "Pa55-w0rd-xyz" not in stored
    opened = await hardened.config.effective_config("acme", "checkout")
    assert opened["warehouse"]["url"] == "postgres://report:Pa55-w0rd-xyz@db.internal:5432/dw"
    assert opened["integrations"]["datadog"]["app_key"] == "dd-app-key-0123456789"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("app_key", True),
        ("client_secret", True),
        ("refresh_token_value", True),
        ("DB_PASSWORD", True),
        ("private_key", True),
        ("credentials", True),
        ("apiKey", True),
        ("max_tokens", False),
        ("max_output_tokens", False),
        ("token_url", False),
        ("secret_name", False),
        ("namespace", False),
    ],
)
def test_one_definition_of_secret_key_names(key: str, secret: bool) -> None:
    from incidentfox.agents.redaction import is_secret_name

    assert is_secret_key(key) is secret
    assert is_secret_name(key) is secret


async def test_only_allowed_orgs_use_the_installation_kubeconfig(
    api: Api, hardened: Runtime, files_dir: Path
) -> None:
    await _acme(api)
    globex = await api.create_org("globex")
    await api.create_node("globex", "billing", "globex", "team", globex)
    acme_config = await hardened.config.effective_config("acme", "checkout")
    assert acme_config["integrations"]["kubernetes"]["kubeconfig"] == str(files_dir / "installation")
    assert config_problems(acme_config) == []
    globex_config = await hardened.config.effective_config("globex", "billing")
    assert "integrations" not in globex_config
    [problem] = config_problems(globex_config)
    assert "integrations.kubernetes.api_url" in problem
    assert "INSTALLATION_CREDENTIALS_ORGS" in problem


def test_installation_pagerduty_and_github_credentials_fill_only_allowed_teams_without_their_own() -> None:
    installation = InstallationCredentials(
        orgs=frozenset({"acme"}),
        fallbacks=installation_fallbacks(
            pagerduty_api_key="pd-installation-key",
            pagerduty_api_url="https://api.pagerduty.com",
            pagerduty_from_email="bot@acme.example",
            github_token="ghs_installation",
            github_api_url="https://api.github.com",
        ),
    )
    own_channel = {"integrations": {"pagerduty": {"channel_id": "C0PAGES"}}}
    filled = installation.fill("acme", own_channel)
    assert filled["integrations"]["pagerduty"] == {
        "api_key": "pd-installation-key",
        "api_url": "https://api.pagerduty.com",
        "from_email": "bot@acme.example",
        "channel_id": "C0PAGES",
    }
    assert filled["integrations"]["github"]["token"] == "ghs_installation"
    assert installation.fill("globex", own_channel) is own_channel, "an org not named gets nothing"
    redirected = {
        "integrations": {"pagerduty": {"api_url": "https://evil.example"}, "github": {"enabled": False}}
    }
    assert installation.fill("acme", redirected) == redirected, (
        "a team that picks the endpoint never receives the installation's key; a disabled one stays off"
    )


def test_the_installation_slack_bot_token_reads_only_claimed_channels() -> None:
    installation = InstallationCredentials(
        orgs=frozenset({"acme"}),
        fallbacks=installation_fallbacks(
            pagerduty_api_key=None,
            pagerduty_api_url=None,
            pagerduty_from_email=None,
            github_token=None,
            github_api_url=None,
            slack_bot_token="xoxb-installation-bot",
            slack_api_url="http://127.0.0.1:9/api/",
        ),
    )
    claimed = {"routing": {"slack_channel_ids": ["C0CHECKOUT"]}}
    filled = installation.fill("acme", claimed)
    assert filled["integrations"]["slack"] == {
        "bot_token": "xoxb-installation-bot",
        "api_url": "http://127.0.0.1:9/api/",
    }
    extra = {**claimed, "integrations": {"slack": {"channels": ["C0SOMEONE_ELSES"]}}}
    assert installation.fill("acme", extra) == extra, "extra channels are read with the team's own token"
    assert installation.fill("globex", claimed) is claimed
