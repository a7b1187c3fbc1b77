"""TEST ONLY: make this node lie about the work it does for peers.

``aria api start`` with ``ARIA_TEST_ONLY_PERTURB_PEER_ANSWERS=<fraction>`` in its
environment alters that fraction of the answers it generates for peers (never its own
user's): one character of the first token changes, and its receipt — honestly signed
over what it sent — hashes the altered text, so only a spot check that re-executes the
request can catch it. It exists so the tests can run a real cheating node; nothing in
ARIA sets it, and the API logs a warning at start when it is on.
"""

from __future__ import annotations

import random

__all__ = ["CHEAT_ENV", "PeerAnswerCheat"]

CHEAT_ENV = "ARIA_TEST_ONLY_PERTURB_PEER_ANSWERS"


class PeerAnswerCheat:
    """Decides which peer answers to alter (seeded: the same sequence every run)."""

    def __init__(self, fraction: float, seed: int = 14) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"{CHEAT_ENV} is a fraction in (0, 1]")
        self.fraction = fraction
        self._random = random.Random(seed)

    def strikes(self) -> bool:
        return self._random.random() < self.fraction

    @staticmethod
    def alter(text: str) -> str:
        """The same text with its first letter or digit replaced (an empty one gains one)."""
        for index, char in enumerate(text):
            if char.isalnum():
                other = "x" if char != "x" else "y"
                return text[:index] + other + text[index + 1 :]
        return text + "x"
