"""Property: a node's effective config is the root-first merge of its ancestors' stored configs."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentfox.bot.runtime import Runtime
from incidentfox.config.merge import merge_patch
from incidentfox.config.permissions import Principal

ADMIN = Principal(kind="admin")
_orgs = itertools.count()

leaf = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "prod"]))
key = st.sampled_from(["agent", "timeout", "labels", "integrations", "x"])
document = st.recursive(
    st.dictionaries(key, st.one_of(leaf, st.none()), max_size=3),
    lambda inner: st.dictionaries(key, st.one_of(leaf, st.none(), inner), max_size=3),
    max_leaves=10,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chain=st.lists(document, min_size=2, max_size=5), team_last=st.booleans())
async def test_effective_config_is_the_root_first_merge_of_the_ancestors(
    runtime: Runtime, chain: list[dict[str, Any]], team_last: bool
) -> None:
    org = f"org-{next(_orgs)}"
    async with runtime.config.sessions.begin() as session:
        await runtime.config.create_org(session, org_id=org, name=org, actor="test")
    ids = [org]
    for depth in range(1, len(chain)):
        kind = "team" if team_last and depth == len(chain) - 1 else "unit"
        node_id = f"n{depth}"
        await runtime.config.create_node(ADMIN, org, {"node_id": node_id, "parent_id": ids[-1], "kind": kind})
        ids.append(node_id)
    for node_id, doc in zip(ids, chain, strict=True):
        await runtime.config.write_config(ADMIN, org, node_id, doc, operation="put")
    for depth, node_id in enumerate(ids):
        expected: dict[str, Any] = {}
        for doc in chain[: depth + 1]:
            expected = merge_patch(expected, doc)
        assert await runtime.config.effective_config(org, node_id) == expected
