"""RFC 7396 JSON Merge Patch, and the effective config as the root-first merge of a node's ancestors."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``target`` per RFC 7396 without mutating either.

    Objects merge recursively; a ``null`` member deletes the key; any non-object patch replaces.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def effective_config(chain: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge the configs of a node's ancestors (root first, the node itself last)."""
    result: dict[str, Any] = {}
    for document in chain:
        merged = merge_patch(result, document)
        result = merged if isinstance(merged, dict) else {}
    return result
