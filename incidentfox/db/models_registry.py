"""Imports every ORM model so that ``metadata`` is complete for migrations and tests."""

from __future__ import annotations

from incidentfox.agents.approvals import models as approval_models
from incidentfox.agents.incidents import models as incident_models
from incidentfox.agents.runs import models as run_models
from incidentfox.config import models as config_models
from incidentfox.db.base import Base
from incidentfox.knowledge import models as knowledge_models
from incidentfox.sandboxes import models as sandbox_models
from incidentfox.schedules import models as schedule_models

metadata = Base.metadata

__all__ = [
    "approval_models",
    "config_models",
    "incident_models",
    "knowledge_models",
    "metadata",
    "run_models",
    "sandbox_models",
    "schedule_models",
]
