"""Scrub secrets from anything a model (or Slack) is about to see.

Three layers, applied together by ``scrub_text``/``scrub_json``:

* the exact secret values found in the team's config (``secret_values``), which catches secrets
  that have no recognisable shape, like a database password echoed in a log line;
* patterns for well-known credential shapes (bearer tokens, Slack, OpenAI/Anthropic, AWS, GitHub,
  GitLab, Google API keys, Slack webhooks, JWTs, PEM private keys, ``password=…`` style pairs,
  ``user:pass@`` in connection strings);
* high-entropy tokens (``looks_random``): 32 or more characters of base64/base64url that mix upper
  case, lower case and digits, are about as random as a random string of that length, and are not
  made of words. Hex-only strings are never taken for secrets, so git SHAs, image digests, trace ids
  and UUIDs survive (hex secrets are caught by their key, ``api_key=…``, or as config values);
  Kubernetes names are lower case and survive too. The check is a backstop, not a guarantee: it
  misses about 4 % of random 32-character tokens and fewer of longer ones.

Scrubbing happens before the output budget is applied, so truncation can never expose half a secret.
The ``*_counted`` variants also say how many secrets were replaced, for the run's timeline.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from incidentfox.agents.rca import Evidence, RootCauseAnalysis
from incidentfox.config.secret_names import URL_WITH_PASSWORD, has_url_password, is_secret_key

REDACTED = "[REDACTED]"
_MIN_SECRET_VALUE_LEN = 6
"""Shorter config values are not scrubbed verbatim: replacing every ``abc`` would garble output."""

_URL_PASSWORD_WITH_AT = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']*:)([^\s\"'/]+)@(?=[^@\s\"'/]*(?:[/?#\s\"']|$))"
)
"""``scheme://user:pass@host`` where the password holds an ``@`` (or the user is empty, ``redis://:pw@``),
which ``URL_WITH_PASSWORD`` stops short of: everything up to the authority's last ``@`` is masked."""

