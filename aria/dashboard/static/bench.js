// Benchmarks and energy: run `aria bench` from the page (progress live), then draw
// tok/s, time to first token, J/token and the roofline fraction from the JSON it wrote.

import { get, request } from "./api.js";
import { byId, h, replace, say } from "./dom.js";
import * as format from "./format.js";
import { barChart } from "./charts.js";
import { on } from "./live.js";

let latest = null;

function progress(run) {
  const running = run.state === "running";
  byId("bench-run").disabled = running;
  byId("bench-stop").hidden = !running;
  byId("bench-progress").hidden = !running;
  const bar = byId("bench-bar");
  bar.max = Math.max(run.total, 1);
  bar.value = run.done;
  byId("bench-label").textContent = running
    ? `${run.label}${run.total ? ` (${run.done} of ${run.total} runs)` : ""}`
    : "";
  say(byId("bench-error"), run.state === "failed" ? `The benchmark failed: ${run.error}` : "", "error");
}

function table(report) {
  const head = ["Model", "Threads", "Prompt tok/s", "Generation tok/s", "TTFT ms", "J/token", "Peak RSS", "Roofline"];
  return h("div", { class: "table-scroll" }, h("table", { class: "compact" },
    h("caption", {}, "Median of the measured runs"),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, report.models.map((m) => h("tr", {},
      h("th", { scope: "row" }, m.model),
      h("td", {}, String(m.best_threads)),
      h("td", {}, format.number(m.prompt_tok_s.median)),
      h("td", {}, format.number(m.gen_tok_s.median)),
      h("td", {}, format.number(m.ttft_ms.median)),
      h("td", {}, format.number(m.energy_j_per_token.median, 3)),
      h("td", {}, `${format.number(m.peak_rss_mib, 0)} MiB`),
      h("td", {}, `${format.percent(m.roofline.fraction)} of ${format.number(m.roofline.ceiling_tok_s)} tok/s`))))));
}

function showReport(name, report) {
  const rows = (pick) => report.models.map((m) => ({ label: m.model, values: pick(m) }));
  const machine = report.machine ?? {};
  replace(byId("bench-report"),
    h("p", { class: "small muted" },
      `${machine.measured_at ?? name}: ${machine.hardware?.cpu?.model ?? "this machine"} (load ${format.number(machine.load_average_at_start?.["1min"])} at start); ${report.plan.prompt_tokens} prompt + ${report.plan.gen_tokens} generated tokens, ${report.plan.runs} run(s); memory read bandwidth ${format.number(report.memory_bandwidth.read_gb_s)} GB/s.`),
    table(report),
    h("div", { class: "charts" },
      barChart({ title: "Throughput", unit: "tokens/s", series: [{ name: "prompt", cls: "s1" }, { name: "generation", cls: "s2" }],
        rows: rows((m) => [m.prompt_tok_s.median, m.gen_tok_s.median]), show: (v) => format.number(v) }),
      barChart({ title: "Time to first token", unit: "ms", series: [{ name: "TTFT", cls: "s1" }],
        rows: rows((m) => [m.ttft_ms.median]), show: (v) => format.number(v) }),
      barChart({ title: "Energy per generated token", unit: "J/token", series: [{ name: "J/token", cls: "s3" }],
        rows: rows((m) => [m.energy_j_per_token.median]), show: (v) => format.number(v, 3) }),
      barChart({ title: "Fraction of the decode roofline", unit: "% of memory-bandwidth ceiling", series: [{ name: "roofline", cls: "s2" }],
        rows: rows((m) => [m.roofline.fraction]), max: 1, show: (v) => format.percent(v) })),
    h("p", { class: "small" }, `Energy: ${report.energy.label}`),
    h("p", { class: "small muted" }, "Energy per token here is what aria bench measured for this run. Energy accounting per request (and in the provenance ledger) is not part of ARIA yet."));
}

async function showResult(name) {
  if (!name) {
    replace(byId("bench-report"), h("p", { class: "muted" }, "No benchmark yet: run one above (about a minute with the embedded model)."));
    return;
  }
  showReport(name, await get(`/api/bench/results/${encodeURIComponent(name)}`));
}

async function refreshModels() {
  const listed = await get("/v1/models");
  const select = byId("bench-model");
  const chosen = select.value; // read after the wait: the user may have picked meanwhile
  replace(select, h("option", { value: "" }, "the embedded default model"),
    listed.data.filter((m) => m.id !== "auto").map((m) => h("option", { value: m.id }, m.id)));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

export async function show(selected = null) {
  const state = await get("/api/bench");
  progress(state.run);
  const select = byId("bench-results");
  replace(select, state.results.map((r) => h("option", { value: r.name },
    `${r.name.replace(".json", "")} · ${r.models.map((m) => `${m.model} ${format.number(m.gen_tok_s)} tok/s`).join(", ")}`)));
  byId("bench-picker").hidden = state.results.length === 0;
  latest = selected ?? state.results[0]?.name ?? null;
  if (latest) select.value = latest;
  await Promise.all([refreshModels(), showResult(latest)]);
}

async function start(event) {
  event.preventDefault();
  const value = (id) => Number(byId(id).value);
  try {
    const run = await request("POST", "/api/bench", {
      model: byId("bench-model").value || null,
      prompt_tokens: value("bench-prompt"),
      gen_tokens: value("bench-gen"),
      runs: value("bench-runs"),
      warmup: value("bench-warmup"),
      bandwidth_mib: value("bench-bandwidth"),
    });
    progress(run);
  } catch (error) {
    say(byId("bench-error"), error.message, "error");
  }
}

export function init() {
  byId("bench-form").addEventListener("submit", start);
  byId("bench-stop").addEventListener("click", () => request("DELETE", "/api/bench").catch(() => {}));
  byId("bench-results").addEventListener("change", (event) => showResult(event.target.value));
  on("bench", (run) => {
    progress(run);
    if (run.state === "done") show(run.result).catch(() => {});
  });
}
