// The service's public REST API, called from the page's own origin. The bearer token, when
// the server wants one, lives in sessionStorage only: gone when the tab closes.

const BASE = "/api/2.0/mlflow";
const TOKEN_KEY = "webhooks-console-token";

export class AuthRequired extends Error {}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function call(method, path, { query, body } = {}) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(key, item);
    }
  }
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) {
    throw new AuthRequired((data && data.message) || "A bearer token is required.");
  }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, data && data.error_code, message);
  }
  return data || {};
}

const id = encodeURIComponent;

export const api = {
  listWebhooks: (pageToken, maxResults = 100) =>
    call("GET", "/webhooks", { query: { max_results: maxResults, page_token: pageToken } }),
  getWebhook: (webhookId) => call("GET", `/webhooks/${id(webhookId)}`),
  createWebhook: (fields) => call("POST", "/webhooks", { body: fields }),
  updateWebhook: (webhookId, fields) =>
    call("PATCH", `/webhooks/${id(webhookId)}`, { body: fields }),
  deleteWebhook: (webhookId) => call("DELETE", `/webhooks/${id(webhookId)}`),
  testWebhook: (webhookId, event) =>
    call("POST", `/webhooks/${id(webhookId)}/test`, { body: event ? { event } : {} }),
  getSettings: (webhookId) => call("GET", `/webhooks/${id(webhookId)}/settings`),
  setSettings: (webhookId, settings) =>
    call("POST", `/webhooks/${id(webhookId)}/settings`, { body: { settings } }),
  health: (webhookIds) => call("GET", "/webhook-health", { query: { webhook_ids: webhookIds } }),
  eventTypes: () => call("GET", "/webhook-event-types"),
  listDeliveries: (filters) => call("GET", "/webhook-deliveries", { query: filters }),
  getDelivery: (deliveryId) => call("GET", `/webhook-deliveries/${id(deliveryId)}`),
  redeliver: (deliveryId) =>
    call("POST", `/webhook-deliveries/${id(deliveryId)}/redeliver`, { body: {} }),
  rotateSecret: (webhookId, fields) =>
    call("POST", `/webhooks/${id(webhookId)}/rotate-secret`, { body: fields }),
  redeliverFailed: (webhookId, sinceTimestamp, pageToken) =>
    call("POST", `/webhooks/${id(webhookId)}/redeliver-failed`, {
      body: { since_timestamp: sinceTimestamp, ...(pageToken ? { page_token: pageToken } : {}) },
    }),
};
