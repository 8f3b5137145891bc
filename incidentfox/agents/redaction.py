"""Scrub secrets from anything a model (or Slack) is about to see.

Two layers, applied together by ``scrub_text``/``scrub_json``:

* patterns for well-known credential shapes (bearer tokens, Slack, OpenAI/Anthropic, AWS, GitHub,
  JWTs, PEM private keys, ``password=…`` style pairs, ``user:pass@`` in URLs);
* the exact secret values found in the team's config (``secret_values``), which catches secrets
  that have no recognisable shape, like a database password echoed in a log line.

Scrubbing happens before the output budget is applied, so truncation can never expose half a secret.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from incidentfox.agents.rca import Evidence, RootCauseAnalysis
from incidentfox.config.secret_names import URL_WITH_PASSWORD, has_url_password, is_secret_key

REDACTED = "[REDACTED]"
_MIN_SECRET_VALUE_LEN = 6
"""Shorter config values are not scrubbed verbatim: replacing every ``abc`` would garble output."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
        ),
        REDACTED,
    ),
    (
        re.compile(r"(?i)\b(authorization\s*[:=]\s*[\"']?(?:basic|bearer|token|digest)\s+)[^\s\"',;]+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1{REDACTED}"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{6,}"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), REDACTED),
    (re.compile(r"\bsk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), REDACTED),
    (URL_WITH_PASSWORD, rf"\1{REDACTED}@"),
)
_KEY_HEAD = re.compile(r"""\b(?P<key>[A-Za-z_][\w.-]{0,80})(?P<kq>["']?)(?P<sep>\s*[:=]\s*)""")
"""``key:`` or ``key=`` (JSON/YAML/env/logfmt); ``is_secret_key`` decides whether the key names a secret."""
_VALUE = re.compile(r""""(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"',;&}\]]+)""")
_KEPT_VALUES = frozenset(
    {"", REDACTED, "null", "None", "true", "false", "basic", "bearer", "token", "digest"}
)
"""Values left alone after a secret key: empty or boolean ones, and the scheme word of
``Authorization: Bearer …`` (whose credential the patterns above already replaced)."""


def _scrub_key_values(text: str) -> str:
    parts: list[str] = []
    pos = 0
    for head in _KEY_HEAD.finditer(text):
        if head.start() < pos or not is_secret_key(head.group("key").strip(".-")):
            continue
        value = _VALUE.match(text, head.end())
        if value is None:
            continue
        if value.group("dq") is not None:
            raw, quote = value.group("dq"), '"'
        elif value.group("sq") is not None:
            raw, quote = value.group("sq"), "'"
        else:
            raw, quote = value.group("bare"), ""
        if raw in _KEPT_VALUES or raw.lower() in _KEPT_VALUES or raw.startswith("[REDACTED"):
            continue
        parts.append(text[pos : head.end()])
        parts.append(f"{quote}{REDACTED}{quote}")
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def scrub_text(text: str, known_values: Iterable[str] = ()) -> str:
    """``text`` with every recognisable secret and every value in ``known_values`` replaced."""
    for value in sorted({v for v in known_values if len(v) >= _MIN_SECRET_VALUE_LEN}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _scrub_key_values(text)


def scrub_json(value: Any, known_values: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value: secret-named keys hidden, every string scrubbed."""
    values = tuple(known_values)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_secret_name(k) and isinstance(v, str) and v else scrub_json(v, values))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_json(v, values) for v in value]
    if isinstance(value, str):
        return scrub_text(value, values)
    return value


def is_secret_name(key: Any) -> bool:
    """Whether a JSON key names a secret: the config service's one definition (``secret_names``)."""
    return isinstance(key, str) and is_secret_key(key)


def secret_values(config: Mapping[str, Any]) -> list[str]:
    """Every string stored under a secret-named key anywhere in ``config`` (e.g. the team's
    ``integrations.kubernetes.token``, or each value below ``credentials: {...}``), for verbatim
    scrubbing with ``scrub_text``."""
    found: list[str] = []

    def walk(node: Any, inside_secret: bool) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, inside_secret or is_secret_name(key))
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child, inside_secret)
        elif isinstance(node, str) and node and inside_secret:
            found.append(node)
        elif isinstance(node, str) and has_url_password(node):
            found.extend(m.group(2) for m in URL_WITH_PASSWORD.finditer(node))

    walk(config, False)
    return [v for v in found if len(v) >= _MIN_SECRET_VALUE_LEN]


def scrub_rca(rca: RootCauseAnalysis, known_values: Iterable[str] = ()) -> RootCauseAnalysis:
    """The RCA with every text field scrubbed, whoever wrote it (the planner or the analyzers)."""
    values = tuple(known_values)

    def scrub(text: str) -> str:
        return scrub_text(text, values)

    return dataclasses.replace(
        rca,
        summary=scrub(rca.summary),
        root_cause=scrub(rca.root_cause),
        evidence=tuple(
            Evidence(scrub(e.quote), scrub(e.source), scrub(e.url) if e.url else None) for e in rca.evidence
        ),
        confidence=dataclasses.replace(rca.confidence, why=scrub(rca.confidence.why)),
        immediate_actions=tuple(scrub(a) for a in rca.immediate_actions),
        follow_up_actions=tuple(scrub(a) for a in rca.follow_up_actions),
        caveats=tuple(scrub(c) for c in rca.caveats),
    )
