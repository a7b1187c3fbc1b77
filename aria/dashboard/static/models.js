// The models view: the catalog with tier, size, licence badge, install state and
// whether it runs here; downloads with live progress, speed, ETA and cancel; verify,
// remove; import of a local GGUF with the licence question asked plainly.

import { get, request } from "./api.js";
import { byId, h, replace, say } from "./dom.js";
import * as format from "./format.js";
import { on } from "./live.js";

let catalog = null;
const downloads = new Map(); // model id -> latest download state
const messages = new Map(); // model id -> last action's message
let onInstalled = () => {};

export function whenInstalled(handler) {
  onInstalled = handler;
}

function licenceBadge(model) {
  const cls = model.licence_class;
  const allows = catalog.licence_classes[cls] ?? "";
  return h("span", { class: `licence ${cls}`, title: `${model.licence_summary}: ${allows}` },
    h("span", { class: "dot", "aria-hidden": "true" }), `${model.licence} · ${cls}`,
    h("span", { class: "visually-hidden" }, ` (${allows})`));
}

function progressText(state) {
  const total = state.total_bytes || 0;
  const done = state.done_bytes || 0;
  const percent = total ? Math.floor((done / total) * 100) : 0;
  const parts = [total ? `${percent}% · ${format.bytes(done)} of ${format.bytes(total)}` : "starting"];
  if (state.speed_bps) parts.push(format.rate(state.speed_bps));
  if (state.eta_s !== null && state.eta_s !== undefined) parts.push(`${format.duration(state.eta_s)} left`);
  return { percent, text: parts.join(" · ") };
}

function fillProgress(view, state) {
  const bar = view.querySelector("progress");
  const text = view.querySelector(".progress-text");
  const { percent, text: words } = progressText(state);
  bar.max = state.total_bytes || 1;
  bar.value = state.total_bytes ? state.done_bytes : 0;
  text.textContent = words;
  text.dataset.percent = String(percent);
}

function progressView(model, state) {
  const label = `download-${model.id}`;
  const view = h("div", { class: "download", dataset: { model: model.id } },
    h("label", { for: label, class: "visually-hidden" }, `Download of ${model.id}`),
    h("progress", { id: label, max: 1, value: 0, "aria-describedby": `${label}-text` }),
    h("span", { id: `${label}-text`, class: "small progress-text" }),
    h("button", { type: "button", class: "quiet", "aria-label": `Cancel the download of ${model.id}`, text: "Cancel",
      on: { click: () => act(model, "DELETE", `/api/downloads/${encodeURIComponent(model.id)}`) } }));
  fillProgress(view, state);
  return view;
}

function actions(model) {
  const state = downloads.get(model.id);
  if (state?.state === "running") return progressView(model, state);
  const id = encodeURIComponent(model.id);
  if (model.installed) {
    return h("div", { class: "row" },
      h("button", { type: "button", "aria-label": `Verify ${model.id}`, text: "Verify",
        on: { click: () => act(model, "POST", `/api/models/${id}/verify`) } }),
      h("button", { type: "button", class: "quiet", "aria-label": `Remove ${model.id}`, text: "Remove",
        on: { click: () => {
          if (window.confirm(`Remove ${model.id} from this machine (${format.bytes(model.installed.size_bytes)})?`)) {
            act(model, "DELETE", `/api/models/${id}`);
          }
        } } }));
  }
  if (model.source.kind === "local") return h("span", { class: "muted small" }, "import it again to use it");
  const runs = model.runs_here.engine !== null;
  const label = runs ? "Download" : "Download anyway";
  return h("button", {
    type: "button", class: runs ? "primary" : "", "aria-label": `${label} ${model.id}`,
    text: label,
    title: runs ? "" : model.runs_here.reason,
    on: { click: () => act(model, "POST", `/api/models/${id}/download`, { anyway: !runs }) },
  });
}

async function act(model, method, path, body) {
  messages.delete(model.id);
  try {
    const result = await request(method, path, body ?? {});
    if (result?.results) {
      const failed = result.results.filter((r) => !r.ok);
      messages.set(model.id, failed.length ? failed[0].detail : `verified: ${result.results[0]?.detail ?? ""}`);
    }
    if (result?.state) downloads.set(model.id, result);
  } catch (error) {
    messages.set(model.id, error.message);
  }
  await refresh();
}

function status(model) {
  const state = downloads.get(model.id);
  const parts = [];
  if (model.installed) parts.push(h("span", { class: "pill ok" }, "installed"));
  else parts.push(h("span", { class: "pill" }, "not installed"));
  if (state?.state === "failed") parts.push(h("span", { class: "error small" }, ` download failed: ${state.error}`));
  if (state?.state === "cancelled") parts.push(h("span", { class: "small muted" }, " download cancelled (kept bytes resume next time)"));
  if (messages.has(model.id)) parts.push(h("p", { class: "small", role: "status" }, messages.get(model.id)));
  return parts;
}

function visible(model) {
  const text = byId("models-search").value.trim().toLowerCase();
  const tier = byId("models-tier").value;
  if (byId("models-installed").checked && !model.installed) return false;
  if (tier && model.tier !== tier) return false;
  return !text || `${model.id} ${model.name} ${model.family}`.toLowerCase().includes(text);
}

