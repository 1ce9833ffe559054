// Small DOM helpers. Every value from the API goes in as text (never as HTML), so a webhook
// name or a receiver's answer cannot inject markup into the page.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function link(path, ...children) {
  return h("a", { href: path, "data-nav": true }, ...children);
}

const STATUS_CLASS = {
  ACTIVE: "ok",
  SUCCEEDED: "ok",
  PENDING: "warn",
  RETRYING: "warn",
  FAILED: "bad",
  DISABLED: "muted",
  CANCELLED: "muted",
};

export function badge(status, label) {
  const text = label || (status ? status.charAt(0) + status.slice(1).toLowerCase() : "—");
  return h("span", { class: `badge ${STATUS_CLASS[status] || "muted"}`, "data-status": status }, text);
}

// A delivery's state as an operator reads it: PENDING after a failed attempt is "retrying".
export function deliveryBadge(delivery) {
  if (delivery.status === "PENDING" && (delivery.attempt_count || 0) > 0) {
    return badge("RETRYING", "Retrying");
  }
  return badge(delivery.status);
}

export function httpStatus(code) {
  if (code === undefined || code === null) return h("span", { class: "muted" }, "—");
  const kind = code >= 200 && code < 300 ? "ok" : code >= 500 || code === 429 ? "warn" : "bad";
  return h("span", { class: `http ${kind}` }, String(code));
}

export function eventName(event) {
  return event ? `${event.entity}.${event.action}`.toLowerCase() : "";
}

export function host(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

const absolute = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "medium",
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function time(ms) {
  if (!ms) return h("span", { class: "muted" }, "—");
  const date = new Date(Number(ms));
  return h("time", { datetime: date.toISOString(), title: absolute.format(date) }, ago(ms));
}

export function fullTime(ms) {
  if (!ms) return "—";
  return absolute.format(new Date(Number(ms)));
}

export function ago(ms) {
  const seconds = (Number(ms) - Date.now()) / 1000;
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return relative.format(Math.round(value), "year");
}

export function flash(message, kind = "info") {
  const box = document.getElementById("flash");
  box.replaceChildren(h("div", { class: `flash ${kind}` }, message));
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => box.replaceChildren(), 8000);
}

export function errorBox(error) {
  return h("div", { class: "flash bad", role: "alert" }, error.message || String(error));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

// Marks the page as rendered: tests and people alike wait for it.
export function ready(main, name) {
  main.dataset.page = name;
  main.setAttribute("aria-busy", "false");
}
