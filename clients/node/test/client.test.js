'use strict';
// Runs against a server that is already up (tests/test_node_client.py starts one):
// WEBHOOKS_ADDRESS is its gRPC HOST:PORT, WEBHOOKS_TEST_URL a URL it accepts for a webhook;
// WEBHOOKS_AUTH_TOKEN and WEBHOOKS_CACERT (a PEM file: TLS) as webhooksctl takes them.

const fs = require('node:fs');
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { WebhooksClient, WebhooksError, parseEvent, eventName, grpcStatus } = require('..');

const address = process.env.WEBHOOKS_ADDRESS || '127.0.0.1:50051';
const hookUrl = process.env.WEBHOOKS_TEST_URL || 'http://127.0.0.1:9/hook';
const client = new WebhooksClient(address, {
  token: process.env.WEBHOOKS_AUTH_TOKEN || undefined,
  rootCertificates: process.env.WEBHOOKS_CACERT ? fs.readFileSync(process.env.WEBHOOKS_CACERT) : undefined,
  timeoutMs: 10000,
});
after(() => client.close());

const unique = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 10)}`;

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof WebhooksError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

test('creates, lists, updates and deletes a webhook', async () => {
  const name = unique('node');
  const created = await client.create({
    name,
    url: hookUrl,
    events: ['model_version.created', { entity: 'REGISTERED_MODEL', action: 'CREATED' }],
    description: 'made by the Node client test',
    secret: 's3cret',
  });
  assert.equal(created.name, name);
  assert.equal(created.status, 'ACTIVE');
  assert.deepEqual(created.events.map(eventName), ['model_version.created', 'registered_model.created']);
  assert.equal(typeof created.creation_timestamp, 'number');
  assert.equal(created.creation_timestamp, created.last_updated_timestamp);
  assert.equal(created.secret, undefined);
  assert.deepEqual(await client.get(created.webhook_id), created);

  const other = await client.create({ name: unique('node'), url: hookUrl, events: ['prompt.created'] });
  const first = await client.listPage({ maxResults: 1 });
  assert.equal(first.webhooks.length, 1);
  assert.ok(first.next_page_token, 'a second page exists');
  const seen = [];
  for await (const webhook of client.iterWebhooks({ pageSize: 1 })) seen.push(webhook.webhook_id);
  assert.equal(new Set(seen).size, seen.length, 'no webhook twice');
  assert.ok(seen.includes(created.webhook_id) && seen.includes(other.webhook_id));
  if (other.creation_timestamp > created.creation_timestamp) {
    assert.ok(seen.indexOf(other.webhook_id) < seen.indexOf(created.webhook_id), 'newest first');
  }

  const updated = await client.update(created.webhook_id, {
    name: `${name}-renamed`,
    status: 'DISABLED',
    events: ['model_version_tag.set'],
  });
  assert.equal(updated.name, `${name}-renamed`);
  assert.equal(updated.status, 'DISABLED');
  assert.deepEqual(updated.events.map(eventName), ['model_version_tag.set']);
  assert.equal(updated.url, hookUrl);
  assert.ok(updated.last_updated_timestamp > created.last_updated_timestamp);

  for (const id of [created.webhook_id, other.webhook_id]) await client.delete(id);
  await rejectsWith(client.get(created.webhook_id), grpcStatus.NOT_FOUND);
  await rejectsWith(client.delete(created.webhook_id), grpcStatus.NOT_FOUND);
  await assert.rejects(client.get(created.webhook_id), {
    message: `NOT_FOUND: Webhook with ID ${created.webhook_id} not found.`,
  });
});

test('invalid arguments are INVALID_ARGUMENT', async () => {
  await rejectsWith(
    client.create({ name: unique('bad'), url: hookUrl, events: ['registered_model.deleted'] }),
    grpcStatus.INVALID_ARGUMENT,
  );
  await rejectsWith(client.listPage({ maxResults: 5000 }), grpcStatus.INVALID_ARGUMENT);
  assert.throws(() => parseEvent('model_version'), /ENTITY\.ACTION/);
});

test('publishes an event and reads its delivery', async () => {
  const webhook = await client.create({ name: unique('sub'), url: hookUrl, events: ['prompt_tag.set'] });
  try {
    const published = await client.publish(
      'prompt_tag.set',
      { name: 'p', key: 'k', value: 'v', extra: { nested: [1, true, null] } },
      { idempotencyKey: unique('key') },
    );
    assert.ok(published.event_id);

    // Other subscribers may exist on a shared server; this webhook has exactly one delivery.
    const listed = [];
    for await (const d of client.deliveries({ webhookId: webhook.webhook_id, pageSize: 1 })) listed.push(d);
    assert.equal(listed.length, 1);
    const [{ delivery_id: deliveryId }] = listed;
    assert.ok(published.delivery_ids.includes(deliveryId));
    assert.equal(listed[0].event_id, published.event_id);

    const delivery = await client.delivery(deliveryId);
    assert.equal(delivery.webhook_id, webhook.webhook_id);
    assert.equal(eventName(delivery.event), 'prompt_tag.set');

    const again = await client.redeliver(deliveryId);
    assert.equal(again.delivery_id, deliveryId);
    assert.ok(again.attempts.length >= 1);
  } finally {
    await client.delete(webhook.webhook_id);
  }
  await rejectsWith(client.delivery('no-such-delivery'), grpcStatus.NOT_FOUND);
  const none = await client.deliveriesPage({ webhookId: 'no-such-webhook' });
  assert.deepEqual(none.deliveries, []);
});

test('sets, reads and clears a webhook filter', async () => {
  const webhook = await client.create({ name: unique('node-filter'), url: hookUrl, events: ['model_version.created'] });
  try {
    const set = await client.setFilter(webhook.webhook_id, { names: ['fraud-*'], tagKeys: ['owner'] });
    assert.deepEqual(set, { names: ['fraud-*'], aliases: [], tag_keys: ['owner'] });
    assert.deepEqual(await client.getFilter(webhook.webhook_id), set);
    await rejectsWith(client.setFilter(webhook.webhook_id, { aliases: [''] }), grpcStatus.INVALID_ARGUMENT);
    const cleared = await client.setFilter(webhook.webhook_id);
    assert.deepEqual(cleared, { names: [], aliases: [], tag_keys: [] });
  } finally {
    await client.delete(webhook.webhook_id);
  }
  await rejectsWith(client.getFilter('no-such-webhook'), grpcStatus.NOT_FOUND);
});

test('changes, keeps and resets delivery settings', async () => {
  const webhook = await client.create({ name: unique('node-settings'), url: hookUrl, events: ['model_version.created'] });
  try {
    assert.deepEqual(await client.getSettings(webhook.webhook_id), {});
    const set = await client.setSettings(webhook.webhook_id, { retrySchedule: [1, 30], timeout: 2.5 });
    assert.deepEqual(set, { retry_schedule: { delays_seconds: [1, 30] }, timeout_seconds: 2.5 });
    const more = await client.setSettings(webhook.webhook_id, { maxConcurrency: 3 });
    assert.deepEqual(more, { ...set, max_concurrency: 3 });
    assert.deepEqual(await client.getSettings(webhook.webhook_id), more);
    await rejectsWith(client.setSettings(webhook.webhook_id, { timeout: -1 }), grpcStatus.INVALID_ARGUMENT);
    const reset = await client.setSettings(webhook.webhook_id, { retrySchedule: [], timeout: 0, maxConcurrency: 0 });
    assert.deepEqual(reset, {});
  } finally {
    await client.delete(webhook.webhook_id);
  }
  await rejectsWith(client.getSettings('no-such-webhook'), grpcStatus.NOT_FOUND);
});

test('rotates a secret: a given one is never answered, a generated one once', async () => {
  const webhook = await client.create({ name: unique('node-rotate'), url: hookUrl, events: ['model_version.created'], secret: 'before' });
  try {
    const before = Date.now();
    const given = await client.rotateSecret(webhook.webhook_id, { secret: 'after', overlapSeconds: 60 });
    assert.equal(given.webhook.webhook_id, webhook.webhook_id);
    assert.equal(given.secret, undefined);
    assert.ok(given.previous_secret_expires_timestamp >= before + 60000);
    assert.ok(given.previous_secret_expires_timestamp <= Date.now() + 60000);
    const generated = await client.rotateSecret(webhook.webhook_id);
    assert.match(generated.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(generated.previous_secret_expires_timestamp >= before + 86400000, '24 hours by default');
    const none = await client.rotateSecret(webhook.webhook_id, { secret: 'again', overlapSeconds: 0 });
    assert.equal(none.previous_secret_expires_timestamp, undefined);
    await rejectsWith(client.rotateSecret(webhook.webhook_id, { overlapSeconds: -1 }), grpcStatus.INVALID_ARGUMENT);
  } finally {
    await client.delete(webhook.webhook_id);
  }
  await rejectsWith(client.rotateSecret('no-such-webhook'), grpcStatus.NOT_FOUND);
});

test('ordered delivery is a setting like the others, kept until turned off', async () => {
  const webhook = await client.create({ name: unique('node-ordered'), url: hookUrl, events: ['model_version_alias.created'] });
  try {
    assert.deepEqual(await client.setSettings(webhook.webhook_id, { ordered: true }), { ordered: true });
    const more = await client.setSettings(webhook.webhook_id, { maxConcurrency: 2 });
    assert.deepEqual(more, { ordered: true, max_concurrency: 2 });
    assert.deepEqual(await client.getSettings(webhook.webhook_id), more);
    assert.deepEqual(await client.setSettings(webhook.webhook_id, { ordered: false }), { max_concurrency: 2 });
  } finally {
    await client.delete(webhook.webhook_id);
  }
});

test('a missing token is UNAUTHENTICATED when the server wants one', { skip: !process.env.WEBHOOKS_AUTH_TOKEN }, async () => {
  const anonymous = new WebhooksClient(address, {
    rootCertificates: process.env.WEBHOOKS_CACERT ? fs.readFileSync(process.env.WEBHOOKS_CACERT) : undefined,
    timeoutMs: 10000,
  });
  try {
    await rejectsWith(anonymous.listPage(), grpcStatus.UNAUTHENTICATED);
  } finally {
    anonymous.close();
  }
});
