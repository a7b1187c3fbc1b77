// The node view: hardware and what it means per tier, the profile switcher, the consent
// contract's main clauses in plain words, and API keys (a new key is shown once).

import { get, request } from "./api.js";
import { byId, h, replace, say } from "./dom.js";
import * as format from "./format.js";
import { on } from "./live.js";

const PROFILE_WORDS = {
  minimal: "For the smallest machines and background nodes: CPU only, never wakes a GPU.",
  efficient: "The default: native 1-bit models, plus the embedded default model when none is installed.",
  balanced: "Adds quantized general models (the Quality tier).",
  full: "Adds code, reasoning, maths and vision models (the Specialist tier).",
  specialist_only: "Only the Specialist tier's models.",
};

const CONSENT = [
  ["share_inference", "checkbox", "Answer peers' questions",
    "Peers may send prompts to the models installed here. They run on this CPU and use this machine's electricity. Only green-licensed models are ever offered."],
  ["max_remote_jobs", "number", "Peer requests at once", "How many peer requests may run at the same time (0 refuses them all).", { min: 0, max: 64, step: 1 }],
  ["max_remote_tokens", "number", "Longest answer for a peer", "The most tokens one peer request may generate.", { min: 1, step: 1 }],
  ["use_peers", "checkbox", "Ask peers for models not installed here",
    "When you ask for a model this machine does not have, your prompt is sent to a peer that has it, and that peer reads it."],
  ["share_rpc", "checkbox", "Lend this machine for split inference",
    "Peers may run some layers of a model too big for them on this machine's memory and CPU."],
  ["rpc_memory_gb", "number", "Memory lent for split inference (GB)", "The most memory split inference may use here.", { min: 0.1, step: 0.1 }],
  ["rpc_peers", "list", "Peers that may borrow this machine",
    "Their peer ids, separated by spaces or commas; * lets any verified peer borrow. Nobody borrows until someone is listed here."],
  ["share_library", "checkbox", "Share published model files",
    "Peers may download the model files you publish with `aria library publish`, in verified pieces. Only green-licensed files are ever served; it uses your upload bandwidth."],
];

const READINESS = { ready: "ok", limited: "warn", unavailable: "bad", detected: "info" };

function row(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, value)];
}

