// /ui/webhooks/{id}: the webhook, its health, a chart of the last 24 hours, its delivery
// settings, its deliveries newest first (filtered by status, in keyset pages), and the
// actions: edit, enable or disable, test, rotate the secret, delete, and redeliver every
// failed delivery since a time.

import { api } from "./api.js";
import { navigate, render } from "./app.js";
import { hourlyChart } from "./chart.js";
import { openWebhookForm } from "./form.js";
import {
  badge,
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

const PAGE_SIZE = 50;
const DAY = 24 * 3600 * 1000;
const STATUSES = ["", "PENDING", "SUCCEEDED", "FAILED", "CANCELLED"];

export async function webhookPage(webhookId, params) {
  const status = params.get("status") || "";
  const pageToken = params.get("page_token") || "";
  const since = Date.now() - DAY;
  const [{ webhook }, { settings }, health, listed, recent] = await Promise.all([
    api.getWebhook(webhookId),
    api.getSettings(webhookId),
    api.health([webhookId]),
    api.listDeliveries({ webhook_id: webhookId, status, max_results: PAGE_SIZE, page_token: pageToken }),
    // The chart's data: the last 24 hours, at most one page of 1,000.
    api.listDeliveries({ webhook_id: webhookId, since_timestamp: since, max_results: 1000 }),
  ]);
  const state = (health.webhooks || [])[0] || {};
  return h(
    "div",
    { "data-name": "webhook" },
    header(webhook),
    state.disabled_reason
      ? h(
          "div",
          { class: "flash bad", id: "disabled-reason" },
          h("strong", {}, "Disabled by the service "),
          time(state.disabled_timestamp),
          ": ",
          state.disabled_reason,
        )
      : null,
    h(
      "div",
      { class: "columns" },
      section("Details", details(webhook, state)),
      section(
        "Last 24 hours",
        hourlyChart(recent.deliveries || []),
        h(
          "p",
          { class: "muted small legend" },
          h("span", { class: "swatch ok" }), "delivered or pending ",
          h("span", { class: "swatch bad" }), "failed or retrying",
          recent.next_page_token ? " (the newest 1,000 shown)" : "",
        ),
      ),
    ),
    settingsForm(webhook, settings || {}),
    redeliverForm(webhook),
    deliveriesSection(webhook, listed, status, pageToken),
  );
}

function header(webhook) {
  const toggle = webhook.status === "ACTIVE" ? "DISABLED" : "ACTIVE";
  return h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h("p", { class: "crumbs" }, link("/ui/", "Webhooks"), " / "),
      h("h1", {}, webhook.name, " ", badge(webhook.status)),
      h("p", { class: "mono muted" }, webhook.url),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", id: "edit", onclick: () => openWebhookForm(webhook, () => { flash("Saved.", "ok"); render(); }) }, "Edit"),
      h(
        "button",
        {
          type: "button",
          id: "toggle-status",
          onclick: async () => {
            await guarded(() => api.updateWebhook(webhook.webhook_id, { status: toggle }));
            flash(toggle === "ACTIVE" ? "Enabled." : "Disabled: no new deliveries until enabled.", "ok");
            render();
          },
        },
        toggle === "ACTIVE" ? "Enable" : "Disable",
      ),
      h("button", { type: "button", id: "test", onclick: () => testDialog(webhook) }, "Send test"),
      h("button", { type: "button", id: "rotate-secret", onclick: () => rotateDialog(webhook) }, "Rotate secret"),
      h(
        "button",
        {
          type: "button",
          id: "delete",
          class: "danger",
          onclick: async () => {
            if (!window.confirm(`Delete ${webhook.name}? Its pending deliveries are cancelled.`)) return;
            await guarded(() => api.deleteWebhook(webhook.webhook_id));
            flash(`Deleted ${webhook.name}.`, "ok");
            navigate("/ui/");
          },
        },
        "Delete",
      ),
    ),
  );
}

async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    flash(error.message, "bad");
    throw error;
  }
}

