"""Everything in ARIA that touches py-libp2p: host, DHT, NAT traversal, stream pumping.

Modules import libp2p inside functions, so importing them stays cheap.
"""

__all__: list[str] = []
