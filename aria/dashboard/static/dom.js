// Building DOM without HTML strings: every piece of text, whoever wrote it (a model,
// a peer, a file name), becomes a Text node, so it can never turn into markup.

const FORBIDDEN = /^(on|innerhtml$|outerhtml$|srcdoc$)/i;

// h("button", {class: "primary", type: "button", on: {click}}, "Send")
export function h(tag, props = {}, ...children) {
  const node = props.svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "svg" || value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "text") {
      node.textContent = String(value);
    } else if (FORBIDDEN.test(name)) {
      throw new Error(`refusing to set ${name} through h()`);
    } else if (name === "value" || name === "checked" || name === "hidden" || name === "disabled") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export const byId = (id) => document.getElementById(id);

// A short message in a status element, cleared after a while.
export function say(element, message, kind = "ok") {
  element.textContent = message;
  element.classList.toggle("error", kind === "error");
}
