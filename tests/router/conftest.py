"""Shared fixtures for the router tests: the shipped classifier, loaded once."""

from __future__ import annotations

import pytest

from aria.router import QueryClassifier, load_classifier


@pytest.fixture(scope="session")
def classifier() -> QueryClassifier:
    return load_classifier()
