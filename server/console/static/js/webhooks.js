// /ui/: every webhook with its health, one page of 100 at a time (keyset pages: the table
// never loads whole), and the form that creates one.

import { api } from "./api.js";
import { openWebhookForm } from "./form.js";
import { badge, deliveryBadge, eventName, h, host, link, time } from "./ui.js";
import { navigate } from "./app.js";

const PAGE_SIZE = 100;

export async function webhooksPage(params) {
  const pageToken = params.get("page_token") || "";
  const listed = await api.listWebhooks(pageToken, PAGE_SIZE);
  const webhooks = listed.webhooks || [];
  const health = new Map();
  if (webhooks.length) {
    const answer = await api.health(webhooks.map((w) => w.webhook_id));
    for (const item of answer.webhooks || []) health.set(item.webhook_id, item);
  }
  const failing = webhooks.filter((w) => {
    const item = health.get(w.webhook_id);
    return (item && item.failures_24h > 0) || (item && item.disabled_reason);
  }).length;

  const create = h(
    "button",
    {
      type: "button",
      class: "primary",
      id: "new-webhook",
      onclick: () => openWebhookForm(null, (made) => navigate(`/ui/webhooks/${made.webhook_id}`)),
    },
    "New webhook",
  );
  const header = h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h("h1", {}, "Webhooks"),
      h(
        "p",
        { class: "muted", id: "summary" },
        `${webhooks.length} on this page`,
        failing ? h("span", { class: "pill bad" }, `${failing} failing`) : h("span", { class: "pill ok" }, "all healthy"),
      ),
    ),
    create,
  );
  if (!webhooks.length) {
    const content = h(
      "div",
      { "data-name": "webhooks" },
      header,
      h("div", { class: "card empty" }, pageToken ? "No more webhooks." : "No webhooks yet: create one to get started."),
    );
    return content;
  }

  const rows = webhooks.map((w) => row(w, health.get(w.webhook_id)));
  const table = h(
    "table",
    { class: "grid", id: "webhooks" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Name"),
        h("th", {}, "Receiver"),
        h("th", {}, "Events"),
        h("th", {}, "Status"),
        h("th", {}, "Last delivery"),
        h("th", { class: "num" }, "Failures (24 h)"),
      ),
    ),
    h("tbody", {}, rows),
  );
  const pager = h(
    "div",
    { class: "pager" },
    pageToken ? link("/ui/", "← First page") : h("span", {}),
    listed.next_page_token
      ? link(`/ui/?page_token=${encodeURIComponent(listed.next_page_token)}`, "Next page →")
      : null,
  );
  return h("div", { "data-name": "webhooks" }, header, h("div", { class: "card flush" }, table), pager);
}

function row(webhook, health) {
  const last = health && health.last_delivery;
  const failures = (health && health.failures_24h) || 0;
  const total = (health && health.deliveries_24h) || 0;
  const reason = health && health.disabled_reason;
  return h(
    "tr",
    { "data-webhook-id": webhook.webhook_id, class: failures || reason ? "attention" : "" },
    h(
      "td",
      {},
      link(`/ui/webhooks/${webhook.webhook_id}`, h("strong", {}, webhook.name)),
      webhook.description ? h("div", { class: "muted small" }, webhook.description) : null,
    ),
    h("td", { class: "mono" }, host(webhook.url)),
    h("td", {}, h("div", { class: "chips" }, (webhook.events || []).map((e) => h("span", { class: "chip" }, eventName(e))))),
    h(
      "td",
      {},
      badge(webhook.status),
      reason ? h("div", { class: "reason small", title: reason }, reason) : null,
    ),
    h(
      "td",
      {},
      last
        ? h("div", { class: "stack" }, deliveryBadge(last), h("span", { class: "muted small" }, time(last.creation_timestamp)))
        : h("span", { class: "muted" }, "none yet"),
    ),
    h(
      "td",
      { class: "num" },
      h("span", { class: failures ? "count bad" : "count" }, String(failures)),
      h("span", { class: "muted small" }, ` of ${total}`),
    ),
  );
}
