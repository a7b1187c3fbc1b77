"""The public surface of aria.p2p, and that importing it stays cheap (no libp2p)."""

from __future__ import annotations

import subprocess
import sys

import aria.p2p


def test_exported_members() -> None:
    assert sorted(aria.p2p.__all__) == [
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
    for name in aria.p2p.__all__:
        assert getattr(aria.p2p, name) is not None


def test_importing_p2p_and_its_cli_does_not_load_libp2p() -> None:
    code = (
        "import sys, aria.p2p, aria.cli.network, aria.cli.node, aria.p2p.handshake, "
        "aria.p2p.adverts; print('libp2p' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
