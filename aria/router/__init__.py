"""The SmartRouter: which model serves a request that names none (or ``auto``).

``route(RouteRequest.from_openai(body), table, available)`` is pure and deterministic: the
classifier (rules plus a small linear model over hashed n-grams) gives the category, the
routing table (data, ``data/routing.toml``, overridable in ``ARIA_HOME/routing.toml``)
the preferred models, and ``available`` what this node can run. The result names the
first model and the fallback chain the executor walks. ``loader`` is the only module
that reads files; ``train`` (scikit-learn, development only) is not imported here.
"""

from aria.router.categories import STRUCTURAL_CATEGORIES, TEXT_CATEGORIES, Category
from aria.router.classifier import Classification, QueryClassifier, classify_query
from aria.router.decision import Availability, RoutingDecision, route
from aria.router.loader import load_classifier, load_dataset, load_routing_table
from aria.router.request import RouteRequest, estimate_tokens
from aria.router.table import RoutingLimits, RoutingTable

__all__ = [
    "STRUCTURAL_CATEGORIES",
    "TEXT_CATEGORIES",
    "Availability",
    "Category",
    "Classification",
    "QueryClassifier",
    "RouteRequest",
    "RoutingDecision",
    "RoutingLimits",
    "RoutingTable",
    "classify_query",
    "estimate_tokens",
    "load_classifier",
    "load_dataset",
    "load_routing_table",
    "route",
]
