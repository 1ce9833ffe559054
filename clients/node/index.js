'use strict';
// A Node.js client of the webhooks service. It loads protos/ at run time rather than
// shipping generated code, so it can never drift from what the server was built from.

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const DEFAULT_TIMEOUT_MS = 30000;

const definition = protoLoader.loadSync(['webhooks.proto', 'webhook_delivery.proto'], {
  includeDirs: [PROTOS],
  keepCase: true, // proto field names, as the JSON shim and the Python client use
  longs: Number, // timestamps are Unix milliseconds, far below 2^53
  enums: String,
  defaults: false, // unset stays absent, as in the shim's JSON
  arrays: true, // but an empty repeated field is [], not undefined
  oneofs: true,
});
const mlflow = grpc.loadPackageDefinition(definition).mlflow;

/** A failed call: `code` is the gRPC status code number, `codeName` its name. */
class WebhooksError extends Error {
  constructor(code, details) {
    const codeName = Object.keys(grpc.status).find((k) => grpc.status[k] === code) || String(code);
    super(`${codeName}: ${details}`);
    this.name = 'WebhooksError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}

/** `model_version.created` (MLflow's spelling) or {entity, action} to a WebhookEvent. */
function parseEvent(event) {
  if (typeof event !== 'string') return event;
  const [entity, action, extra] = event.trim().split('.');
  if (!entity || !action || extra !== undefined) {
    throw new TypeError(`invalid event '${event}': expected ENTITY.ACTION such as model_version.created`);
  }
  return { entity: entity.toUpperCase(), action: action.toUpperCase() };
}

function eventName(event) {
  return `${event.entity}.${event.action}`.toLowerCase();
}

class WebhooksClient {
  /**
   * @param {string} address HOST:PORT of the gRPC server
   * @param {{token?: string, rootCertificates?: Buffer, timeoutMs?: number}} [options]
   *   token is sent as `authorization: Bearer TOKEN`; rootCertificates (PEM) switches to TLS.
   */
  constructor(address, { token, rootCertificates, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    this.address = address;
    this.timeoutMs = timeoutMs;
    const credentials = rootCertificates
      ? grpc.credentials.createSsl(rootCertificates)
      : grpc.credentials.createInsecure();
    this.metadata = new grpc.Metadata();
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
    this.webhooks = new mlflow.WebhookService(address, credentials);
    // Shares the first stub's channel rather than opening a second connection.
    this.deliveryService = new mlflow.WebhookDeliveryService(address, credentials, {
      channelOverride: this.webhooks.getChannel(),
    });
  }

  close() {
    this.webhooks.close();
  }

  _call(stub, method, request) {
    const deadline = new Date(Date.now() + this.timeoutMs);
    return new Promise((resolve, reject) => {
      stub[method](request, this.metadata, { deadline }, (err, response) => {
        if (err) reject(new WebhooksError(err.code, err.details || err.message));
        else resolve(response);
      });
    });
  }

  async create({ name, url, events, description, secret, status }) {
    const request = { name, url, events: events.map(parseEvent), description, secret, status };
    return (await this._call(this.webhooks, 'createWebhook', request)).webhook;
  }

  /** One page: {webhooks, next_page_token}; next_page_token is absent on the last page. */
  listPage({ maxResults, pageToken } = {}) {
    return this._call(this.webhooks, 'listWebhooks', {
      max_results: maxResults,
      page_token: pageToken,
    });
  }

  /** Every webhook, newest first, a page at a time. */
  async *iterWebhooks({ pageSize } = {}) {
    let pageToken;
    do {
      const page = await this.listPage({ maxResults: pageSize, pageToken });
      yield* page.webhooks;
      pageToken = page.next_page_token;
    } while (pageToken);
  }

  async get(webhookId) {
    return (await this._call(this.webhooks, 'getWebhook', { webhook_id: webhookId })).webhook;
  }

  /** Changes only the fields given; an empty secret turns signing off. */
  async update(webhookId, { name, url, events, description, secret, status } = {}) {
    const request = { webhook_id: webhookId, name, url, description, secret, status };
    if (events) request.events = events.map(parseEvent);
    return (await this._call(this.webhooks, 'updateWebhook', request)).webhook;
  }

  async delete(webhookId) {
    await this._call(this.webhooks, 'deleteWebhook', { webhook_id: webhookId });
  }

  async test(webhookId, event) {
    const request = { webhook_id: webhookId, event: event ? parseEvent(event) : undefined };
    return (await this._call(this.webhooks, 'testWebhook', request)).result;
  }

  /** Answers {event_id, delivery_ids}. `data` is a plain object (a google.protobuf.Struct). */
  publish(event, data, { idempotencyKey } = {}) {
    return this._call(this.deliveryService, 'publishEvent', {
      event: parseEvent(event),
      data: toStruct(data),
      idempotency_key: idempotencyKey,
    });
  }

  deliveriesPage({ webhookId, eventId, status, maxResults, pageToken } = {}) {
    return this._call(this.deliveryService, 'listDeliveries', {
      webhook_id: webhookId,
      event_id: eventId,
      status,
      max_results: maxResults,
      page_token: pageToken,
    });
  }

  /** Every delivery matching the filters, newest first, without their attempts. */
  async *deliveries({ webhookId, eventId, status, pageSize } = {}) {
    let pageToken;
    do {
      const page = await this.deliveriesPage({ webhookId, eventId, status, maxResults: pageSize, pageToken });
      yield* page.deliveries;
      pageToken = page.next_page_token;
    } while (pageToken);
  }

  async delivery(deliveryId) {
    return (await this._call(this.deliveryService, 'getDelivery', { delivery_id: deliveryId })).delivery;
  }

  async redeliver(deliveryId) {
    return (await this._call(this.deliveryService, 'redeliver', { delivery_id: deliveryId })).delivery;
  }

  /**
   * Sets which events of its types a webhook gets (docs/delivery.md, "Filters"): model or
   * prompt name globs, alias names, tag keys. Nothing given removes the filter.
   */
  async setFilter(webhookId, { names = [], aliases = [], tagKeys = [] } = {}) {
    const filter = { names, aliases, tag_keys: tagKeys };
    return (await this._call(this.deliveryService, 'setWebhookFilter', { webhook_id: webhookId, filter })).filter;
  }

  /** The webhook's filter; every part empty when it has none. */
  async getFilter(webhookId) {
    return (await this._call(this.deliveryService, 'getWebhookFilter', { webhook_id: webhookId })).filter;
  }

  /**
   * Changes the delivery settings given and keeps the others; answers them all
   * (docs/delivery.md, "Delivery settings"). `retrySchedule` (seconds before each retry),
   * `timeout` (seconds per attempt) and `maxConcurrency` (attempts in flight, per server
   * process) override the server's, within its limits; `[]` or `0` puts one back to the
   * server's. `ordered: true` sends one delivery at a time, in publish order ("Ordered
   * delivery"); `false` turns that off.
   */
  async setSettings(webhookId, { retrySchedule, timeout, maxConcurrency, ordered } = {}) {
    const settings = {};
    if (retrySchedule !== undefined) settings.retry_schedule = { delays_seconds: retrySchedule };
    if (timeout !== undefined) settings.timeout_seconds = timeout;
    if (maxConcurrency !== undefined) settings.max_concurrency = maxConcurrency;
    if (ordered !== undefined) settings.ordered = ordered;
    return (await this._call(this.deliveryService, 'setWebhookSettings', { webhook_id: webhookId, settings })).settings;
  }

  /** The webhook's delivery settings; a part left out is the server's. */
  async getSettings(webhookId) {
    return (await this._call(this.deliveryService, 'getWebhookSettings', { webhook_id: webhookId })).settings;
  }

  /**
   * Replaces the webhook's signing secret (docs/delivery.md, "Rotating the secret"). Without
   * `secret` the service generates one and answers it in `secret`, this once. The old secret
   * signs deliveries too for `overlapSeconds` (0 to 7 days; 24 hours when not given), until
   * `previous_secret_expires_timestamp`. Answers {webhook, secret?, previous_secret_expires_timestamp?}.
   */
  rotateSecret(webhookId, { secret, overlapSeconds } = {}) {
    return this._call(this.deliveryService, 'rotateWebhookSecret', {
      webhook_id: webhookId,
      secret,
      overlap_seconds: overlapSeconds,
    });
  }
}

// protobufjs takes google.protobuf.Struct in its message shape, not as a plain object, and
// its bundled well-known types keep camelCase field names whatever keepCase says.
function toValue(value) {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

function toStruct(object) {
  return { fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, toValue(v)])) };
}

module.exports = { WebhooksClient, WebhooksError, parseEvent, eventName, grpcStatus: grpc.status };
