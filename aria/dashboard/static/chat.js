// Chat: streamed answers through this node's OpenAI endpoint, a stop button, markdown,
// conversations kept in this browser (localStorage), and for each answer a badge with
// the model, its tier, where it ran (here, on a peer, split over peers), tokens,
// tokens per second and the router's reason.

import { ApiError, events, get, stream } from "./api.js";
import { byId, h, replace } from "./dom.js";
import * as format from "./format.js";
import { renderMarkdown } from "./markdown.js";

const STORE = "aria.conversations";
const KEEP = 100;

let conversations = [];
let current = null;
let controller = null;
let tiers = new Map(); // model id -> tier, from /v1/models (and the catalog for peers' models)

function load() {
  try {
    const parsed = JSON.parse(localStorage.getItem(STORE) || "[]");
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

function save() {
  conversations.sort((a, b) => b.updated - a.updated);
  conversations = conversations.slice(0, KEEP);
  try {
    localStorage.setItem(STORE, JSON.stringify(conversations));
  } catch {
    byId("chat-status").textContent = "This browser's storage is full: older conversations were not saved.";
  }
}

// "model=X; category=Y; fallbacks=...; split=2 peer(s); reason=free text" -> object
export function parseRoute(header) {
  const out = {};
  if (!header) return out;
  const at = header.indexOf("reason=");
  const head = at >= 0 ? header.slice(0, at) : header;
  for (const part of head.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key) out[key] = value.join("=");
  }
  if (at >= 0) out.reason = header.slice(at + "reason=".length).trim();
  return out;
}

export function badgeFrom(headers, model) {
  const route = parseRoute(headers.get("x-aria-route"));
  const peer = headers.get("x-aria-served-by");
  const split = headers.get("x-aria-split");
  return {
    model: route.model || model,
    category: route.category && route.category !== "none" ? route.category : null,
    reason: route.reason || null,
    fallbacks: route.fallbacks || null,
    where: peer ? "peer" : split ? "split" : "local",
    peer,
    split,
    notice: headers.get("x-aria-notice"),
    memory: headers.get("x-aria-memory"),
  };
}

// x-aria-memory (docs/memory.md): "used=ID,ID; saved=ID; reminder=ID" or "withheld (...)".
function memoryText(header) {
  if (header.startsWith("withheld")) return `memory ${header}`;
  const fields = Object.fromEntries(header.split(";").map((part) => part.trim().split("=")));
  const used = fields.used && fields.used !== "none" ? fields.used.split(",").length : 0;
  const words = [`${used} ${used === 1 ? "memory" : "memories"} used`];
  if (fields.saved) words.push("1 saved");
  if (fields.reminder) words.push("a reminder set");
  return `memory: ${words.join(", ")}`;
}

function whereText(meta) {
  if (meta.where === "peer") return `on peer ${format.shortId(meta.peer)}`;
  if (meta.where === "split") return "split over peers";
  return "on this machine";
}

function badge(meta) {
  if (!meta) return null;
  const tier = tiers.get(meta.model) || meta.tier;
  const items = [
    h("span", { class: "pill" }, meta.model || "?"),
    tier ? h("span", { class: `pill tier tier-${tier}` }, tier) : null,
    h("span", { class: `pill where where-${meta.where}`, title: meta.peer || meta.split || "" }, whereText(meta)),
    meta.tokens !== undefined ? h("span", {}, `${meta.tokens} tokens`) : null,
    meta.tps ? h("span", {}, `${format.number(meta.tps)} tok/s`) : null,
    meta.memory ? h("span", { class: "pill info", title: meta.memory }, memoryText(meta.memory)) : null,
    meta.stopped ? h("span", { class: "pill warn" }, "stopped") : null,
  ];
  const why = meta.reason
    ? h("p", { class: "reason small muted" },
      `Why this model: ${meta.category ? `${meta.category}, ` : ""}${meta.reason}`,
      meta.split ? ` Layers: ${meta.split}.` : "")
    : null;
  const skipped = meta.fallbacks
    ? h("details", { class: "small muted" },
      h("summary", {}, `${meta.fallbacks.split(",").length} candidate(s) skipped`),
      h("ul", {}, meta.fallbacks.split(",").map((f) => h("li", {}, f.replace(":", ": ")))))
    : null;
  return [
    h("div", { class: "badge", "aria-label": "How this answer was made" }, items),
    why,
    skipped,
    meta.notice ? h("p", { class: "notice small" }, meta.notice) : null,
  ];
}

function messageView(message) {
  const content = h("div", { class: "content" });
  if (message.role === "assistant") content.append(renderMarkdown(message.content));
  else content.append(h("p", { class: "plain" }, message.content));
  const node = h("article", {
    class: `msg ${message.role}`,
    "aria-label": message.role === "user" ? "You" : "Answer",
  }, content);
  if (message.error) node.append(h("p", { class: "error", role: "alert" }, message.error));
  if (message.role === "assistant") node.append(h("div", { class: "meta" }, badge(message.meta)));
  return node;
}

function renderThread() {
  const log = byId("chat-log");
  if (!current || current.messages.length === 0) {
    replace(log, h("p", { class: "muted empty" }, "Ask something to start. Answers stream in as the model writes them."));
    return;
  }
  replace(log, current.messages.map(messageView));
  log.scrollTop = log.scrollHeight;
}

function renderList() {
  const list = byId("chat-list");
  replace(list, conversations.map((conv) => h("li", { class: conv === current ? "active" : "" },
    h("button", {
      type: "button",
      class: "conv",
      "aria-current": conv === current ? "true" : undefined,
      on: { click: () => select(conv) },
    }, conv.title || "New chat"),
    h("button", { type: "button", class: "quiet small", on: { click: () => remove(conv) } },
      h("span", { "aria-hidden": "true" }, "×"),
      h("span", { class: "visually-hidden" }, `Delete conversation: ${conv.title || "New chat"}`)))));
}

function select(conv) {
  if (controller) return; // finish or stop the running answer first
  current = conv;
  if (conv.model) byId("chat-model").value = conv.model;
  renderList();
  renderThread();
}

function remove(conv) {
  if (controller && conv === current) return;
  conversations = conversations.filter((c) => c !== conv);
  save();
  if (conv === current) newConversation();
  else renderList();
}

function newId() {
  // crypto.randomUUID needs a secure context; a LAN address over plain HTTP is not one
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function newConversation() {
  if (controller) return;
  current = { id: newId(), title: "", updated: Date.now(), messages: [] };
  renderList();
  renderThread();
  byId("chat-input").focus();
}

export async function refreshModels() {
  const select = byId("chat-model");
  const listed = await get("/v1/models");
  const chosen = select.value || "auto"; // read after the wait: the user may have picked meanwhile
  tiers = new Map(listed.data.filter((m) => m.tier).map((m) => [m.id, m.tier]));
  replace(select, listed.data.map((m) => h("option", { value: m.id },
    m.id === "auto" ? "auto: ARIA picks per question" : `${m.id} (${m.tier}${m.routable ? "" : ", outside the profile"})`)));
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "auto";
  return listed.data;
}

function busy(on) {
  byId("chat-send").disabled = on;
  byId("chat-stop").hidden = !on;
  byId("chat-log").setAttribute("aria-busy", on ? "true" : "false");
}

async function send(text) {
  const model = byId("chat-model").value || "auto";
  if (!current) newConversation();
  const conv = current;
  if (!conversations.includes(conv)) conversations.unshift(conv);
  if (!conv.title) conv.title = text.slice(0, 60);
  conv.model = model;
  conv.messages.push({ role: "user", content: text });
  const answer = { role: "assistant", content: "", meta: null };
  const history = conv.messages.filter((m) => !m.error).map((m) => ({ role: m.role, content: m.content }));
  conv.messages.push(answer);
  conv.updated = Date.now();
  renderList();
  renderThread();
  const view = byId("chat-log").lastElementChild;
  const content = view.querySelector(".content");
  view.dataset.streaming = "true";
  controller = new AbortController();
  busy(true);
  byId("chat-status").textContent = "Waiting for the model…";
  let first = null;
  let last = null;
  let usage = null;
  let pending = false;
  const paint = () => {
    pending = false;
    content.replaceChildren(renderMarkdown(answer.content));
    const log = byId("chat-log");
    log.scrollTop = log.scrollHeight;
  };
  try {
    const response = await stream("POST", "/v1/chat/completions", {
      model,
      messages: history,
      stream: true,
      stream_options: { include_usage: true },
    }, { signal: controller.signal });
    answer.meta = badgeFrom(response.headers, model);
    byId("chat-status").textContent = "Writing…";
    for await (const { data } of events(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(0, chunk.error.message, chunk.error.code);
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        const now = performance.now();
        first ??= now;
        last = now;
        answer.content += piece;
        if (!pending) {
          pending = true;
          requestAnimationFrame(paint);
        }
      }
    }
  } catch (error) {
    if (error.name === "AbortError") {
      if (answer.meta) answer.meta.stopped = true;
      else answer.error = "Stopped before the first token.";
    } else {
      answer.error = error.message;
    }
  } finally {
    controller = null;
    busy(false);
    delete view.dataset.streaming;
  }
  if (answer.meta) {
    answer.meta.tokens = usage?.completion_tokens;
    if (usage && usage.completion_tokens > 1 && last > first) {
      answer.meta.tps = ((usage.completion_tokens - 1) * 1000) / (last - first);
    }
    if (!tiers.has(answer.meta.model)) answer.meta.tier = await catalogTier(answer.meta.model);
  }
  conv.updated = Date.now();
  save();
  if (conv === current) {
    view.replaceWith(messageView(answer));
    const log = byId("chat-log");
    log.scrollTop = log.scrollHeight;
  }
  byId("chat-status").textContent = answer.error ? "" : "Done.";
}

async function catalogTier(model) {
  try {
    const catalog = await get("/api/catalog");
    return catalog.models.find((m) => m.id === model)?.tier;
  } catch {
    return undefined;
  }
}

export function init() {
  conversations = load();
  const form = byId("chat-form");
  const input = byId("chat-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  byId("chat-stop").addEventListener("click", () => controller?.abort());
  byId("chat-new").addEventListener("click", newConversation);
  if (conversations.length) select(conversations[0]);
  else newConversation();
}