async function showHardware() {
  const report = await get("/api/hardware");
  const { cpu, memory, gpus, npus } = report.snapshot;
  const groups = Object.entries(report.feature_groups).filter(([, found]) => found.length);
  const threads = Object.entries(report.recommended_threads).map(([size, count]) => `${size}: ${count}`).join(", ");
  replace(byId("hw-body"),
    h("dl", { class: "facts" },
      row("CPU", `${cpu.model} (${cpu.vendor}, ${cpu.arch})`),
      row("Cores", `${cpu.physical_cores ?? "?"} physical, ${cpu.logical_cores} logical`),
      row("ISA features", groups.length
        ? groups.map(([name, found]) => h("span", { class: "group" }, h("span", { class: "muted" }, `${name}: `), found.join(" ")))
        : "none that ARIA's kernels use"),
      row("Memory", `${format.bytes(memory.total_bytes)} total, ${format.bytes(memory.available_bytes)} available, ${format.bytes(report.memory_budget_bytes)} for models`),
      row("GPU", gpus.length ? gpus.map((g) => `${g.name} (${g.backend}${g.memory_bytes ? `, ${format.bytes(g.memory_bytes)}` : ""})`).join("; ") : "none"),
      row("NPU", npus.length ? npus.map((n) => `${n.name} (${n.kind}; not used for inference yet)`).join("; ") : "none"),
      row("Decode threads advised", threads)),
    h("table", { class: "compact" },
      h("caption", {}, "What this hardware means for each tier"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tier"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "What it means"))),
      h("tbody", {}, report.advice.map((item) => h("tr", {},
        h("th", { scope: "row" }, item.subject),
        h("td", {}, h("span", { class: `pill ${READINESS[item.readiness] ?? ""}` }, item.readiness)),
        h("td", {}, item.detail))))));
}

async function showProfile() {
  const profile = await get("/api/profile");
  const form = byId("profile-form");
  replace(form, h("fieldset", {},
    h("legend", {}, "Which tiers this node serves"),
    profile.profiles.map((p) => h("div", { class: "choice" },
      h("input", {
        type: "radio", name: "profile", id: `profile-${p.name}`, value: p.name, checked: p.active,
        "aria-describedby": `profile-${p.name}-desc`,
        on: { change: () => setProfile(p.name) },
      }),
      h("label", { for: `profile-${p.name}` }, h("strong", {}, p.name), ` — ${p.tiers.join(", ")}`),
      h("p", { id: `profile-${p.name}-desc`, class: "small muted" }, PROFILE_WORDS[p.name] ?? "")))),
  h("p", { class: "small" }, `For a new chat, "auto" tries: ${profile.auto.candidates.join(" → ") || "nothing installed"}`),
  profile.auto.notice ? h("p", { class: "notice small" }, profile.auto.notice) : null);
}

async function setProfile(name) {
  const status = byId("profile-status");
  try {
    const saved = await request("PUT", "/api/profile", { profile: name });
    say(status, saved.overridden
      ? `Saved, but ARIA_NODE__PROFILE keeps ${saved.active} active.`
      : `Saved: profile ${saved.active} is active from the next request on.`);
    await showProfile();
  } catch (error) {
    say(status, error.message, "error");
    await showProfile();
  }
}

async function showConsent() {
  const { settings, version, signed, problem } = await get("/api/consent");
  const form = byId("consent-form");
  replace(form,
    CONSENT.map(([name, kind, label, words, bounds]) => h("div", { class: kind === "checkbox" ? "choice" : "field" },
      kind === "checkbox"
        ? [h("input", { type: "checkbox", id: `consent-${name}`, name, checked: settings[name], "aria-describedby": `consent-${name}-desc` }),
          h("label", { for: `consent-${name}` }, label)]
        : [h("label", { for: `consent-${name}` }, label),
          kind === "list"
            ? h("input", { type: "text", id: `consent-${name}`, name, value: settings[name].join(" "), spellcheck: "false", "aria-describedby": `consent-${name}-desc` })
            : h("input", { type: "number", id: `consent-${name}`, name, value: String(settings[name]), "aria-describedby": `consent-${name}-desc`, ...bounds })],
      h("p", { id: `consent-${name}-desc`, class: "small muted" }, words))),
    h("p", { class: "small muted" },
      `Consent contract version ${version}${signed ? ", signed" : ` (not in force: ${problem})`}. `,
      "A change is signed as the next version, recorded in the ledger and applied at once by this API and by a node running here (aria node start)."),
    h("button", { type: "submit" }, "Save what this node shares"));
}

async function saveConsent(event) {
  event.preventDefault();
  const body = {};
  for (const [name, kind] of CONSENT) {
    const input = byId(`consent-${name}`);
    body[name] = kind === "checkbox" ? input.checked
      : kind === "list" ? input.value.split(/[\s,]+/).filter(Boolean)
        : Number(input.value);
  }
  const status = byId("consent-status");
  try {
    const saved = await request("PUT", "/api/consent", body);
    const running = saved.running_node;
    if (running && !running.applied) say(status, `Saved, but the running node did not take it: ${running.error}`, "error");
    else say(status, `Saved as version ${saved.version}${running ? ", and the running node applied it" : ""}.`);
  } catch (error) {
    say(status, error.message, "error");
  }
}

async function showKeys() {
  const listed = await get("/api/keys");
  const body = byId("keys-body");
  replace(body,
    h("p", { class: "small muted" }, listed.required
      ? "This API requires a key on every request."
      : "This API answers without a key on loopback; keys are needed when it listens on other addresses."),
    listed.keys.length
      ? h("table", { class: "compact" },
        h("caption", { class: "visually-hidden" }, "API keys"),
        h("thead", {}, h("tr", {}, ["Name", "Id", "Starts with", "Created", "Memory", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, listed.keys.map((key) => h("tr", {},
          h("th", { scope: "row" }, key.name, key.id === listed.current ? h("span", { class: "pill info" }, "this page") : null),
          h("td", {}, key.id), h("td", {}, h("code", {}, key.hint)), h("td", {}, key.created.slice(0, 16).replace("T", " ")),
          h("td", {}, h("input", {
            type: "checkbox", checked: key.memory, "aria-label": `Memory for key ${key.name}`,
            title: "Requests with this key use their own memory, kept on this machine",
            on: { change: (event) => setMemory(key, event.target) },
          })),
          h("td", {}, h("button", {
            type: "button", class: "quiet", "aria-label": `Revoke key ${key.name}`, text: "Revoke",
            on: { click: () => revoke(key, key.id === listed.current) },
          }))))))
      : h("p", { class: "muted" }, "No API keys yet."));
}

async function setMemory(key, box) {
  try {
    await request("PUT", `/api/keys/${encodeURIComponent(key.id)}`, { memory: box.checked });
    say(byId("key-secret"), `Memory ${box.checked ? "on" : "off"} for the key "${key.name}".`);
  } catch (error) {
    box.checked = !box.checked;
    say(byId("key-secret"), error.message, "error");
  }
}

async function revoke(key, own) {
  const warning = own ? " This page signed in with it and will ask for another key." : "";
  if (!window.confirm(`Revoke the key "${key.name}"? Programs using it are refused from now on.${warning}`)) return;
  try {
    await request("DELETE", `/api/keys/${encodeURIComponent(key.id)}`);
    byId("key-secret").replaceChildren();
    await showKeys();
  } catch (error) {
    say(byId("key-secret"), error.message, "error");
  }
}

async function createKey(event) {
  event.preventDefault();
  const name = byId("key-name");
  const box = byId("key-secret");
  try {
    const created = await request("POST", "/api/keys", { name: name.value.trim() });
    name.value = "";
    const secret = h("input", { id: "new-key", readonly: true, value: created.key, spellcheck: "false" });
    const copy = h("button", { type: "button", text: "Copy" });
    copy.addEventListener("click", () => {
      secret.select();
      navigator.clipboard?.writeText(created.key);
    });
    replace(box, h("div", { class: "secret" },
      h("label", { for: "new-key" }, `Key "${created.name}": copy it now, it will not be shown again.`),
      h("div", { class: "row" }, secret, copy)));
    secret.focus();
    secret.select();
    await showKeys();
  } catch (error) {
    say(box, error.message, "error");
  }
}

export async function show() {
  await Promise.all([showHardware(), showProfile(), showConsent(), showKeys()]);
}

export function init() {
  byId("consent-form").addEventListener("submit", saveConsent);
  byId("key-form").addEventListener("submit", createKey);
  on("profile", () => showProfile().catch(() => {}));
  on("consent", () => showConsent().catch(() => {}));
  on("keys", () => showKeys().catch(() => {}));
}
