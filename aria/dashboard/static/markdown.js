// Markdown for model and peer output, rendered without ever parsing HTML.
//
// The renderer builds elements from a fixed list (p, pre, code, strong, em, del, ul, ol,
// li, blockquote, hr, table, a, br) and puts every piece of the source text into a Text
// node. A model that writes <script> or <img onerror=...> gets those characters shown,
// never run. Links keep only http(s) and mailto targets and open in a new tab; images
// are never loaded (the page makes no request the user did not click), they become
// links. Unfinished input (a streaming answer) renders as far as it goes.

import { h } from "./dom.js";

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const BULLET = /^(\s*)([-*+])\s+(.*)$/;
const NUMBERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;

export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(String(text ?? "").replace(/\r\n?/g, "\n").split("\n")));
  return fragment;
}

export function safeUrl(raw) {
  try {
    const url = new URL(raw);
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null; // relative or malformed: not a link
  }
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || BULLET.test(line) || NUMBERED.test(line);
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (!line.trim()) {
      i += 1;
    } else if ((match = FENCE.exec(line))) {
      const fence = match[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i += 1; // the closing fence (absent while a stream is still writing the block)
      out.push(codeBlock(body.join("\n"), match[2]));
    } else if ((match = HEADING.exec(line))) {
      out.push(h("p", { class: `md-heading md-h${match[1].length}` }, h("strong", {}, inline(match[2]))));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        body.push(match[1]);
        i += 1;
      }
      out.push(h("blockquote", {}, blocks(body)));
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      i = list(lines, i, out);
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      i = table(lines, i, out);
    } else {
      const body = [];
      while (i < lines.length && lines[i].trim() && (body.length === 0 || !startsBlock(lines[i]))) {
        body.push(lines[i].trim());
        i += 1;
      }
      const parts = [];
      body.forEach((part, n) => parts.push(n ? h("br") : null, inline(part)));
      out.push(h("p", {}, parts));
    }
  }
  return out;
}

function codeBlock(code, language) {
  const copy = h("button", { type: "button", class: "copy quiet small", text: "Copy code" });
  copy.addEventListener("click", () => navigator.clipboard?.writeText(code));
  const props = language ? { "data-language": language } : {};
  return h("div", { class: "code" }, copy, h("pre", {}, h("code", props, code)));
}

function list(lines, start, out) {
  const first = BULLET.exec(lines[start]) || NUMBERED.exec(lines[start]);
  const ordered = !BULLET.test(lines[start]);
  const pattern = ordered ? NUMBERED : BULLET;
  const indent = first[1].length;
  const items = [];
  let i = start;
  while (i < lines.length) {
    const match = pattern.exec(lines[i]);
    if (!match || match[1].length !== indent) break;
    const body = [match[3]];
    i += 1;
    // continuation: indented deeper than the marker (nested lists included), or wrapped text
    while (i < lines.length && lines[i].trim()) {
      const spaces = lines[i].length - lines[i].trimStart().length;
      const deeper = spaces > indent;
      if (!deeper && startsBlock(lines[i])) break;
      body.push(deeper ? lines[i].slice(Math.min(spaces, indent + 2)) : lines[i].trim());
      i += 1;
    }
    const content = blocks(body);
    // a one-paragraph item shows its text without the paragraph box
    const inner = content.length === 1 && content[0].tagName === "P" ? [...content[0].childNodes] : content;
    items.push(h("li", {}, inner));
    if (i < lines.length && !lines[i].trim() && pattern.test(lines[i + 1] ?? "")) i += 1;
  }
  const props = ordered && first[2] !== "1" ? { start: Number(first[2]) } : {};
  out.push(h(ordered ? "ol" : "ul", props, items));
  return i;
}

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

function table(lines, start, out) {
  const head = cells(lines[start]);
  let i = start + 2;
  const rows = [];
  while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[i++]));
  out.push(
    h("div", { class: "table-scroll" },
      h("table", {},
        h("thead", {}, h("tr", {}, head.map((cell) => h("th", { scope: "col" }, inline(cell))))),
        h("tbody", {}, rows.map((row) => h("tr", {}, head.map((_, n) => h("td", {}, inline(row[n] ?? ""))))))))
  );
  return i;
}

const RULES = [
  [/^\\([\\`*_{}[\]()#+\-.!~|>])/, (m) => [m[1]]],
  [/^(`+)([\s\S]*?[^`])\1(?!`)/, (m) => [h("code", {}, m[2].trim() || m[2])]],
  [/^!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/, (m) => link(m[2], `image: ${m[1] || m[2]}`, m[0])],
  [/^\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/, (m) => link(m[2], m[1], m[0], true)],
  [/^<((?:https?:\/\/|mailto:)[^>\s]+)>/, (m) => link(m[1], m[1], m[0])],
  [/^(?:https?:\/\/)[^\s<>()]*[^\s<>().,;:!?'"*_~]/, (m) => link(m[0], m[0], m[0])],
  [/^\*\*(?=\S)([\s\S]*?\S)\*\*/, (m) => [h("strong", {}, inline(m[1]))]],
  [/^__(?=\S)([\s\S]*?\S)__(?!\w)/, (m) => [h("strong", {}, inline(m[1]))]],
  [/^~~(?=\S)([\s\S]*?\S)~~/, (m) => [h("del", {}, inline(m[1]))]],
  [/^\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/, (m) => [h("em", {}, inline(m[1]))]],
  [/^_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/, (m) => [h("em", {}, inline(m[1]))]],
];
const TRIGGER = /[\\`!\[<h*_~]/g;

function link(url, label, source, rich = false) {
  const href = safeUrl(url);
  if (!href) return [source]; // not a link ARIA follows: show what was written
  const text = rich ? inline(label) : [label];
  return [h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", referrerpolicy: "no-referrer" }, text)];
}

export function inline(text) {
  const out = [];
  let plain = "";
  let i = 0;
  TRIGGER.lastIndex = 0;
  while (i < text.length) {
    TRIGGER.lastIndex = i;
    const found = TRIGGER.exec(text);
    if (!found) break;
    plain += text.slice(i, found.index);
    i = found.index;
    const rest = text.slice(i);
    const wordBefore = i > 0 && /\w/.test(text[i - 1]);
    let matched = false;
    for (const [pattern, make] of RULES) {
      if (wordBefore && pattern.source.startsWith("^_")) continue; // snake_case stays text
      const match = pattern.exec(rest);
      if (!match) continue;
      if (plain) out.push(plain);
      plain = "";
      out.push(...make(match));
      i += match[0].length;
      matched = true;
      break;
    }
    if (!matched) {
      plain += text[i];
      i += 1;
    }
  }
  plain += text.slice(i);
  if (plain) out.push(plain);
  return out;
}
