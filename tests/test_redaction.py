"""Secrets never reach a model: credential shapes, secret key-value pairs and the team's own values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentfox.agents.redaction import (
    REDACTED,
    looks_random,
    scrub_json,
    scrub_json_counted,
    scrub_text,
    scrub_text_counted,
    secret_values,
)

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


# --- well-known token shapes, high-entropy tokens, and what must survive ---------------------------

RANDOM_40 = "Tq8vZ2mK9xLw4Rb7Hn3Jd6Fs1Gy5Pc0Qe8Ua2Wi"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("bot xoxb-1111-2222-AbCdEfGhIjKl", "xoxb-1111-2222-AbCdEfGhIjKl"),
        ("user xoxp-1111-2222-3333-abcdef0123", "xoxp-1111-2222-3333-abcdef0123"),
        ("app xapp-1-A05ABCDEF-1234567890-abcdef", "xapp-1-A05ABCDEF-1234567890-abcdef"),
        ("refresh xoxe-1-My4xLTIzNDU2Nzg5MC0x", "xoxe-1-My4xLTIzNDU2Nzg5MC0x"),
        ("rotating xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4", "xoxp-1-Mi0yLTEyMzQ1Njc4"),
        ("webhook https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXX"),
        ("gho_" + "a" * 36, "gho_" + "a" * 36),
        ("ghu_" + "b" * 36 + " x", "ghu_" + "b" * 36),
        ("ghs_" + "c" * 36, "ghs_" + "c" * 36),
        ("ghr_" + "d" * 36, "ghr_" + "d" * 36),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789"),
        ("sts ASIAY34FZKBOKMUTVV7A expires", "ASIAY34FZKBOKMUTVV7A"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
        (
            '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfi", "SessionToken": "FwoGZXIvYXdz"}',
            "FwoGZXIvYXdz",
        ),
        (f'{{"type": "service_account", "private_key": "{PEM!r}"}}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        (PEM, "BKcwggSjAgEAAoIBAQC7"),
        ("google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
        ("Authorization: Bearer 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123"),
        ("curl -H 'authorization: bearer abc.def.ghi-jkl'", "abc.def.ghi-jkl"),
        (f"jwt={FAKE_JWT}&next=1", "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
        ("mongodb+srv://app:Sup3r-S3cret@cluster0.mongodb.net/db", "Sup3r-S3cret"),
        ("redis://:r3dis-pw-77@cache.prod:6379/0", "r3dis-pw-77"),
        ("postgres://app:p@ss@word@db.prod:5432/app", "ss@word"),
        ("amqp://guest:guest-pw-123@rabbit:5672/", "guest-pw-123"),
        (f"signature {RANDOM_40} in the log", RANDOM_40),
        (f"X-Goog-Signature={RANDOM_40}&X-Goog-Date=1", RANDOM_40),
    ],
)
def test_well_known_tokens_are_scrubbed(text: str, secret: str) -> None:
    scrubbed, count = scrub_text_counted(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed
    assert count >= 1


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
        "image ghcr.io/acme/checkout@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "pod checkout-7d9f8b6c5-x2k4q restarted; replicaset checkout-7d9f8b6c5",
        "uid 123e4567-e89b-12d3-a456-426614174000 trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "node ip-10-0-12-34.eu-west-1.compute.internal NotReady",
        "org.springframework.beans.factory.support.AbstractAutowireCapableBeanFactory",
        "handler getUserById2FactorAuthenticationHandlerV3Impl threw",
        "alert KubePodCrashLooping_checkout_prod_Alert2024 firing",
        "path /apis/apps/v1/namespaces/prod/deployments/checkout-v2/scale",
        "incidentfox-worker-deployment-5c7d8f9b6d-qwxyz OOMKilled (exit code 137)",
        "Back-off restarting failed container checkout in pod checkout-7d9f8b6c5-x2k4q_prod(1a2b3c4d)",
    ],
)
def test_evidence_that_looks_like_ids_survives(text: str) -> None:
    assert scrub_text_counted(text) == (text, 0)


def test_scrub_counts_what_it_replaced_once() -> None:
    text = "a xoxb-1111-2222-AbCdEfGhIj b DB_PASSWORD=hunter2 c plainvalue42"
    scrubbed, count = scrub_text_counted(text, ["plainvalue42"])
    assert count == 3
    assert scrub_text_counted(scrubbed, ["plainvalue42"]) == (scrubbed, 0), "already scrubbed is not new"
    data, in_json = scrub_json_counted({"token": "abc", "logs": [text]}, ["plainvalue42"])
    assert in_json == 4
    assert data["token"] == REDACTED


def test_high_entropy_check_is_about_randomness_not_length() -> None:
    assert looks_random(RANDOM_40)
    assert looks_random("QmFzZTY0RW5jb2RlZFN0cmluZ1dpdGhOb1NlY3JldA==")
    assert not looks_random("0123456789abcdef0123456789abcdef01234567"), "hex: a SHA"
    assert not looks_random("ThisIsAVeryLongCamelCaseIdentifier2024Version"), "words"
    assert not looks_random("abcdefghijklmnopqrstuvwxyz0123456789"), "no upper case"
