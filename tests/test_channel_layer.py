"""The channel layer in production shape (Redis): a socket may wait for a message longer than
channels_redis's 5-second blocking reads without the connection timing out."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from tests.services import require_redis


@pytest.mark.services
async def test_a_receiver_waits_past_the_layers_blocking_reads():
    require_redis()
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("the suite runs with the in-memory layer here; the Redis pass runs this test")
    layer = get_channel_layer()
    channel = await layer.new_channel()

    async def later():
        await asyncio.sleep(7)
        await layer.send(channel, {"type": "late.message"})

    sender = asyncio.create_task(later())
    message = await asyncio.wait_for(layer.receive(channel), timeout=15)
    await sender
    assert message == {"type": "late.message"}
