"""Starting on a database written with another secret key: a plain message and exit 1, no traceback;
and the default SQLite file lives in ``INCIDENTFOX_DATA_DIR`` beside the key that opens it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.serve_process import ServeProcess
from incidentfox.bot.settings import Settings


def test_the_default_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, INCIDENTFOX_DATA_DIR=tmp_path)  # type: ignore[call-arg]
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/incidentfox.db"
    explicit = Settings(_env_file=None, database_url="postgresql+asyncpg://u@h/db")  # type: ignore[call-arg]
    assert explicit.database_url == "postgresql+asyncpg://u@h/db"


async def test_a_changed_secret_key_stops_the_start_with_a_plain_message(tmp_path: Path) -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REDIS_", "DATABASE_", "INCIDENTFOX_"))
    }
    env = {**base, "INCIDENTFOX_DATA_DIR": str(tmp_path), "PORT": "0", "PYTHONUNBUFFERED": "1"}
    first = ServeProcess({**env, "INCIDENTFOX_SECRET_KEY": "first-key-" + "a" * 32}, tmp_path / "first.log")
    await first.start()
    assert "demo" in first.log_text(), "the demo org (with its integration secrets) was seeded"
    assert await first.stop() == 0

    second = ServeProcess({**env, "INCIDENTFOX_SECRET_KEY": "other-key-" + "b" * 32}, tmp_path / "second.log")
    with pytest.raises(RuntimeError, match="serve did not start"):
        await second.start(timeout=60)
    assert second.process is not None and await second.process.wait() == 1
    log = second.log_text()
    assert "cannot start: a stored secret cannot be decrypted with this INCIDENTFOX_SECRET_KEY" in log
    assert "Traceback" not in log
