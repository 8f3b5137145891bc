"""RFC 7396 semantics and the effective-config merge, including deletion at every depth."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from incidentfox.config.merge import effective_config, merge_patch


def test_rfc7396_appendix_a_examples() -> None:
    cases: list[tuple[Any, Any, Any]] = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_mutate_its_inputs() -> None:
    target = {"a": {"b": 1}}
    patch = {"a": {"c": 2}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"c": 2}}


def test_null_deletes_inherited_keys_at_every_depth() -> None:
    org = {"integrations": {"k8s": {"namespace": "prod", "token": "x", "opts": {"a": 1, "b": 2}}}, "top": 1}
    unit = {"integrations": {"k8s": {"opts": {"a": None}}}}
    team = {"integrations": {"k8s": {"token": None}}, "top": None}
    assert effective_config([org, unit, team]) == {
        "integrations": {"k8s": {"namespace": "prod", "opts": {"b": 2}}}
    }


def test_null_in_a_root_config_is_not_kept_in_the_effective_config() -> None:
    assert effective_config([{"a": None, "b": {"c": None}}]) == {"b": {}}


json_leaf = st.one_of(st.booleans(), st.integers(-5, 5), st.sampled_from(["x", "y", "prod"]))
keys = st.sampled_from(["a", "b", "c", "integrations", "routing"])
documents = st.recursive(
    st.dictionaries(keys, st.one_of(json_leaf, st.none()), max_size=3),
    lambda children: st.dictionaries(
        keys, st.one_of(json_leaf, st.none(), children, st.lists(json_leaf, max_size=2)), max_size=3
    ),
    max_leaves=12,
)


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    return False


@given(st.lists(documents, min_size=1, max_size=5))
def test_effective_config_never_contains_nulls_and_last_writer_wins(chain: list[dict[str, Any]]) -> None:
    result = effective_config(chain)
    assert not _has_null(result)
    for key, value in chain[-1].items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
