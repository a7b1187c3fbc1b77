// Talking to this node's API: same origin only, the API key (when one is needed) in a
// header (never a cookie), JSON for every change, errors in OpenAI's shape.

const KEY = "aria.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
}

export function setApiKey(key, remember) {
  forgetApiKey();
  (remember ? localStorage : sessionStorage).setItem(KEY, key);
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

function headers(hasBody) {
  const result = {};
  const key = apiKey();
  if (key) result.authorization = `Bearer ${key}`;
  if (hasBody) result["content-type"] = "application/json";
  return result;
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  let code = null;
  let param = null;
  try {
    const error = (await response.json()).error;
    message = error.message || message;
    code = error.code;
    param = error.param;
  } catch {
    // not OpenAI's error shape: keep the status line
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("aria:unauthorized"));
  return new ApiError(response.status, message, code, param);
}

// One JSON request. Changes always carry a JSON body (the server refuses others).
export async function request(method, path, body, { signal } = {}) {
  const changes = method !== "GET" && method !== "HEAD";
  const payload = changes ? JSON.stringify(body ?? {}) : undefined;
  let response;
  try {
    response = await fetch(path, { method, headers: headers(changes), body: payload, signal, credentials: "omit" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the ARIA API is not reachable (is `aria api start` still running?)");
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path, options) => request("GET", path, undefined, options);

// Split a server-sent-event body into {event, data} objects as its bytes arrive.
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(":")) continue; // keep-alive comment
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

// Open a streaming request (SSE); resolves once the headers are in.
export async function stream(method, path, body, { signal } = {}) {
  const changes = body !== undefined;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { ...headers(changes), accept: "text/event-stream" },
      body: changes ? JSON.stringify(body) : undefined,
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the ARIA API is not reachable (is `aria api start` still running?)");
  }
  if (!response.ok) throw await failure(response);
  return response;
}
