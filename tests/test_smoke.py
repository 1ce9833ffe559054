from generated import webhooks_pb2 as pb


async def test_create_then_get(stub, receiver):
    created = await stub.createWebhook(
        pb.CreateWebhook(
            name="smoke",
            url=f"{receiver.url}/ok",
            secret="s3cret",
            events=[pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)],
        )
    )
    got = await stub.getWebhook(pb.GetWebhook(webhook_id=created.webhook.webhook_id))
    assert got.webhook == created.webhook
    result = await stub.testWebhook(pb.TestWebhook(webhook_id=created.webhook.webhook_id))
    assert result.result.success, result
