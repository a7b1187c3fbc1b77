"""The categories a request can fall into.

Five are read from the text by the classifier; three follow from the request's shape
(an image part, tools or JSON mode, a long prompt) and are decided by rules.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["STRUCTURAL_CATEGORIES", "TEXT_CATEGORIES", "Category"]


class Category(StrEnum):
    CHAT = "chat"
    CODE = "code"
    MATH = "math"
    REASONING = "reasoning"
    MULTILINGUAL = "multilingual"
    VISION = "vision"
    TOOL_USE = "tool_use"
    LONG_CONTEXT = "long_context"


# What the learned classifier predicts, in the order of its weight columns.
TEXT_CATEGORIES: Final = (
    Category.CHAT,
    Category.CODE,
    Category.MATH,
    Category.REASONING,
    Category.MULTILINGUAL,
)

# Decided from the request's structure, in precedence order (first match wins).
STRUCTURAL_CATEGORIES: Final = (Category.VISION, Category.TOOL_USE, Category.LONG_CONTEXT)
