// The network view: this node's peer id and reachability, its peers (RTT, what they
// share, their standing), and the requests used and served over the network. Live
// while the view is open (the API asks the node and sends changes); closed otherwise.

import { events, stream } from "./api.js";
import { byId, h, replace } from "./dom.js";
import * as format from "./format.js";

let controller = null;

function reachability(status) {
  const relayed = status.relayed_addrs.length > 0 || status.relays_in_use.length > 0;
  if (status.reachability === "public") return ["public", "Other nodes can connect to this one directly."];
  if (status.reachability === "private") {
    return relayed
      ? ["behind NAT, relayed", "Peers reach this node through a relay (and try a direct connection through the NAT)."]
      : ["behind NAT", "This node can connect out, but peers cannot connect in until a relay is reserved."];
  }
  return relayed
    ? ["relayed", "Reachable through a relay; direct reachability not measured yet."]
    : ["unknown yet", "The node has not measured whether peers can reach it (AutoNAT needs peers)."];
}

function shares(peer) {
  const c = peer.consent;
  const parts = [];
  if (c.share_inference) parts.push(`answers prompts (up to ${c.max_remote_jobs} at once)`);
  if (c.share_rpc) parts.push(`lends ${c.rpc_memory_gb} GB for split inference`);
  if (c.share_library) parts.push("shares model files");
  return parts.length ? parts.join("; ") : "nothing";
}

function peersTable(peers) {
  if (!peers.length) return h("p", { class: "muted", id: "no-peers" }, "No peers yet. Bootstrap from a known node, or wait for mDNS on this network.");
  return h("table", { class: "peers" },
    h("caption", {}, `${peers.length} peer(s)`),
    h("thead", {}, h("tr", {}, ["Peer", "Connection", "RTT", "Hardware", "Models offered", "Shares", "Load", "Reputation"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, peers.map((peer) => h("tr", { dataset: { peer: peer.peer_id } },
      h("th", { scope: "row", "data-label": "Peer" }, h("code", { title: peer.peer_id, class: "peer-id" }, peer.peer_id),
        peer.verified ? null : h("span", { class: "pill warn" }, "unverified")),
      h("td", { "data-label": "Connection" }, peer.connection),
      h("td", { "data-label": "RTT" }, peer.rtt_ms === null ? "–" : `${format.number(peer.rtt_ms)} ms`),
      h("td", { "data-label": "Hardware" }, `${peer.hardware.arch}, ${peer.hardware.cpu_cores} cores, ${format.number(peer.hardware.memory_gb)} GiB${peer.hardware.gpu ? `, ${peer.hardware.gpu}` : ""}`),
      h("td", { "data-label": "Models offered" }, peer.models.length
        ? peer.models.map((m) => h("span", { class: `licence ${m.licence_class}`, title: m.sha256 }, h("span", { class: "dot", "aria-hidden": "true" }), m.id))
        : "none"),
      h("td", { "data-label": "Shares" }, shares(peer)),
      h("td", { "data-label": "Load" }, `${format.number(peer.load.cpu_percent, 0)}% CPU, ${peer.load.active_jobs} job(s)`),
      h("td", { "data-label": "Reputation" },
        h("span", { class: "muted" }, "not rated yet"),
        h("span", { class: "small muted block" }, `protocol standing ${format.number(peer.score)}`))))));
}

function render(snapshot) {
  const body = byId("network-body");
  const traffic = snapshot.traffic;
  const counters = h("section", { class: "card", "aria-labelledby": "traffic-title" },
    h("h2", { id: "traffic-title" }, "Requests over the network (since this API started)"),
    h("dl", { class: "facts" },
      h("dt", {}, "Sent to a peer"), h("dd", { id: "used-remote" }, String(traffic.used_remote)),
      h("dt", {}, "Split over peers"), h("dd", { id: "used-split" }, String(traffic.used_split)),
      h("dt", {}, "Served for peers"), h("dd", { id: "served-remote" }, String(traffic.served_remote))));
  if (!snapshot.running) {
    replace(body,
      h("section", { class: "card" }, h("h2", {}, "No node is running"),
        h("p", {}, "The peer-to-peer node runs in its own process. Start it on this machine with ", h("code", {}, "aria node start"),
          "; this view follows it as soon as it answers.")),
      counters);
    return;
  }
  const status = snapshot.status;
  const [label, words] = reachability(status);
  replace(body,
    snapshot.error ? h("p", { class: "error", role: "alert" }, snapshot.error) : null,
    h("section", { class: "card", "aria-labelledby": "self-title" },
      h("h2", { id: "self-title" }, "This node"),
      h("dl", { class: "facts" },
        h("dt", {}, "Peer id"), h("dd", {}, h("code", { id: "self-peer-id", class: "peer-id" }, status.peer_id)),
        h("dt", {}, "Reachability"), h("dd", {}, h("span", { class: "pill info", id: "nat-status" }, label), " ", words),
        h("dt", {}, "Listening on"), h("dd", {}, status.listen_addrs.map((a) => h("code", { class: "block" }, a))),
        status.relayed_addrs.length ? [h("dt", {}, "Relayed at"), h("dd", {}, status.relayed_addrs.map((a) => h("code", { class: "block" }, a)))] : null,
        h("dt", {}, "Peers"), h("dd", {}, `${status.connected_peers} connected, ${status.aria_peers} verified ARIA node(s)`),
        h("dt", {}, "DHT"), h("dd", {}, `${status.dht_routing_table} in the routing table, about ${status.dht_size_estimate} nodes`),
        h("dt", {}, "Up since"), h("dd", {}, new Date(status.started_at * 1000).toLocaleString()))),
    h("section", { class: "card", "aria-labelledby": "peers-title" },
      h("h2", { id: "peers-title" }, "Peers"),
      peersTable(snapshot.peers),
      h("p", { class: "small muted" },
        "Reputation will come from the provenance ledger (served requests, verified work). Until then each peer shows its protocol standing: 100 for a well-behaved peer, lower after malformed or abusive traffic.")),
    counters);
}

// Resolves once the first snapshot is shown; the view then follows the node until hidden.
export function show() {
  hide();
  const mine = new AbortController();
  controller = mine;
  return new Promise((shown) => {
    (async () => {
      try {
        const response = await stream("GET", "/api/network/events", undefined, { signal: mine.signal });
        for await (const { event, data } of events(response)) {
          if (event !== "network") continue;
          render(JSON.parse(data));
          shown();
        }
      } catch (error) {
        if (!mine.signal.aborted) replace(byId("network-body"), h("p", { class: "error", role: "alert" }, error.message));
      }
      shown();
    })();
  });
}

export function hide() {
  controller?.abort();
  controller = null;
}
