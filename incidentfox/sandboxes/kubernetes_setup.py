"""The ``kubernetes`` sandbox backend as an installation sets it up (``SANDBOX_*`` settings).

Pods reach the model proxy over the cluster network, so with this backend on, IncidentFox serves the
proxy on TCP too (``SANDBOX_PROXY_PORT``, all interfaces; each request still needs a live session
token) and gives pods its address (``SANDBOX_PROXY_HOST``) and its pods' labels for the sandbox
NetworkPolicy. The pods' API identity is IncidentFox's in-cluster service account, or
``SANDBOX_KUBECONFIG``. Nothing here is read from a team's config: which cluster runs sandboxes is
the installation's decision, not a team's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from incidentfox.bot.settings import Settings
from incidentfox.sandboxes.backends.base import ProxyEndpoint, SandboxUnavailable
from incidentfox.sandboxes.backends.kubernetes import KubernetesBackend
from incidentfox.sandboxes.backends.kubernetes_manifests import PodSettings

KUBERNETES_OFF = (
    "This team's `sandbox.backend` is `kubernetes`, but this IncidentFox installation has no sandbox "
    "namespace (`SANDBOX_NAMESPACE`) and no address for pods to reach it (`SANDBOX_PROXY_HOST`). Ask "
    "whoever runs IncidentFox to set them, or set `sandbox.backend: local` for a bubblewrap sandbox."
)
NO_CLUSTER = "IncidentFox cannot reach the cluster for sandbox pods: {detail}"


@dataclass(frozen=True, slots=True)
class KubernetesSandboxes:
    backend: KubernetesBackend
    endpoint: ProxyEndpoint
    listen_port: int


def proxy_pod_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict; a pair without ``=`` is a mistake worth refusing at start."""
    labels: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"SANDBOX_PROXY_POD_LABELS: {pair!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def _api_client(settings: Settings) -> k8s.ApiClient:
    try:
        if settings.sandbox_kubeconfig:
            return k8s_config.new_client_from_config(config_file=settings.sandbox_kubeconfig)
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return k8s.ApiClient(configuration)
    except (k8s_config.ConfigException, OSError) as exc:
        raise SandboxUnavailable(NO_CLUSTER.format(detail=exc)) from exc


def kubernetes_sandboxes(settings: Settings, runtime_dir: Path) -> KubernetesSandboxes | None:
    """The backend and the proxy endpoint pods use; ``None`` when the installation has not set it up.
    ``SandboxUnavailable`` (plain words) when it is set up but the cluster's credentials do not load."""
    if not settings.sandbox_namespace or not settings.sandbox_proxy_host:
        return None
    pods = PodSettings(
        namespace=settings.sandbox_namespace,
        image=settings.sandbox_image,
        cli_path=settings.sandbox_cli_path,
    )
    endpoint = ProxyEndpoint(
        host=settings.sandbox_proxy_host,
        port=settings.sandbox_proxy_port,
        pod_labels=proxy_pod_labels(settings.sandbox_proxy_pod_labels),
        namespace=settings.sandbox_proxy_namespace or settings.sandbox_namespace,
    )
    kubeconfig = Path(settings.sandbox_kubeconfig) if settings.sandbox_kubeconfig else None
    backend = KubernetesBackend(_api_client(settings), pods, kubeconfig=kubeconfig, runtime_dir=runtime_dir)
    return KubernetesSandboxes(backend, endpoint, settings.sandbox_proxy_port)
