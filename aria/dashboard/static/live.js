// The page's one live connection (/api/events, server-sent events). While nothing
// happens on the node nothing arrives but a keep-alive comment every 25 s: no timer
// runs in this page. When the connection drops, it is opened again after a growing
// pause, and listeners of "reconnected" re-read what they show.

import { events, stream } from "./api.js";

const listeners = new Map();
let controller = null;
let retryMs = 1000;

export function on(kind, handler) {
  if (!listeners.has(kind)) listeners.set(kind, new Set());
  listeners.get(kind).add(handler);
}

function emit(kind, data) {
  for (const handler of listeners.get(kind) ?? []) {
    try {
      handler(data);
    } catch (error) {
      console.error(`live ${kind} handler failed`, error);
    }
  }
}

function status(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

export function stop() {
  controller?.abort();
  controller = null;
}

export async function start() {
  stop();
  const mine = new AbortController();
  controller = mine;
  let connectedBefore = false;
  while (controller === mine) {
    try {
      const response = await stream("GET", "/api/events", undefined, { signal: mine.signal });
      for await (const { event, data } of events(response)) {
        if (event === "hello") {
          retryMs = 1000;
          status("");
          if (connectedBefore) emit("reconnected", {});
          connectedBefore = true;
          continue;
        }
        emit(event, JSON.parse(data));
      }
    } catch (error) {
      if (mine.signal.aborted) return;
      if (error.status === 401) return; // the page asks for a key
    }
    if (controller !== mine) return;
    status("Reconnecting to the node…");
    await new Promise((resolve) => setTimeout(resolve, retryMs));
    retryMs = Math.min(retryMs * 2, 30000);
  }
}
