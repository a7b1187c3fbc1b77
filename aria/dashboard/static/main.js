// The dashboard's entry point: sign-in when the API wants a key, the views behind the
// #hash, and the one live connection. Nothing here runs on a timer.

import { ApiError, apiKey, forgetApiKey, get, setApiKey } from "./api.js";
import * as bench from "./bench.js";
import * as chat from "./chat.js";
import { byId } from "./dom.js";
import * as live from "./live.js";
import * as models from "./models.js";
import * as network from "./network.js";
import * as node from "./node.js";

const VIEWS = {
  chat: { show: () => chat.refreshModels() },
  node: { show: () => node.show() },
  models: { show: () => models.refresh() },
  network: { show: () => network.show(), hide: () => network.hide() },
  bench: { show: () => bench.show() },
};

let active = null;
let signedIn = false;

function viewFromHash() {
  const name = location.hash.replace(/^#\/?/, "");
  return name in VIEWS ? name : "chat";
}

function showSection(id) {
  for (const section of document.querySelectorAll("main > section.view")) section.hidden = section.id !== id;
}

async function open(name) {
  if (active && active !== name) VIEWS[active].hide?.();
  active = name;
  showSection(`view-${name}`);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const section = byId(`view-${name}`);
  document.title = `ARIA · ${section.querySelector("h1").textContent}`;
  delete section.dataset.ready;
  try {
    await VIEWS[name].show();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) console.error(error);
  }
  if (active === name) section.dataset.ready = "true"; // for people: nothing; for tests: loaded
}

function askForKey(message = "") {
  signedIn = false;
  live.stop();
  network.hide();
  byId("nav").hidden = true;
  byId("sign-out").hidden = true;
  showSection("view-login");
  byId("login-error").textContent = message;
  byId("login-key").focus();
}

async function enter() {
  // /v1/models needs the key when keys are required: the cheapest way to ask
  await get("/v1/models");
  signedIn = true;
  byId("nav").hidden = false;
  byId("sign-out").hidden = !apiKey();
  live.start();
  await open(viewFromHash());
}

async function boot() {
  chat.init();
  node.init();
  models.init();
  bench.init();
  models.whenInstalled(() => chat.refreshModels().catch(() => {}));
  live.on("models", () => chat.refreshModels().catch(() => {}));
  live.on("reconnected", () => active && VIEWS[active].show().catch(() => {}));
  window.addEventListener("hashchange", () => signedIn && open(viewFromHash()));
  window.addEventListener("aria:unauthorized", () => signedIn && askForKey("The API refused the key this page used. Sign in again."));
  document.addEventListener("visibilitychange", () => {
    if (active !== "network" || !signedIn) return;
    if (document.hidden) network.hide();
    else network.show();
  });
  byId("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = byId("login-key").value.trim();
    setApiKey(key, byId("login-remember").checked);
    try {
      await enter();
      byId("login-key").value = "";
    } catch (error) {
      forgetApiKey();
      byId("login-error").textContent = error.status === 401
        ? "That key was refused: check it, or create one with `aria api key create NAME`."
        : error.message;
    }
  });
  byId("sign-out").addEventListener("click", () => {
    forgetApiKey();
    askForKey();
  });
  byId("booting").remove();
  try {
    await enter();
  } catch (error) {
    if (error.status === 401) askForKey(apiKey() ? "The stored key was refused." : "");
    else {
      showSection("view-chat");
      byId("chat-status").textContent = error.message;
    }
  }
}

boot();
