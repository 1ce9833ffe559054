// /ui/deliveries/{id}: the event, the payload exactly as sent, every attempt, and Redeliver.

import { api } from "./api.js";
import { render } from "./app.js";
import {
  deliveryBadge,
  errorBox,
  eventName,
  facts,
  flash,
  fullTime,
  h,
  httpStatus,
  link,
  section,
  time,
} from "./ui.js";

export async function deliveryPage(deliveryId) {
  const { delivery } = await api.getDelivery(deliveryId);
  let webhookName = null;
  try {
    webhookName = (await api.getWebhook(delivery.webhook_id)).webhook.name;
  } catch {
    webhookName = null; // deleted since: the log outlives it
  }
  const problem = h("div", {});
  const button = h(
    "button",
    {
      type: "button",
      class: "primary",
      id: "redeliver",
      onclick: async () => {
        button.disabled = true;
        try {
          const answer = await api.redeliver(delivery.delivery_id);
          const last = (answer.delivery.attempts || []).at(-1);
          const worked = last && last.response_status >= 200 && last.response_status < 300;
          flash(
            worked
              ? `Redelivered: the receiver answered ${last.response_status}.`
              : `Redelivered, and it failed again${last && last.error ? `: ${last.error}` : "."}`,
            worked ? "ok" : "bad",
          );
          render();
        } catch (error) {
          problem.replaceChildren(errorBox(error));
          button.disabled = false;
        }
      },
    },
    "Redeliver",
  );
  return h(
    "div",
    { "data-name": "delivery" },
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h(
          "p",
          { class: "crumbs" },
          link("/ui/", "Webhooks"),
          " / ",
          link(`/ui/webhooks/${delivery.webhook_id}`, webhookName || delivery.webhook_id),
          " / ",
        ),
        h("h1", {}, "Delivery ", h("span", { class: "mono id" }, delivery.delivery_id), " ", deliveryBadge(delivery)),
      ),
      h("div", { class: "actions" }, button),
    ),
    problem,
    h(
      "div",
      { class: "columns" },
      section(
        "Event",
        facts([
          ["Event", h("span", { class: "mono" }, eventName(delivery.event))],
          ["Event ID", h("span", { class: "mono" }, delivery.event_id)],
          ["Webhook", webhookName ? link(`/ui/webhooks/${delivery.webhook_id}`, webhookName) : h("span", { class: "mono" }, `${delivery.webhook_id} (deleted)`)],
          ["Created", fullTime(delivery.creation_timestamp)],
          ["Attempts", String(delivery.attempt_count || 0)],
          delivery.next_attempt_timestamp ? ["Next attempt", time(delivery.next_attempt_timestamp)] : null,
          delivery.test ? ["Kind", "test (sent by testWebhook)"] : null,
        ]),
      ),
      payloadSection(delivery.payload || ""),
    ),
    attemptsSection(delivery.attempts || []),
  );
}

function payloadSection(payload) {
  let pretty = payload;
  try {
    pretty = JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    pretty = payload;
  }
  const pre = h("pre", { class: "payload", id: "payload" }, pretty);
  let raw = false;
  const toggle = h(
    "button",
    {
      type: "button",
      class: "link-button small",
      onclick: () => {
        raw = !raw;
        pre.textContent = raw ? payload : pretty;
        toggle.textContent = raw ? "Show formatted" : "Show bytes as sent";
      },
    },
    "Show bytes as sent",
  );
  return section("Payload", h("p", { class: "muted small" }, "The JSON body the receiver got. ", toggle), pre);
}

function attemptsSection(attempts) {
  if (!attempts.length) return section("Attempts", h("p", { class: "empty" }, "Not sent yet."));
  const rows = [...attempts].reverse().map((a) =>
    h(
      "tr",
      { "data-attempt": a.number },
      h("td", { class: "num" }, String(a.number)),
      h("td", {}, time(a.timestamp), h("div", { class: "muted small" }, fullTime(a.timestamp))),
      h("td", {}, httpStatus(a.response_status)),
      h("td", { class: "num" }, `${a.duration_ms || 0} ms`),
      h("td", {}, a.error ? h("span", { class: "error-text" }, a.error) : h("span", { class: "muted" }, "—")),
      h("td", {}, a.response_body ? h("pre", { class: "excerpt" }, a.response_body.slice(0, 600) + (a.response_body.length > 600 ? "…" : "")) : h("span", { class: "muted" }, "—")),
    ),
  );
  return h(
    "section",
    { class: "card flush" },
    h("div", { class: "card-head" }, h("h2", {}, "Attempts"), h("span", { class: "muted small" }, "newest first")),
    h(
      "table",
      { class: "grid", id: "attempts" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { class: "num" }, "#"),
          h("th", {}, "Sent"),
          h("th", {}, "HTTP"),
          h("th", { class: "num" }, "Duration"),
          h("th", {}, "Error"),
          h("th", {}, "Response (excerpt)"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}
