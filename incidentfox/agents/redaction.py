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
from incidentfox.config.secrets import is_secret_key

REDACTED = "[REDACTED]"
_MIN_SECRET_VALUE_LEN = 6
"""Shorter config values are not scrubbed verbatim: replacing every ``abc`` would garble output."""

_SECRET_KEY_WORDS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|client[_-]?secret|credentials?|signing[_-]?secret|webhook[_-]?secret|auth[_-]?token|session[_-]?key"
)
SECRET_KEY = re.compile(rf"(?i)^[\w.-]*?(?:{_SECRET_KEY_WORDS})$")
"""Whether a config or JSON key names a secret (``token``, ``DB_PASSWORD``, ``api_key``...)."""

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
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']+:)[^@/\s\"']+@"), rf"\1{REDACTED}@"),
)
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (?P<key>\b[\w.-]*?(?:{_SECRET_KEY_WORDS}))   # a secret-sounding key
    (?P<kq>["']?)                                # closing quote of a JSON/YAML key
    (?P<sep>\s*[:=]\s*)                          # : or =
    (?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"',;&}}\]]+))
    """
)


def _replace_key_value(match: re.Match[str]) -> str:
    head = match.group("key") + match.group("kq") + match.group("sep")
    if match.group("dq") is not None:
        value, quote = match.group("dq"), '"'
    elif match.group("sq") is not None:
        value, quote = match.group("sq"), "'"
    else:
        value, quote = match.group("bare"), ""
    if value in ("", REDACTED, "null", "None", "true", "false") or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{head}{quote}{REDACTED}{quote}"


def scrub_text(text: str, known_values: Iterable[str] = ()) -> str:
    """``text`` with every recognisable secret and every value in ``known_values`` replaced."""
    for value in sorted({v for v in known_values if len(v) >= _MIN_SECRET_VALUE_LEN}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _KEY_VALUE.sub(_replace_key_value, text)


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
    """A secret by this module's key words or by the config service's (which encrypts it at rest)."""
    return isinstance(key, str) and (bool(SECRET_KEY.match(key)) or is_secret_key(key))


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
        elif inside_secret and isinstance(node, str) and node:
            found.append(node)

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
