"""ARIA's peer-to-peer layer over py-libp2p (see docs/p2p.md and docs/protocol-spec.md).

Pure protocol modules (no I/O, no libp2p import): ``spec``, ``keys``, ``codec``,
``records``, ``handshake``, ``adverts``, ``guard``, ``peers``, ``netsize``, ``addrs``,
``views``, ``consent``, ``netpolicy``, ``gatekeeper``, ``providers``, ``offers``,
``inference`` and ``inference_machines`` (remote inference), ``tunnel_protocol``.
Edges: ``identity`` (key file), ``control`` (local control channel), ``consent_change``
(the consent contract in force; signing a change and applying it to the running node),
``lifecycle`` (pid file, stop), ``local`` (this machine's facts), ``local_api`` (this
machine's API, for peers' requests), ``provider_view`` and ``peer_generation`` (the API
process's view of the network and its generations on peers). The node process: ``node``
(``PeerNode``, the wiring), ``loops`` (its periodic work), ``context`` (the narrow view its
protocol handlers get), the handlers ``remote``, ``tunnel``, ``lending``, ``reports``,
``membership``, ``consent_live``, the ``services`` it runs without knowing them (the
library), and ``runner``. ``transport/`` holds everything that touches libp2p and the byte
pumps and relays.

Only light modules are re-exported here, so ``import aria.p2p`` never loads libp2p.
"""

from aria.p2p.control import NodeClient
from aria.p2p.identity import load_identity, load_or_create_identity
from aria.p2p.keys import NodeKey, PeerId
from aria.p2p.lifecycle import node_pid, stop_node
from aria.p2p.spec import ProtocolSpec, load_spec
from aria.p2p.views import ModelProvider, NetworkStatus, PeerView

__all__ = [
    "ModelProvider",
    "NetworkStatus",
    "NodeClient",
    "NodeKey",
    "PeerId",
    "PeerView",
    "ProtocolSpec",
    "load_identity",
    "load_or_create_identity",
    "load_spec",
    "node_pid",
    "stop_node",
]