function details(webhook, state) {
  const last = state.last_delivery;
  return facts([
    ["Webhook ID", h("span", { class: "mono" }, webhook.webhook_id)],
    ["Events", h("div", { class: "chips" }, (webhook.events || []).map((e) => h("span", { class: "chip" }, eventName(e))))],
    webhook.description ? ["Description", webhook.description] : null,
    ["Last delivery", last ? h("span", {}, deliveryBadge(last), " ", time(last.creation_timestamp)) : "none yet"],
    [
      "Failures (24 h)",
      h("span", { id: "failures-24h" }, `${state.failures_24h || 0} of ${state.deliveries_24h || 0} deliveries`),
    ],
    state.previous_secret_expires_timestamp
      ? [
          "Secret rotation",
          h("span", { id: "rotation-window" }, "the old secret signs deliveries too until ", fullTime(state.previous_secret_expires_timestamp)),
        ]
      : null,
    ["Created", fullTime(webhook.creation_timestamp)],
    ["Updated", fullTime(webhook.last_updated_timestamp)],
  ]);
}

// The webhook's retry schedule, timeout and maximum concurrency (docs/delivery.md, "Delivery
// settings"), a field left empty being the server's; and whether it is ordered ("Ordered
// delivery").
function settingsForm(webhook, settings) {
  const schedule = settings.retry_schedule ? (settings.retry_schedule.delays_seconds || []).join(",") : "";
  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const retries = h("input", { id: "settings-retry-schedule", value: schedule, placeholder: "the server's", inputmode: "decimal" });
  const timeout = h("input", { id: "settings-timeout", type: "number", min: "0", step: "any", value: settings.timeout_seconds ?? "", placeholder: "the server's" });
  const concurrency = h("input", { id: "settings-max-concurrency", type: "number", min: "0", step: "1", value: settings.max_concurrency ?? "", placeholder: "the server's" });
  const ordered = h("input", { id: "settings-ordered", type: "checkbox", checked: Boolean(settings.ordered) });
  const result = h("div", { id: "settings-result", class: "small" });
  const save = h("button", { type: "submit", id: "save-settings" }, "Save settings");
  const number = (input) => (input.value.trim() === "" ? 0 : Number(input.value));
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const delays = retries.value.split(",").map((d) => d.trim()).filter(Boolean).map(Number);
        if (delays.some(Number.isNaN)) {
          result.replaceChildren(errorBox(new Error("The retry schedule is seconds separated by commas, e.g. 10,60,600.")));
          return;
        }
        save.disabled = true;
        try {
          // Every part is sent: an empty field puts that part back to the server's.
          await api.setSettings(webhook.webhook_id, {
            retry_schedule: { delays_seconds: delays },
            timeout_seconds: number(timeout),
            max_concurrency: number(concurrency),
            ordered: ordered.checked,
          });
          flash("Settings saved: the next delivery uses them.", "ok");
          render();
        } catch (error) {
          result.replaceChildren(errorBox(error));
          save.disabled = false;
        }
      },
    },
    field("settings-retry-schedule", "Retry schedule (seconds)", retries),
    field("settings-timeout", "Timeout (seconds)", timeout),
    field("settings-max-concurrency", "Most in flight", concurrency),
    h("label", { class: "check", for: "settings-ordered" }, ordered, "One at a time, in publish order"),
    save,
    result,
  );
  return section(
    "Delivery settings",
    h("p", { class: "muted small" }, "Empty fields are the server's. Fewer than the most are sent at once while the receiver answers 429, 503 or times out. One at a time: each delivery waits until the one before it has succeeded or failed for good."),
    form,
  );
}

function localInput(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return date.toISOString().slice(0, 16);
}

