"""How ARIA's bytes move: everything that touches py-libp2p (host, DHT, NAT traversal,
mDNS, connection gates), the one pump that drives the sans-I/O protocol machines over a
stream, the byte relay that carries ggml-rpc between a loopback port and a peer's stream
(``relay``), and the filtered join a lender runs it through (``guarded``).

Modules import libp2p inside functions, so importing them stays cheap.
"""

__all__: list[str] = []
