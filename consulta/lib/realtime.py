"""Realtime events are doorbells published after commit to per-resource groups."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def publish_on_commit(group: str, event: dict) -> None:
    def send():
        async_to_sync(get_channel_layer().group_send)(group, event)

    transaction.on_commit(send)


def visit_group(visit_id) -> str:
    return f"visit.{visit_id}"


def clinic_visits_group(clinic_id: int) -> str:
    return f"clinic.{clinic_id}.visits"
