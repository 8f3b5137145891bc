"""Reading what a question names in the cluster: robust to phrasing, strict about Kubernetes names."""

from __future__ import annotations

import pytest

from incidentfox.agents.analyzers.question_scope import QuestionScope, parse_question


@pytest.mark.parametrize(
    ("question", "scope"),
    [
        ("what is wrong in namespace shop?", QuestionScope(namespace="shop")),
        ("is ns shop ok", QuestionScope(namespace="shop")),
        ("anything broken in the shop namespace?", QuestionScope(namespace="shop")),
        ("kubectl get pods -n shop", QuestionScope(namespace="shop")),
        ("kubectl get pods --namespace=shop", QuestionScope(namespace="shop")),
        ("what is wrong in namespace Shop?", QuestionScope(namespace="shop")),
        ("deployment checkout is down", QuestionScope(workload="checkout")),
        (
            "is deploy/checkout healthy in namespace shop",
            QuestionScope(namespace="shop", workload="checkout"),
        ),
        ("why is pod checkout-7d9… crashing", QuestionScope(pod="checkout-7d9")),
        ("why is pod checkout-7d9... crashing", QuestionScope(pod="checkout-7d9")),
        ("node ip-10-0-1-2 is NotReady", QuestionScope(node="ip-10-0-1-2")),
        ("node ip-10-0-1-2.ec2.internal went away", QuestionScope(node="ip-10-0-1-2.ec2.internal")),
        ("service payments has no endpoints", QuestionScope(service="payments")),
        ("why is the cart service slow?", QuestionScope(service="cart")),
    ],
)
def test_named_objects_are_read_from_common_phrasings(question: str, scope: QuestionScope) -> None:
    assert parse_question(question) == scope


@pytest.mark.parametrize(
    "question",
    [
        "the pod keeps restarting",
        "which namespace is broken?",
        "what is wrong in the namespace?",
        "namespace shop_1 is down",
        "namespace " + "a" * 64,
        "service 9payments is down",
        "why is checkout crashlooping?",
    ],
)
def test_ordinary_words_and_invalid_names_name_nothing(question: str) -> None:
    assert parse_question(question) == QuestionScope()


def test_a_pod_prefix_matches_the_pods_it_starts_and_a_namespace_matches_its_findings() -> None:
    assert parse_question("pod checkout-7d9…").names("pod/shop/checkout-7d9f8b6c5-x2k4q", "shop", "checkout")
    assert not parse_question("pod cart-1").names("pod/shop/checkout-7d9f8b6c5-x2k4q", "shop", "checkout")
    in_shop = parse_question("what is wrong in namespace shop?")
    assert in_shop.names("service/shop/frontend", "shop", "frontend")
    assert not in_shop.names("pod/default/web-1", "default", "web")
    assert in_shop.names("node/worker-2", None, None, related=("pod/shop/inventory-1",))
    assert not in_shop.names("node/worker-3", None, None, related=("pod/default/web-1",))