function redeliverForm(webhook) {
  const since = h("input", { type: "datetime-local", id: "redeliver-since", required: true, value: localInput(Date.now() - DAY) });
  const result = h("div", { id: "redeliver-result", class: "small" });
  let nextToken = "";
  const button = h("button", { type: "submit", id: "redeliver-failed" }, "Redeliver failed");
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const sinceMs = new Date(since.value).getTime();
        if (Number.isNaN(sinceMs)) {
          result.replaceChildren(errorBox(new Error("Pick a date and time to redeliver from.")));
          return;
        }
        button.disabled = true;
        result.replaceChildren(h("span", { class: "muted" }, "Sending…"));
        try {
          const answer = await api.redeliverFailed(webhook.webhook_id, sinceMs, nextToken);
          nextToken = answer.next_page_token || "";
          const sent = answer.redelivered || 0;
          const ok = answer.succeeded || 0;
          result.replaceChildren(
            h(
              "span",
              { class: sent && ok === sent ? "ok-text" : sent ? "bad-text" : "muted" },
              sent ? `Sent ${sent} again: ${ok} succeeded, ${sent - ok} failed.` : "No failed deliveries since then.",
              nextToken ? " More remain: press again to go on." : "",
            ),
          );
          button.textContent = nextToken ? "Redeliver the next batch" : "Redeliver failed";
          if (!nextToken) setTimeout(render, 1500);
        } catch (error) {
          result.replaceChildren(errorBox(error));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("label", { for: "redeliver-since" }, "Failed deliveries created since"),
    since,
    button,
    result,
  );
  return section("Redeliver", h("p", { class: "muted small" }, "Each is sent again now as a new attempt, oldest first, up to 100 per press."), form);
}

function deliveriesSection(webhook, listed, status, pageToken) {
  const base = `/ui/webhooks/${webhook.webhook_id}`;
  const filter = h(
    "select",
    {
      id: "status-filter",
      onchange: (event) => navigate(event.target.value ? `${base}?status=${event.target.value}` : base),
    },
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, s ? s.charAt(0) + s.slice(1).toLowerCase() : "All statuses")),
  );
  const deliveries = listed.deliveries || [];
  const body = deliveries.length
    ? h(
        "table",
        { class: "grid", id: "deliveries" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Created"),
            h("th", {}, "Event"),
            h("th", {}, "Status"),
            h("th", { class: "num" }, "Attempts"),
            h("th", {}, "Last answer"),
            h("th", {}, "Next attempt"),
          ),
        ),
        h("tbody", {}, deliveries.map(deliveryRow)),
      )
    : h("p", { class: "empty" }, status ? `No ${status.toLowerCase()} deliveries.` : "No deliveries yet.");
  const query = (token) => {
    const parts = new URLSearchParams();
    if (status) parts.set("status", status);
    if (token) parts.set("page_token", token);
    const text = parts.toString();
    return text ? `${base}?${text}` : base;
  };
  return h(
    "section",
    { class: "card flush" },
    h("div", { class: "card-head" }, h("h2", {}, "Deliveries"), h("label", { class: "filter" }, "Status ", filter)),
    body,
    h(
      "div",
      { class: "pager" },
      pageToken ? link(query(""), "← Newest") : h("span", {}),
      listed.next_page_token ? link(query(listed.next_page_token), "Older →") : null,
    ),
  );
}

function deliveryRow(delivery) {
  const last = delivery.last_attempt;
  return h(
    "tr",
    { "data-delivery-id": delivery.delivery_id },
    h("td", {}, link(`/ui/deliveries/${delivery.delivery_id}`, time(delivery.creation_timestamp))),
    h("td", { class: "mono" }, eventName(delivery.event), delivery.test ? h("span", { class: "chip" }, "test") : null),
    h("td", {}, deliveryBadge(delivery)),
    h("td", { class: "num" }, String(delivery.attempt_count || 0)),
    h(
      "td",
      {},
      last ? h("div", { class: "stack" }, h("span", {}, httpStatus(last.response_status), " ", time(last.timestamp)), last.error ? h("span", { class: "muted small error-text" }, last.error) : null) : h("span", { class: "muted" }, "not sent yet"),
    ),
    h("td", {}, nextAttempt(delivery)),
  );
}

function nextAttempt(delivery) {
  if (delivery.next_attempt_timestamp) return time(delivery.next_attempt_timestamp);
  // PENDING with no next attempt: held behind an earlier delivery of its ordered webhook.
  if (delivery.status === "PENDING") return h("span", { class: "muted", title: "Goes when the delivery before it has succeeded or failed for good" }, "waiting its turn");
  return h("span", { class: "muted" }, "—");
}

