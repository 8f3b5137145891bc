"""Alembic environment. Runs on a connection handed in by ``incidentfox.db.migrate`` or, from the
``alembic`` command line, on a fresh async engine built from ``DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from incidentfox.db.models_registry import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    from incidentfox.bot.settings import Settings
    from incidentfox.db.engine import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or Settings().database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `incidentfox migrate`")

handed_in = config.attributes.get("connection")
if handed_in is not None:
    _run(handed_in)
else:
    asyncio.run(_run_with_new_engine())
