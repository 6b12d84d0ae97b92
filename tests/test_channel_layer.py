"""The channel layer in production shape (Redis): a socket may wait for a message longer than
channels_redis's 5-second blocking reads without the connection timing out."""

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from tests.services import require_redis


async def _wait_for_a_late_message() -> dict:
    layer = get_channel_layer()
    channel = await layer.new_channel()

    async def later():
        await asyncio.sleep(7)
        await layer.send(channel, {"type": "late.message"})

    sender = asyncio.create_task(later())
    message = await asyncio.wait_for(layer.receive(channel), timeout=15)
    await sender
    return message


@pytest.mark.services
def test_a_receiver_waits_past_the_layers_blocking_reads():
    require_redis()
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("the suite runs with the in-memory layer here; the Redis pass runs this test")
    # Its own thread and event loop: the browser tests' Playwright keeps a loop in this one.
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(message=asyncio.run(_wait_for_a_late_message()))
    )
    thread.start()
    thread.join(timeout=30)
    assert outcome.get("message") == {"type": "late.message"}
