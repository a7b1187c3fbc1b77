"""An in-memory link between two sans-I/O protocol machines, under a fake clock.

``FakeClock`` is the only time source; ``Link`` moves whatever each machine wants
to send to the other, optionally corrupting, truncating or dropping it, until both
are done or nothing moves. No sockets, no libp2p: just the protocol logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Link:
    """Connects machine ``a`` (usually the initiator) and ``b``."""

    a: Any
    b: Any
    clock: FakeClock
    # Hook to tamper with bytes in flight: (sender name, data) -> data to deliver.
    tamper: Callable[[str, bytes], bytes] = lambda _who, data: data
    events_a: list[Any] = field(default_factory=list)
    events_b: list[Any] = field(default_factory=list)
    wire_a_to_b: list[bytes] = field(default_factory=list)
    wire_b_to_a: list[bytes] = field(default_factory=list)

    def start(self) -> None:
        self.a.start(self.clock())
        self.b.start(self.clock())

    def run(self, max_rounds: int = 20) -> None:
        for _ in range(max_rounds):
            moved = False
            for sender, receiver, log, events, name in (
                (self.a, self.b, self.wire_a_to_b, self.events_b, "a"),
                (self.b, self.a, self.wire_b_to_a, self.events_a, "b"),
            ):
                data = sender.data_to_send()
                if data:
                    moved = True
                    log.append(data)
                    delivered = self.tamper(name, data)
                    if delivered:
                        events.extend(receiver.receive_data(delivered, self.clock()))
            if not moved:
                return
