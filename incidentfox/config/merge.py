"""RFC 7396 JSON Merge Patch, and the effective config as the root-first merge of a node's ancestors."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
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


ConfigPath = tuple[str, ...]


def value_sources(chain: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[ConfigPath, str]:
    """Which node set each leaf of the effective config: ``{("model", "name"): "acme", ...}``.

    ``chain`` is ``(node_id, own_document)`` pairs, root first, the node itself last. It follows the
    same RFC 7396 steps as ``effective_config``: a ``null`` removes the inherited key (and its source),
    and a value that replaces an object drops that object's children and their sources. A leaf is any
    non-object value (lists included) or an empty object.
    """
    effective: dict[str, Any] = {}
    sources: dict[ConfigPath, str] = {}
    for node_id, document in chain:
        if isinstance(document, Mapping):
            _trace(effective, document, (), node_id, sources)
    return {path: sources[path] for path in _leaf_paths(effective, ())}


def _trace(
    target: dict[str, Any],
    patch: Mapping[str, Any],
    prefix: ConfigPath,
    node_id: str,
    sources: dict[ConfigPath, str],
) -> None:
    for key, value in patch.items():
        path = (*prefix, key)
        if value is None:
            target.pop(key, None)
            _forget(sources, path)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                _forget(sources, path)
                current = target[key] = {}
                sources[path] = node_id
            _trace(current, value, path, node_id, sources)
        else:
            _forget(sources, path)
            target[key] = value
            sources[path] = node_id


def _forget(sources: dict[ConfigPath, str], path: ConfigPath) -> None:
    """Drop the source of ``path`` and of everything under it. Every object recorded its own path when it
    was created, so a path with no entry has no descendants either and costs nothing."""
    if path not in sources:
        return
    depth = len(path)
    for known in [p for p in sources if p[:depth] == path]:
        del sources[known]


def _leaf_paths(value: dict[str, Any], prefix: ConfigPath) -> Iterable[ConfigPath]:
    for key, child in value.items():
        path = (*prefix, key)
        if isinstance(child, dict) and child:
            yield from _leaf_paths(child, path)
        else:
            yield path
