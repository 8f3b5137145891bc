"""Node ids: ``[a-z0-9][a-z0-9-]{0,62}``."""

from __future__ import annotations

import re

from incidentfox.errors import BadRequest

NODE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def validate_node_id(value: object, *, field: str = "node_id") -> str:
    if not isinstance(value, str) or NODE_ID_PATTERN.fullmatch(value) is None:
        raise BadRequest(
            f"{field} must match [a-z0-9][a-z0-9-]{{0,62}} (lowercase letters, digits and '-', "
            f"starting with a letter or digit, at most 63 characters); got {value!r}"[:300],
            code="invalid_id",
        )
    return value
