"""What a question points at in the cluster: a namespace, workload, pod, node or service it names.

"what is wrong in namespace shop?", "ns shop", "the shop namespace", "-n shop", "deployment checkout",
"pod checkout-7d9…", "node ip-10-0-1-2", "service payments" and kubectl's ``kind/name`` all name an
object. A name is taken only when it is a valid Kubernetes name for its kind (DNS-1123 label,
subdomain, or DNS-1035 label for services) and not an ordinary English word ("the pod keeps
restarting" names no pod). The text is never trusted further than that: a named namespace is still
checked against the namespaces the credentials can list (``scoped_scan``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_TRIM = "?!,;:()[]{}\"'`*_<>"
_ELLIPSIS = ("…", "...")

_KIND_WORDS: dict[str, str] = {
    "namespace": "namespace",
    "ns": "namespace",
    "pod": "pod",
    "po": "pod",
    "node": "node",
    "no": "node",
    "service": "service",
    "svc": "service",
    "deployment": "workload",
    "deploy": "workload",
    "statefulset": "workload",
    "sts": "workload",
    "daemonset": "workload",
    "ds": "workload",
    "replicaset": "workload",
    "rs": "workload",
    "job": "workload",
    "cronjob": "workload",
    "workload": "workload",
    "app": "workload",
}
_SLASH_ONLY = frozenset({"po", "no"})
"""Kind words that are also common English words; they name a kind only in ``po/name`` form."""

_ENGLISH_WORDS = (
    "a an the this that these those my our your their its his her it me us we you i they them",
    "any every each all some no none which what whats whose who why how where when there here",
    "is are was were be been being am has have had do does did doing done get got",
    "can could will would should may might must shall",
    "in on at of for to from with without by about into onto over under off",
    "and or but not nor so if then than as like only just also still now today again please",
    "same other another one whole entire new old latest last recent current previous",
    "keeps keep kept went goes going gone looks look see check happening happened called named",
    "failing failed fails crashing crashed crashes down up broken wrong bad dead stuck slow",
    "pending running restarting ready healthy unhealthy error errors problem problems issue issues",
    "kubernetes k8s cluster",
)
"""Words that follow or precede a kind word in ordinary sentences ("the pod keeps restarting"),
never taken as a name."""
_STOPWORDS = frozenset(word for line in _ENGLISH_WORDS for word in line.split()) | frozenset(_KIND_WORDS)
_FILLERS = frozenset({"called", "named", "=", "is", ":"})


def _clean(token: str) -> str:
    return token.strip(_TRIM).rstrip(".")


def valid_name(kind: str, name: str) -> bool:
    """Whether ``name`` is a legal name for an object of ``kind`` (Kubernetes naming rules)."""
    if kind == "namespace":
        return len(name) <= 63 and _LABEL.fullmatch(name) is not None
    if kind == "service":
        return len(name) <= 63 and _DNS1035.fullmatch(name) is not None
    return len(name) <= 253 and _SUBDOMAIN.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class QuestionScope:
    """The objects a question names; every field is ``None`` when the question names none of that kind.

    ``pod`` may be a prefix ("checkout-7d9…"): pods whose name starts with it match.
    """

    namespace: str | None = None
    workload: str | None = None
    pod: str | None = None
    node: str | None = None
    service: str | None = None

    @property
    def names_an_object(self) -> bool:
        """Whether the question names a workload, pod, node or service (not just a namespace)."""
        return any((self.workload, self.pod, self.node, self.service))

    def names(
        self, key: str, namespace: str | None, workload: str | None, related: Iterable[str] = ()
    ) -> bool:
        """Whether a finding about ``key`` (``pod/shop/checkout-7d9``, ``node/worker-2``) is one the
        question names: its object, its workload, or its namespace (a node counts when it runs pods
        of the named namespace)."""
        kind, _, rest = key.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if self.pod and kind == "pod" and name.startswith(self.pod):
            return True
        if self.node and kind == "node" and name == self.node:
            return True
        if self.service and ((kind == "service" and name == self.service) or workload == self.service):
            return True
        if self.workload and (
            workload == self.workload or name == self.workload or name.startswith(self.workload + "-")
        ):
            return True
        if self.namespace and not self.names_an_object:
            if namespace == self.namespace:
                return True
            return kind == "node" and any(r.startswith(f"pod/{self.namespace}/") for r in related)
        return False


def _named_after(tokens: list[str], index: int, kind: str) -> str | None:
    """The name following the kind word at ``index`` ("namespace called shop" skips the filler)."""
    for offset in (1, 2):
        if index + offset >= len(tokens):
            return None
        candidate = tokens[index + offset]
        if candidate in _FILLERS and offset == 1:
            continue
        return _accept(kind, candidate)
    return None


def _accept(kind: str, raw: str) -> str | None:
    name = _clean(raw)
    if kind == "pod":
        for mark in _ELLIPSIS:
            name = name.removesuffix(mark)
        name = name.rstrip("-.")
    if not name or name in _STOPWORDS or not valid_name(kind, name):
        return None
    return name


def _flag_namespace(tokens: list[str], index: int) -> str | None:
    token = tokens[index]
    if token in ("-n", "--namespace") and index + 1 < len(tokens):
        return _accept("namespace", tokens[index + 1])
    if token.startswith("--namespace="):
        return _accept("namespace", token.split("=", 1)[1])
    return None


def parse_question(question: str) -> QuestionScope:
    """The namespace, workload, pod, node and service a question names (the first of each kind)."""
    tokens = [t for t in (raw.strip(_TRIM) for raw in question.lower().split()) if t]
    found: dict[str, str] = {}
    for index, token in enumerate(tokens):
        flagged = _flag_namespace(tokens, index)
        if flagged:
            found.setdefault("namespace", flagged)
            continue
        word, slash, rest = token.partition("/")
        kind = _KIND_WORDS.get(_clean(word) if not slash else word)
        if kind is None:
            continue
        if slash:
            name = _accept(kind, rest)
        elif _clean(word) in _SLASH_ONLY:
            continue
        else:
            name = _named_after(tokens, index, kind)
            if name is None and index > 0:
                name = _accept(kind, tokens[index - 1])
        if name:
            found.setdefault(kind, name)
    return QuestionScope(
        namespace=found.get("namespace"),
        workload=found.get("workload"),
        pod=found.get("pod"),
        node=found.get("node"),
        service=found.get("service"),
    )
