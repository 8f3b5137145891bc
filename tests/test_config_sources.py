"""Where each value of an effective config comes from (org, unit or team), under RFC 7396."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from incidentfox.config.merge import effective_config, value_sources
from incidentfox.handlers.slack.overview import claims_of, config_lines


def test_each_leaf_names_the_node_that_set_it_last() -> None:
    chain: list[tuple[str, dict[str, Any]]] = [
        ("acme", {"model": {"name": "gpt-4.1", "provider": "openai"}, "auto_investigate": True}),
        (
            "payments",
            {"model": {"name": "gpt-4.1-mini"}, "integrations": {"kubernetes": {"namespace": "pay"}}},
        ),
        ("checkout", {"integrations": {"kubernetes": {"namespace": "prod", "token": "••••9c2e"}}}),
    ]
    assert value_sources(chain) == {
        ("model", "name"): "payments",
        ("model", "provider"): "acme",
        ("auto_investigate",): "acme",
        ("integrations", "kubernetes", "namespace"): "checkout",
        ("integrations", "kubernetes", "token"): "checkout",
    }


def test_null_deletes_the_inherited_value_and_its_source() -> None:
    chain: list[tuple[str, dict[str, Any]]] = [
        ("acme", {"integrations": {"github": {"token": "••••f00d", "post_comments": True}}}),
        ("checkout", {"integrations": {"github": {"post_comments": None}}}),
    ]
    assert value_sources(chain) == {("integrations", "github", "token"): "acme"}


def test_a_null_for_a_whole_object_drops_all_its_children() -> None:
    chain: list[tuple[str, dict[str, Any]]] = [
        ("acme", {"model": {"name": "a", "base_url": "https://m"}}),
        ("checkout", {"model": None}),
    ]
    assert value_sources(chain) == {}


def test_a_scalar_replacing_an_object_drops_its_children_and_an_object_replacing_a_scalar_starts_fresh() -> (
    None
):
    chain: list[tuple[str, dict[str, Any]]] = [
        ("acme", {"sandbox": {"backend": "local", "ttl_s": 3600}, "entrance_agent": "planner"}),
        ("payments", {"sandbox": "kubernetes"}),
        ("checkout", {"sandbox": {"runtime_class": "gvisor"}}),
    ]
    assert value_sources(chain) == {("sandbox", "runtime_class"): "checkout", ("entrance_agent",): "acme"}


def test_lists_are_leaves_replaced_whole() -> None:
    chain: list[tuple[str, dict[str, Any]]] = [
        ("acme", {"approvals": {"approver_user_ids": ["U1", "U2"]}}),
        ("checkout", {"approvals": {"approver_user_ids": ["U3"]}}),
    ]
    assert value_sources(chain) == {("approvals", "approver_user_ids"): "checkout"}


def test_config_lines_carry_redacted_values_kinds_and_sorted_paths() -> None:
    chain: list[tuple[str, Any, dict[str, Any]]] = [
        ("acme", "org", {"model": {"name": "gpt-4.1"}, "integrations": {"github": {"token": "••••f00d"}}}),
        ("payments", "unit", {"integrations": {"kubernetes": {"api_url": "https://k8s"}}}),
        (
            "checkout",
            "team",
            {"integrations": {"kubernetes": {"namespace": "prod"}}, "model": {"name": None}},
        ),
    ]
    lines = config_lines(chain, effective_config(doc for _, _, doc in chain))
    assert [(".".join(line.path), line.value, line.source_kind, line.inherited) for line in lines] == [
        ("integrations.github.token", "••••f00d", "org", True),
        ("integrations.kubernetes.api_url", "https://k8s", "unit", True),
        ("integrations.kubernetes.namespace", "prod", "team", False),
    ]


def test_claims_come_from_the_teams_own_config_only() -> None:
    claims = claims_of({"routing": {"slack_channel_ids": ["C1"], "github_repos": ["acme/a", 3]}})
    assert claims.slack_channel_ids == ("C1",)
    assert claims.github_repos == ("acme/a",)
    assert claims.pagerduty_service_ids == ()
    assert not claims_of({})


keys = st.sampled_from(["a", "b", "c", "d"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(0, 3) | st.lists(st.integers(0, 2), max_size=2),
    lambda children: st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
documents = st.dictionaries(keys, values, max_size=4)


def _leaves(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for key, child in value.items():
        if isinstance(child, dict) and child:
            found |= _leaves(child, (*prefix, key))
        else:
            found.add((*prefix, key))
    return found


def _at(value: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@given(st.lists(documents, min_size=1, max_size=4))
def test_sources_cover_exactly_the_effective_leaves_and_each_source_holds_that_value(
    docs: list[dict[str, Any]],
) -> None:
    chain = [(f"n{i}", doc) for i, doc in enumerate(docs)]
    effective = effective_config(docs)
    sources = value_sources(chain)
    assert set(sources) == _leaves(effective)
    for path, source in sources.items():
        index = int(source[1:])
        own: Any = docs[index]
        for part in path:
            assert isinstance(own, dict)
            own = own.get(part)
        leaf = _at(effective, path)
        if leaf == {}:
            assert isinstance(own, dict), (path, source)
        else:
            assert own == leaf, (path, source)
