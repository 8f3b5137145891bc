"""Installation settings (design §4), read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import socket
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Installation-wide settings. Per-team ``integrations.*`` config overrides the integration ones."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 3000
    database_url: str = ""
    """Unset: SQLite in the data directory (``sqlite+aiosqlite:///./data/incidentfox.db`` by default)."""
    redis_url: str | None = None
    redis_namespace: str = "incidentfox"
    """Prefix of every Redis key and channel, so installations can share one Redis."""
    admin_token: SecretStr | None = None
    incidentfox_secret_key: SecretStr | None = None
    data_dir: Path = Field(default=Path("./data"), validation_alias="INCIDENTFOX_DATA_DIR")
    worker_id: str | None = None
    """This worker's name in run claims; unset = the host name and role. Keep it stable across restarts
    of the same worker, so it takes its own runs back at once instead of after their lease."""
    worker_concurrency: int = Field(default=500, ge=1)
    """Runs one worker investigates at once; the rest wait in the queue (runs of one thread always wait)."""
    worker_processes: int | None = Field(default=None, ge=0, le=64)
    """Worker processes ``serve`` (role all) starts beside the bot (``--workers N``); ``0`` investigates
    in the bot's own process. Unset: one per CPU core when ``REDIS_URL`` is set (the queue they
    share), else ``0``."""
    run_lease_s: float = Field(default=30.0, ge=1.0, le=600.0)
    """How long a worker's hold on a run (its claim and its queue entry) lasts unless renewed: the
    runs of a worker that died are taken over by another after about this long."""
    queue_max_depth: int = Field(default=500, ge=1)
    """Runs waiting in a queue past which the bot, still acking at once, tells the user the wait."""
    run_resume_max_age_s: float = Field(default=3600.0, gt=0)
    """Runs left unfinished by a restart are resumed only while younger than this; older ones end with
    a message in their thread (``RUN_RESUME_MAX_AGE_S``)."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    incidentfox_model: str = "gpt-4.1"

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None

    github_webhook_secret: SecretStr | None = None
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"

    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_api_key: SecretStr | None = None
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_from_email: str | None = None

    incidentio_webhook_secret: SecretStr | None = None

    kubeconfig: str | None = None
    installation_credentials_orgs: str | None = None
    """Comma-separated org ids whose teams may use the installation's own ``KUBECONFIG`` when they
    configure no cluster of their own; unset = no org may."""
    config_files_dir: Path | None = None
    """The only directory file paths in config may point into (global admin only); unset = none."""
    egress_allow_private: bool | None = None
    """Whether URLs from config may point at loopback or private addresses; unset = only while the
    installation has a single org. Link-local and metadata addresses are refused either way."""

    sandbox_namespace: str | None = None
    """Where ``sandbox.backend: kubernetes`` sessions get their pods; unset = that backend is off."""
    sandbox_image: str = "ghcr.io/incidentfox/sre-sandbox:latest"
    """The sandbox pods' image: the Claude Code CLI (``SANDBOX_CLI_PATH``), ``sh``, ``env``, ``timeout``."""
    sandbox_cli_path: str = "/usr/local/bin/claude"
    sandbox_kubeconfig: str | None = None
    """The kubeconfig IncidentFox manages sandbox pods with; unset = its in-cluster service account."""
    sandbox_proxy_host: str | None = None
    """How sandbox pods reach IncidentFox's model proxy (best its Service's ClusterIP: no DNS needed)."""
    sandbox_proxy_port: int = Field(default=8788, ge=1, le=65535)
    """The port the model proxy listens on for pods (all interfaces); every request needs a session token."""
    sandbox_proxy_pod_labels: str = "app.kubernetes.io/name=incidentfox"
    """``k=v,k2=v2``: the labels of IncidentFox's pods, which the sandbox NetworkPolicy allows egress to."""
    sandbox_proxy_namespace: str | None = None
    """The namespace of IncidentFox's pods; unset = the sandbox namespace."""

    local_workspace: bool = True
    """With no Slack credentials, run Slack in-process and serve the local web workspace at ``/``."""
    incidentfox_demo: bool = True
    """Seed the ``demo`` org on first start in local-workspace mode (``INCIDENTFOX_DEMO=0`` turns it off)."""

    @model_validator(mode="after")
    def _database_in_the_data_dir(self) -> Settings:
        """The default SQLite file lives beside the generated key, wherever ``INCIDENTFOX_DATA_DIR`` is:
        a database without its key cannot decrypt its secrets."""
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'incidentfox.db'}"
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def revealed(value: SecretStr | None) -> str | None:
    """A secret setting's value, or ``None`` when it is unset."""
    return value.get_secret_value() if value is not None else None


def default_worker_id(settings: Settings, role: str) -> str:
    """``WORKER_ID``, else the host name and role: stable across restarts of the same process, so a
    restarted worker takes its own claimed runs back at once."""
    return settings.worker_id or f"{socket.gethostname()}-{role}"


def redacted_url(url: str | None) -> str:
    """``url`` without its password, for logs."""
    if not url:
        return "unset"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
