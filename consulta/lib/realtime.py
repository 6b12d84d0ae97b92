"""Realtime events are doorbells published after commit to per-resource groups."""

import asyncio
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def publish_on_commit(group: str, event: dict) -> None:
    publish_all_on_commit([(group, event)])


def publish_all_on_commit(messages: Iterable[tuple[str, dict]]) -> None:
    """Send each (group, event) once the transaction commits, in one trip to the event loop.
    Different groups are sent to at the same time, so a doorbell never waits behind another
    group's Redis round trips; the events of one group keep their order."""
    by_group: dict[str, list[dict]] = {}
    for group, event in messages:
        by_group.setdefault(group, []).append(event)
    if by_group:
        transaction.on_commit(lambda: async_to_sync(_send_all)(by_group))


async def _send_all(by_group: dict[str, list[dict]]) -> None:
    layer = get_channel_layer()

    async def in_order(group: str, events: list[dict]) -> None:
        for event in events:
            await layer.group_send(group, event)

    results = await asyncio.gather(
        *(in_order(group, events) for group, events in by_group.items()),
        return_exceptions=True,
    )
    # Every group had its try; a failure is still the caller's to see.
    for result in results:
        if isinstance(result, BaseException):
            raise result


def visit_group(visit_id) -> str:
    return f"visit.{visit_id}"


def clinic_visits_group(clinic_id: int) -> str:
    return f"clinic.{clinic_id}.visits"