function render() {
  if (!catalog) return;
  const rows = catalog.models.filter(visible);
  replace(byId("models-intro"),
    `Profile ${catalog.profile} routes to: ${catalog.tiers_enabled.join(", ")}. `,
    `${catalog.models.filter((m) => m.installed).length} of ${catalog.models.length} models installed.`);
  replace(byId("models-legend"), Object.entries(catalog.licence_classes).map(([cls, text]) =>
    h("span", { class: `licence ${cls}` }, h("span", { class: "dot", "aria-hidden": "true" }), `${cls}: ${text}`)));
  replace(byId("models-table"), rows.length
    ? h("table", { class: "models" },
      h("caption", { class: "visually-hidden" }, "Model catalog"),
      h("thead", {}, h("tr", {}, ["Model", "Tier", "Size", "Licence", "Runs here", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((model) => h("tr", { dataset: { model: model.id } },
        h("th", { scope: "row", "data-label": "Model" }, h("span", { class: "model-id" }, model.id),
          h("span", { class: "small muted block" }, `${model.params_b}B · ${model.quantization}${model.native_1bit ? " · 1-bit" : ""}`)),
        h("td", { "data-label": "Tier" }, model.tier, model.routable ? "" : h("span", { class: "small muted block" }, "off in this profile")),
        h("td", { "data-label": "Size" }, format.bytes(model.installed?.size_bytes ?? model.size_bytes)),
        h("td", { "data-label": "Licence" }, licenceBadge(model)),
        h("td", { "data-label": "Runs here" }, model.runs_here.engine
          ? `yes, ${model.runs_here.engine}`
          : h("span", { title: model.runs_here.reason }, `no: ${model.runs_here.remedy ?? model.runs_here.reason}`)),
        h("td", { "data-label": "State" }, status(model)),
        h("td", { "data-label": "Actions" }, actions(model))))))
    : h("p", { class: "muted" }, "No model matches."));
}

export async function refresh() {
  catalog = await get("/api/catalog");
  for (const state of catalog.downloads) downloads.set(state.model_id, state);
  render();
}

function updateDownload(state) {
  const before = downloads.get(state.model_id)?.state;
  downloads.set(state.model_id, state);
  const view = document.querySelector(`.download[data-model="${CSS.escape(state.model_id)}"]`);
  if (view && state.state === "running") {
    fillProgress(view, state); // in place: the table, and the focus, stay where they are
  } else if (before !== state.state || !view) {
    render();
  }
  if (state.state === "done") onInstalled(state.model_id);
}

async function inspect(event) {
  event.preventDefault();
  const result = byId("import-result");
  const path = byId("import-path").value.trim();
  try {
    const info = await request("POST", "/api/models/inspect", { path });
    const needs = info.verdict === "needs_acceptance";
    const form = h("form", { class: "stack", id: "import-confirm" },
      h("dl", { class: "facts" },
        h("dt", {}, "File"), h("dd", {}, `${info.path} (${format.bytes(info.size_bytes)})`),
        h("dt", {}, "Model"), h("dd", {}, `${info.name ?? "unnamed"} · ${info.architecture} · ${info.quantization}`),
        h("dt", {}, "Licence"), h("dd", {}, h("span", { class: `licence ${info.licence_class}` },
          h("span", { class: "dot", "aria-hidden": "true" }), `${info.licence ?? "none declared"} · ${info.licence_class}`))),
      h("p", { class: info.verdict === "refused" ? "error" : "", role: "status" }, info.question),
      info.verdict === "refused" ? null : [
        h("label", { for: "import-id" }, "Store it as"),
        h("input", { id: "import-id", value: info.suggested_id, maxlength: 128 }),
        needs ? h("label", { class: "check" },
          h("input", { type: "checkbox", id: "import-accept", required: true }),
          ` I have read the terms of ${info.licence} and accept them for use on this machine only.`) : null,
        h("button", { type: "submit", class: "primary" }, "Import"),
      ],
      h("p", { id: "import-status", role: "status" }));
    form.addEventListener("submit", (e) => importFile(e, info));
    replace(result, form);
  } catch (error) {
    replace(result, h("p", { class: "error", role: "alert" }, error.message));
  }
}

async function importFile(event, info) {
  event.preventDefault();
  const status = byId("import-status");
  say(status, "Copying and checking the file (sha256)…");
  try {
    const model = await request("POST", "/api/models/import", {
      path: info.path,
      id: byId("import-id").value.trim() || null,
      accept_licence: byId("import-accept")?.checked ?? false,
    });
    say(status, `Imported as ${model.id}.`);
    onInstalled(model.id);
  } catch (error) {
    say(status, error.message, "error");
  }
}

export function init() {
  for (const id of ["models-search", "models-tier", "models-installed"]) {
    byId(id).addEventListener("input", render);
  }
  byId("import-form").addEventListener("submit", inspect);
  on("download", updateDownload);
  on("models", () => catalog && refresh().catch(() => {}));
  on("profile", () => catalog && refresh().catch(() => {}));
}
