"""The process's long-lived parts, built once from ``Settings`` and shared by every surface."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from incidentfox.agents.incidents.store import IncidentStore
from incidentfox.agents.investigation import config_problems
from incidentfox.agents.queue import SHARED_STREAM, InProcessRunQueue
from incidentfox.agents.runs.intake import RunIntake
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.stream_queue import StreamRunQueue
from incidentfox.agents.team_slots import LocalTeamSlots, RedisTeamSlots, TeamSlots
from incidentfox.bot.settings import Settings, default_worker_id, revealed
from incidentfox.config.change_bus import RedisConfigChanges
from incidentfox.config.installation_credentials import (
    InstallationCredentials,
    installation_fallbacks,
    parse_org_list,
)
from incidentfox.config.routing import RoutingIndex
from incidentfox.config.secrets import SecretBox, derive_key, load_or_create_key_material
from incidentfox.config.service import ConfigService
from incidentfox.config.token_service import TokenService
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.db.migrate import upgrade_to_head
from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.handlers.pipeline import TriggerPipeline
from incidentfox.knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    config: ConfigService
    tokens: TokenService
    runs: RunStore
    queue: InProcessRunQueue | StreamRunQueue
    pipeline: TriggerPipeline
    incidents: IncidentStore
    knowledge: KnowledgeBase
    config_changes: RedisConfigChanges | None = None
    team_slots: TeamSlots = field(default_factory=LocalTeamSlots)

    async def close(self) -> None:
        if isinstance(self.team_slots, RedisTeamSlots):
            await self.team_slots.close()
        if self.config_changes is not None:
            await self.config_changes.close()
        if isinstance(self.queue, StreamRunQueue):
            await self.queue.close()
        await self.engine.dispose()


async def build_runtime(
    settings: Settings,
    *,
    migrate: bool | None = None,
    consumer: str | None = None,
    serves: Sequence[str] = (SHARED_STREAM,),
) -> Runtime:
    """Connect to the database and assemble the services. SQLite is migrated on start by default.
    With ``REDIS_URL`` the run queue is Redis Streams; ``consumer`` names this process's worker in it."""
    engine = create_engine(settings.database_url)
    if migrate if migrate is not None else settings.is_sqlite:
        await upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    secret = settings.incidentfox_secret_key.get_secret_value() if settings.incidentfox_secret_key else None
    material = load_or_create_key_material(secret, settings.data_dir)
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    if not admin:
        log.info("ADMIN_TOKEN is not set: the admin endpoints of the config API are disabled")
    config = ConfigService(
        sessions,
        SecretBox(material),
        RoutingIndex(sessions),
        installation=InstallationCredentials(
            orgs=parse_org_list(settings.installation_credentials_orgs),
            kubeconfig=settings.kubeconfig,
            fallbacks=installation_fallbacks(
                pagerduty_api_key=revealed(settings.pagerduty_api_key),
                pagerduty_api_url=settings.pagerduty_api_url,
                pagerduty_from_email=settings.pagerduty_from_email,
                github_token=revealed(settings.github_token),
                github_api_url=settings.github_api_url,
                slack_bot_token=revealed(settings.slack_bot_token),
                slack_api_url=settings.slack_api_url,
            ),
        ),
        files_dir=settings.config_files_dir,
    )
    install_policy(EgressPolicy(allow_private=settings.egress_allow_private, org_count=config.org_count))
    config_changes = None
    if settings.redis_url:
        config_changes = RedisConfigChanges(
            settings.redis_url, namespace=settings.redis_namespace, apply=config.apply_change
        )
        await config_changes.start()
        config.changes = config_changes
    runs = RunStore(sessions)
    queue: InProcessRunQueue | StreamRunQueue = InProcessRunQueue()
    team_slots: TeamSlots = LocalTeamSlots()
    if settings.redis_url:
        queue = StreamRunQueue.connect(
            settings.redis_url,
            namespace=settings.redis_namespace,
            consumer=consumer or default_worker_id(settings, "all"),
            serves=serves,
            visibility_timeout_s=settings.run_lease_s,
        )
        team_slots = RedisTeamSlots(queue.redis, namespace=settings.redis_namespace)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        config=config,
        tokens=TokenService(
            sessions, hash_key=derive_key(material, "incidentfox/token-hash"), admin_token=admin
        ),
        runs=runs,
        queue=queue,
        incidents=IncidentStore(sessions),
        knowledge=KnowledgeBase(sessions),
        config_changes=config_changes,
        team_slots=team_slots,
        pipeline=TriggerPipeline(
            routing=config.routing,
            config=config,
            intake=RunIntake(engine, sessions),
            runs=runs,
            queue=queue,
            check_config=config_problems,
            max_depth=settings.queue_max_depth,
        ),
    )
