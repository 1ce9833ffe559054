// The create / edit form, in a modal dialog. Errors come back from the API as MLflow's
// messages and are shown as they are: they say what to fix.

import { api } from "./api.js";
import { errorBox, h } from "./ui.js";

let eventTypes = null;

async function knownEvents() {
  if (!eventTypes) eventTypes = (await api.eventTypes()).event_types || [];
  return eventTypes;
}

// `webhook` null creates; `done(webhook)` runs after the API accepted it.
export async function openWebhookForm(webhook, done) {
  const types = await knownEvents();
  const editing = Boolean(webhook);
  const subscribed = new Set((webhook ? webhook.events : []).map((e) => `${e.entity}.${e.action}`));
  const field = (label, input, hint) =>
    h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
  const name = h("input", { id: "wh-name", name: "name", required: true, maxlength: 63, value: webhook ? webhook.name : "" });
  const url = h("input", { id: "wh-url", name: "url", type: "url", required: true, maxlength: 500, value: webhook ? webhook.url : "", placeholder: "https://example.com/hook" });
  const description = h("textarea", { id: "wh-description", name: "description", maxlength: 1000, rows: 2 });
  description.value = (webhook && webhook.description) || "";
  const secret = h("input", { id: "wh-secret", name: "secret", type: "password", maxlength: 1000, autocomplete: "new-password" });
  const clearSecret = h("input", { id: "wh-clear-secret", type: "checkbox" });
  const status = h(
    "select",
    { id: "wh-status", name: "status" },
    h("option", { value: "ACTIVE", selected: !webhook || webhook.status === "ACTIVE" }, "Active"),
    h("option", { value: "DISABLED", selected: webhook && webhook.status === "DISABLED" }, "Disabled"),
  );
  const boxes = types.map((t) => {
    const key = `${t.event.entity}.${t.event.action}`;
    return h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "events", value: key, checked: subscribed.has(key) }),
      h("span", { class: "mono" }, t.name),
    );
  });
  const problem = h("div", {});
  const submit = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create webhook");
  const dialog = h("dialog", { class: "modal", id: "webhook-form" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const events = [...form.querySelectorAll("input[name=events]:checked")].map((box) => {
          const [entity, action] = box.value.split(".");
          return { entity, action };
        });
        const fields = {
          name: name.value.trim(),
          url: url.value.trim(),
          events,
          description: description.value,
          status: status.value,
        };
        if (secret.value) fields.secret = secret.value;
        else if (editing && clearSecret.checked) fields.secret = "";
        submit.disabled = true;
        try {
          const answer = editing
            ? await api.updateWebhook(webhook.webhook_id, fields)
            : await api.createWebhook(fields);
          dialog.close();
          dialog.remove();
          done(answer.webhook);
        } catch (error) {
          problem.replaceChildren(errorBox(error));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", {}, editing ? `Edit ${webhook.name}` : "New webhook"),
    problem,
    field("Name", name, "1 to 63 characters: letters, digits, '.', '_' and '-'."),
    field("URL", url, "Where deliveries are POSTed."),
    h("fieldset", { class: "events" }, h("legend", {}, "Events"), h("div", { class: "checks" }, boxes)),
    field("Description", description),
    field(
      "Signing secret",
      secret,
      editing
        ? "Leave empty to keep the current secret; it is never shown. A secret set here replaces it at once: Rotate secret keeps the old one signing too for a while."
        : "Optional: signs every delivery (HMAC-SHA256).",
    ),
    editing ? h("label", { class: "check" }, clearSecret, "Stop signing (remove the secret)") : null,
    field("Status", status),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => { dialog.close(); dialog.remove(); } }, "Cancel"),
      submit,
    ),
  );
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  name.focus();
}
