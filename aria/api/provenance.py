"""Who a generation is for, as the API learns it from the request (its receipt says so).

A request from a local client is the API's own (``origin`` ``api``). A request the node
process relays carries ``x-aria-relay`` — the node's control token, which only a process
that can read ``ARIA_HOME/node/control.json`` knows — and ``x-aria-origin``: ``peer``
(with ``x-aria-peer``, the requester's peer id, and ``x-aria-contract``, the hash of
the consent contract the request was admitted under) or ``spotcheck`` (this node
re-executing a peer's answer). A request claiming to be relayed without the token is
refused: receipts must not say a stranger's request was a peer's.
"""

from __future__ import annotations

import hmac
import re

from fastapi import Request

from aria.errors import AuthenticationError, InvalidRequest
from aria.ledger import Provenance
from aria.node import Node
from aria.p2p.control import control_token

__all__ = ["provenance_of"]

_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{16,128}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def provenance_of(request: Request) -> Provenance:
    """Raises: AuthenticationError: a relay header without the node's token;
    InvalidRequest: a relayed request whose origin, peer or contract is malformed."""
    relay = request.headers.get("x-aria-relay")
    if relay is None:
        return Provenance("api")
    node: Node = request.app.state.node
    token = control_token(node.paths)
    if token is None or not hmac.compare_digest(relay.encode(), token.encode()):
        raise AuthenticationError("x-aria-relay is not this node's control token")
    origin = request.headers.get("x-aria-origin")
    if origin == "spotcheck":
        return Provenance("spotcheck")
    peer = request.headers.get("x-aria-peer", "")
    contract = request.headers.get("x-aria-contract")
    if origin != "peer" or not _PEER_ID.fullmatch(peer):
        raise InvalidRequest("a relayed request names its origin (peer or spotcheck) and peer")
    if contract is not None and not _HEX64.fullmatch(contract):
        raise InvalidRequest("x-aria-contract is not a SHA-256")
    return Provenance("peer", peer=peer, contract=contract)