function testDialog(webhook) {
  const select = h(
    "select",
    { id: "test-event" },
    (webhook.events || []).map((e, i) => h("option", { value: i }, eventName(e))),
  );
  const output = h("div", { id: "test-result" });
  const dialog = h("dialog", { class: "modal" });
  const send = h("button", { type: "submit", class: "primary", id: "send-test" }, "Send");
  dialog.append(
    h(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          send.disabled = true;
          output.replaceChildren(h("p", { class: "muted" }, "Sending…"));
          try {
            const { result } = await api.testWebhook(webhook.webhook_id, webhook.events[Number(select.value)]);
            output.replaceChildren(
              h(
                "div",
                { class: `flash ${result.success ? "ok" : "bad"}` },
                result.success ? "Delivered" : "Not delivered",
                result.response_status !== undefined ? h("span", {}, ": HTTP ", httpStatus(result.response_status)) : null,
                result.error_message ? h("div", {}, result.error_message) : null,
              ),
              result.response_body ? h("pre", { class: "excerpt" }, result.response_body.slice(0, 2000)) : null,
            );
          } catch (error) {
            output.replaceChildren(errorBox(error));
          } finally {
            send.disabled = false;
          }
        },
      },
      h("h2", {}, `Send a test to ${webhook.name}`),
      h("p", { class: "muted small" }, "MLflow's example payload for the event, signed, sent once now (even while disabled), and logged."),
      h("div", { class: "field" }, h("label", { for: "test-event" }, "Event"), select),
      output,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => { dialog.close(); dialog.remove(); render(); } }, "Close"),
        send,
      ),
    ),
  );
  document.body.append(dialog);
  dialog.showModal();
}

// rotateWebhookSecret: a given or a generated secret, and how long the old one signs too. A
// generated secret is answered once, so it is shown here once, to be copied to the receiver.
function rotateDialog(webhook) {
  const secret = h("input", { id: "rotate-new-secret", type: "password", maxlength: 1000, autocomplete: "new-password" });
  const hours = h("input", { id: "rotate-overlap-hours", type: "number", min: 0, max: 168, step: "any", required: true, value: 24 });
  const output = h("div", { id: "rotate-result" });
  const dialog = h("dialog", { class: "modal", id: "rotate-dialog" });
  const rotate = h("button", { type: "submit", class: "primary", id: "rotate-submit" }, "Rotate");
  const close = () => { dialog.close(); dialog.remove(); render(); };
  dialog.append(
    h(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          rotate.disabled = true;
          try {
            const answer = await api.rotateSecret(webhook.webhook_id, {
              secret: secret.value || undefined,
              overlap_seconds: Math.round(Number(hours.value) * 3600),
            });
            const until = answer.previous_secret_expires_timestamp;
            output.replaceChildren(
              h(
                "div",
                { class: "flash ok" },
                "Rotated. ",
                until ? h("span", {}, "The old secret signs deliveries too until ", fullTime(until), ".") : "Only the new secret signs from now on.",
              ),
              answer.secret
                ? h(
                    "div",
                    { class: "field" },
                    h("label", { for: "rotate-generated" }, "The new secret: copy it now, it is not shown again"),
                    h("input", { id: "rotate-generated", class: "mono", readonly: true, value: answer.secret, onfocus: (e) => e.target.select() }),
                  )
                : null,
            );
            secret.value = "";
            rotate.remove();
          } catch (error) {
            output.replaceChildren(errorBox(error));
            rotate.disabled = false;
          }
        },
      },
      h("h2", {}, `Rotate the secret of ${webhook.name}`),
      h(
        "p",
        { class: "muted small" },
        "During the overlap every delivery is signed with both secrets in webhook-signature, and with the old one in X-MLflow-Signature, which holds one signature only; after it, only the new one signs and the old one is forgotten. Move receivers to the new secret within the overlap.",
      ),
      h("div", { class: "field" }, h("label", { for: "rotate-new-secret" }, "New secret"), secret, h("p", { class: "hint" }, "Leave empty to have one generated.")),
      h("div", { class: "field" }, h("label", { for: "rotate-overlap-hours" }, "Overlap (hours)"), hours, h("p", { class: "hint" }, "0 to 168 (7 days); 0 forgets the old secret at once.")),
      output,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: close }, "Close"), rotate),
    ),
  );
  document.body.append(dialog);
  dialog.showModal();
  secret.focus();
}
