"""Config URLs pass one egress policy: metadata and link-local never, loopback and private only when
the installation allows them, checked again at connect time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import urllib3

from incidentfox.agents.model_provider import ModelConfigError, TeamModelProvider
from incidentfox.agents.toolsets.kubernetes_api import KubernetesNotConfigured, connect
from incidentfox.egress import EgressPolicy, EgressRefused, checked_pool_classes, install_policy
from incidentfox.emulators.kubernetes import KubernetesEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("crashloop") as k8s:
        yield k8s


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]:6443",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/",
        "http://0.0.0.0:6443",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_metadata_and_link_local_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(EgressRefused, match="never allowed"):
        await EgressPolicy(allow_private=True).check_url(url, setting="api_url")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:6443", "https://10.0.0.5", "http://192.168.1.1", "http://[::1]/", "http://localhost/"],
)
async def test_private_addresses_need_the_installation_s_permission(url: str) -> None:
    with pytest.raises(EgressRefused, match="EGRESS_ALLOW_PRIVATE"):
        await EgressPolicy(allow_private=False).check_url(url, setting="api_url")
    await EgressPolicy(allow_private=True).check_url(url, setting="api_url")


async def test_unset_permission_follows_the_number_of_orgs() -> None:
    orgs = 1

    async def count() -> int:
        return orgs

    policy = EgressPolicy(allow_private=None, org_count=count)
    await policy.check_url("http://127.0.0.1:1", setting="api_url")
    orgs = 2
    with pytest.raises(EgressRefused):
        await policy.check_url("http://127.0.0.1:1", setting="api_url")


async def test_a_kubernetes_api_on_a_private_address_is_refused_with_plain_words(
    emulator: KubernetesEmulator,
) -> None:
    install_policy(EgressPolicy(allow_private=False))
    with pytest.raises(KubernetesNotConfigured, match="private or loopback") as refused:
        await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
    assert emulator.token not in str(refused.value)


async def test_the_check_is_repeated_at_connect_time(emulator: KubernetesEmulator) -> None:
    """A name that resolved to a public address at check time cannot reach a private one later."""
    manager = urllib3.PoolManager()
    manager.pool_classes_by_scheme = checked_pool_classes(private_allowed=False, setting="api_url")
    url = emulator.api_url + "/version"
    with pytest.raises(EgressRefused):
        await asyncio.to_thread(manager.request, "GET", url, retries=False)
    allowed = urllib3.PoolManager()
    allowed.pool_classes_by_scheme = checked_pool_classes(private_allowed=True, setting="api_url")
    response = await asyncio.to_thread(allowed.request, "GET", url, retries=False)
    assert response.status in (200, 401)


async def test_a_connected_client_refuses_when_the_address_turns_private(
    emulator: KubernetesEmulator,
) -> None:
    client = await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )
    client.api.rest_client.pool_manager.pool_classes_by_scheme = checked_pool_classes(
        private_allowed=False, setting="api_url"
    )
    client.api.rest_client.pool_manager.clear()
    with pytest.raises(EgressRefused):
        await client.version()
    client.close()


async def test_a_team_model_endpoint_on_a_metadata_address_is_refused() -> None:
    provider = TeamModelProvider(openai_api_key="sk-installation", openai_base_url=None, default_model="m")
    config = {"model": {"base_url": "http://169.254.169.254/v1", "api_key": "team-key"}}
    with pytest.raises(ModelConfigError, match="never allowed"):
        await provider.checked_model_for(config)
    assert await provider.checked_model_for({}) is not None
    await provider.aclose()