_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    (
        ("private key",),
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
        ),
        REDACTED,
    ),
    (
        ("authorization",),
        re.compile(r"(?i)\b(authorization\s*[:=]\s*[\"']?(?:basic|bearer|token|digest)\s+)[^\s\"',;]+"),
        rf"\1{REDACTED}",
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1{REDACTED}"),
    (("xox",), re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"), REDACTED),
    (
        ("hooks.slack.com/",),
        re.compile(r"(?i)\b(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]{8,}"),
        rf"\1{REDACTED}",
    ),
    (("xapp-",), re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), REDACTED),
    (("sk-",), re.compile(r"\bsk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{16,}"), REDACTED),
    (
        ("akia", "asia", "agpa", "aida", "aroa"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
        REDACTED,
    ),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    (("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), REDACTED),
    (("aiza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), REDACTED),
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), REDACTED),
    (("://",), _URL_PASSWORD_WITH_AT, rf"\1{REDACTED}@"),
    (("://",), URL_WITH_PASSWORD, rf"\1{REDACTED}@"),
)
"""(needles, pattern, replacement): a pattern runs only over text whose lower-cased form holds one of
its needles, which every match contains; most text holds none, and costs one search (``_NEEDLES``)."""
_NEEDLES = re.compile("|".join(re.escape(n) for needles, _, _ in _PATTERNS for n in dict.fromkeys(needles)))
_KEY_HEAD = re.compile(r"""\b(?P<key>[A-Za-z_][\w.-]{0,80})(?P<kq>["']?)(?P<sep>\s*[:=]\s*)""")
"""``key:`` or ``key=`` (JSON/YAML/env/logfmt); ``is_secret_key`` decides whether the key names a secret."""
_KEY_NEEDLES = re.compile(r"key|secret|passw|pwd|passphrase|credential|dsn|auth|cookie|token|kubeconfig")
"""Every key ``is_secret_key`` accepts holds one of these (lower-cased); text without any has no such key."""
_VALUE = re.compile(r""""(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"',;&}\]]+)""")
_KEPT_VALUES = frozenset(
    {"", REDACTED, "null", "None", "true", "false", "basic", "bearer", "token", "digest"}
)
"""Values left alone after a secret key: empty or boolean ones, and the scheme word of
``Authorization: Bearer …`` (whose credential the patterns above already replaced)."""


def _scrub_key_values(text: str) -> tuple[str, int]:
    parts: list[str] = []
    pos = count = 0
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
        count += 1
    parts.append(text[pos:])
    return "".join(parts), count


_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")
_HEX = re.compile(r"[0-9a-fA-F-]+")
_WORD = re.compile(r"[a-z]{6,}")


def looks_random(token: str) -> bool:
    """Whether a 32+ character base64-alphabet token reads as a random secret (module docstring)."""
    body = token.rstrip("=")
    if _HEX.fullmatch(body):
        return False
    if not (any(c.isupper() for c in body) and any(c.islower() for c in body)):
        return False
    if not any(c.isdigit() for c in body):
        return False
    if sum(len(word) for word in _WORD.findall(body)) >= 0.2 * len(body):
        return False
    return _entropy(body) >= min(4.1 + 0.025 * (len(body) - 32), 4.7)


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character. A random 32-character base64 string has about 4.56."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def _scrub_random(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if not looks_random(match.group(0)):
            return match.group(0)
        count += 1
        return REDACTED

    return _TOKEN.sub(replace, text), count


def _sub_counted(pattern: re.Pattern[str], template: str, text: str) -> tuple[str, int]:
    """``pattern.sub`` that counts only the matches it changed (an already scrubbed one is not new)."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        replaced = match.expand(template)
        if replaced != match.group(0):
            count += 1
        return replaced

    return pattern.sub(replace, text), count


def scrub_text_counted(text: str, known_values: Iterable[str] = ()) -> tuple[str, int]:
    """``scrub_text`` and how many secrets it replaced."""
    total = 0
    for value in sorted({v for v in known_values if len(v) >= _MIN_SECRET_VALUE_LEN}, key=len, reverse=True):
        found = text.count(value)
        if found:
            text, total = text.replace(value, REDACTED), total + found
    lowered = text.lower()
    if _NEEDLES.search(lowered):
        for needles, pattern, replacement in _PATTERNS:
            if any(needle in lowered for needle in needles):
                text, count = _sub_counted(pattern, replacement, text)
                total += count
    if _KEY_NEEDLES.search(lowered) and (":" in text or "=" in text):
        text, count = _scrub_key_values(text)
        total += count
    if len(text) >= 32:
        text, count = _scrub_random(text)
        total += count
    return text, total


def scrub_text(text: str, known_values: Iterable[str] = ()) -> str:
    """``text`` with every recognisable secret and every value in ``known_values`` replaced."""
    return scrub_text_counted(text, known_values)[0]


def scrub_json_counted(value: Any, known_values: Iterable[str] = ()) -> tuple[Any, int]:
    """``scrub_json`` and how many secrets it replaced."""
    values = tuple(known_values)
    total = 0

    def scrub(node: Any) -> Any:
        nonlocal total
        if isinstance(node, Mapping):
            copied = {}
            for k, v in node.items():
                if is_secret_name(k) and isinstance(v, str) and v and v != REDACTED:
                    copied[k] = REDACTED
                    total += 1
                else:
                    copied[k] = scrub(v)
            return copied
        if isinstance(node, list | tuple):
            return [scrub(v) for v in node]
        if isinstance(node, str):
            text, count = scrub_text_counted(node, values)
            total += count
            return text
        return node

    return scrub(value), total


def scrub_json(value: Any, known_values: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value: secret-named keys hidden, every string scrubbed."""
    return scrub_json_counted(value, known_values)[0]


def is_secret_name(key: Any) -> bool:
    """Whether a JSON key names a secret: the config service's one definition (``secret_names``)."""
    return isinstance(key, str) and _is_secret_key(key)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    """``is_secret_key``, remembered: a large result repeats the same few keys in every item."""
    return is_secret_key(key)


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
        first_finding=None
        if rca.first_finding is None
        else dataclasses.replace(
            rca.first_finding, why=scrub(rca.first_finding.why), finding=scrub(rca.first_finding.finding)
        ),
    )
