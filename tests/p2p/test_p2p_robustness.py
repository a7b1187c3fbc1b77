"""A misbehaving peer against a real in-process node: penalties, ban, disconnect, no crash."""

from __future__ import annotations

import multiaddr
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from aria.config import AriaPaths, AriaSettings
from aria.p2p.codec import encode_frame
from aria.p2p.keys import NodeKey
from aria.p2p.local import LocalFacts
from aria.p2p.node import NodeOptions, PeerNode
from aria.p2p.spec import load_spec
from aria.p2p.transport.host import build_host, quiet_libp2p_logs
from aria.rpc import start_rpc_worker

SPEC = load_spec()
ATTACKS = [
    (SPEC.handshake_frame + 1).to_bytes(4, "big"),  # oversized frame
    encode_frame(b"\xff\xfe not json", 100),  # malformed
    encode_frame(b'{"type":"gossip"}', 100),  # unknown message
    encode_frame(b'{"type":"hello","record":{}}', 100),  # invalid fields
    b"\x00\x00\x01\x00partial",  # truncated, then EOF
]


def test_node_bans_a_peer_that_sends_garbage(aria_paths: AriaPaths) -> None:
    quiet_libp2p_logs()
    options = NodeOptions(port=0, listen_host="127.0.0.1", mdns=False)
    key = NodeKey.generate()
    node = PeerNode(aria_paths, AriaSettings(), options, key, SPEC, LocalFacts(), start_rpc_worker)
    attacker = build_host(NodeKey.generate())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            target = info_from_p2p_addr(node.ctx.host.get_addrs()[0])
            async with attacker.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                me = str(attacker.get_id())
                sent = 0
                with trio.fail_after(60):
                    # A failed handshake closes the connection: the attacker keeps coming back.
                    while me not in node.status().banned_peers and sent < 20:
                        payload = ATTACKS[sent % len(ATTACKS)]
                        sent += 1
                        try:
                            await attacker.connect(target)
                            stream = await attacker.new_stream(
                                target.peer_id, [TProtocol(SPEC.handshake_id)]
                            )
                            await stream.write(payload)
                            await stream.close()
                        except Exception:
                            pass  # refused or cut: try again
                        await trio.sleep(0.3)
                    while target.peer_id in attacker.get_connected_peers():
                        await trio.sleep(0.1)
                assert me in node.status().banned_peers
                assert sent <= 6  # a handful of violations is enough
                # A banned peer that reconnects is dropped again at once.
                try:
                    with trio.fail_after(10):
                        await attacker.connect(target)
                        while target.peer_id in attacker.get_connected_peers():
                            await trio.sleep(0.1)
                except Exception:
                    pass
                assert target.peer_id not in attacker.get_connected_peers()
            node.stop()

    trio.run(main)
