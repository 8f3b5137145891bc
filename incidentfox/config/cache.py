"""In-process cache of effective configs, invalidated on any write to a node or one of its ancestors."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

NodeKey = tuple[str, str]


@dataclass(slots=True)
class CachedEffective:
    """``stored`` is the merged document as stored (secrets still encrypted); ``opened`` memoises it
    with secrets decrypted, for the run engine (in memory only, never rendered)."""

    stored: dict[str, Any]
    chain: tuple[str, ...]
    opened: dict[str, Any] | None = None


class EffectiveConfigCache:
    """Maps a node to its merged config; each entry remembers its ancestor chain.

    A reverse index from every ancestor to the entries below it makes invalidating a subtree O(entries
    affected), so a write to an org drops its teams' entries and a write to a team drops only its own.
    """

    def __init__(self) -> None:
        self._entries: dict[NodeKey, CachedEffective] = {}
        self._dependents: dict[NodeKey, set[NodeKey]] = defaultdict(set)

    def get(self, org_id: str, node_id: str) -> CachedEffective | None:
        return self._entries.get((org_id, node_id))

    def put(self, org_id: str, node_id: str, entry: CachedEffective) -> None:
        key = (org_id, node_id)
        self._entries[key] = entry
        for ancestor in entry.chain:
            self._dependents[(org_id, ancestor)].add(key)

    def invalidate(self, org_id: str, node_id: str) -> None:
        """Drop the node's entry and every cached entry of its descendants."""
        node = (org_id, node_id)
        for dependent in self._dependents.pop(node, set()) | {node}:
            self._entries.pop(dependent, None)

    def clear(self) -> None:
        self._entries.clear()
        self._dependents.clear()

    def __len__(self) -> int:
        return len(self._entries)
