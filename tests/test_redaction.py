"""Secrets never reach a model: credential shapes, secret key-value pairs and the team's own values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentfox.agents.redaction import REDACTED, scrub_json, scrub_text, secret_values

FAKE_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        ("slack said xoxb-1234-5678-abcdefghij ok", "xoxb-1234-5678-abcdefghij"),
        ("user token xoxp-99-88-zzzzzzzz", "xoxp-99-88-zzzzzzzz"),
        ("socket xapp-1-A0123-456-abcdef", "xapp-1-A0123-456-abcdef"),
        ("OPENAI sk-proj-abcdefghijklmnopqrstuv used", "sk-proj-abcdefghijklmnopqrstuv"),
        ("anthropic sk-ant-api03-abcdefghijklmnop", "sk-ant-api03-abcdefghijklmnop"),
        ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
        ("gh ghp_" + "a1" * 18, "ghp_" + "a1" * 18),
        ("pat github_pat_" + "B2" * 15, "github_pat_" + "B2" * 15),
        (f"jwt {FAKE_JWT}", FAKE_JWT),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "MIIEabc"),
        ("env DB_PASSWORD=hunter2 next", "hunter2"),
        ('{"password": "correct horse battery", "x": 1}', "correct horse battery"),
        ("token: abc123def", "abc123def"),
        ("api_key='xyz-987'", "xyz-987"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG"),
        ("dsn postgres://checkout:s3cr3t-pa55@db.prod:5432/checkout", "s3cr3t-pa55"),
    ],
)
def test_known_secret_shapes_are_redacted(text: str, secret: str) -> None:
    scrubbed = scrub_text(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Error: Environment variable DEPLOY_ENV is undefined",
        "max_tokens: 100",
        "author: alice",
        "the password is wrong",
        "https://example.com/a:b@c",
        "Back-off restarting failed container checkout",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub_text(text) == text


def test_key_value_redaction_keeps_the_key_visible() -> None:
    assert scrub_text("DB_PASSWORD=hunter2") == "DB_PASSWORD=[REDACTED]"
    assert scrub_text("postgres://app:pw123456@db:5432") == "postgres://app:[REDACTED]@db:5432"


def test_known_config_values_are_scrubbed_verbatim() -> None:
    config = {
        "integrations": {
            "kubernetes": {"api_url": "https://k8s.internal", "token": "plainvalue42"},
            "slack": {"bot_token": "short"},
            "db": {"password": "Tr0ub4dor&3"},
        }
    }
    values = secret_values(config)
    assert sorted(values) == ["Tr0ub4dor&3", "plainvalue42"]
    scrubbed = scrub_text("login plainvalue42 then Tr0ub4dor&3 at https://k8s.internal", values)
    assert scrubbed == "login [REDACTED] then [REDACTED] at https://k8s.internal"


def test_scrub_json_hides_secret_named_keys_and_scrubs_strings() -> None:
    data = {
        "token": "abc",
        "tokens_used": 7,
        "items": [{"msg": "Authorization: Bearer zzzzzzzzzzzz"}, "plain"],
        "nested": {"client_secret": "s"},
    }
    assert scrub_json(data) == {
        "token": REDACTED,
        "tokens_used": 7,
        "items": [{"msg": f"Authorization: Bearer {REDACTED}"}, "plain"],
        "nested": {"client_secret": REDACTED},
    }


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_embedded_slack_token_never_survives(noise: str) -> None:
    token = "xoxb-2222-3333-" + "Q" * 24
    assert token not in scrub_text(f"{noise} {token} {noise}")


@given(st.text(max_size=200))
def test_scrubbing_is_idempotent(text: str) -> None:
    once = scrub_text(text)
    assert scrub_text(once) == once
